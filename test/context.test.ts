import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import fc from 'fast-check';
import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  contextDigest,
  DOCKERFILE_NAME,
  renderContext,
  renderFiles,
  writeContext,
  type ContextFile,
} from '../src/context.js';
import { projectPath } from '../src/paths.js';
import { loadProfile } from '../src/profiles.js';
import {
  CREDENTIAL_RULES_PATH,
  IMAGE_VALUES_PATH,
  imageValuesShell,
  profileValues,
  SASLDB_ENTRY,
} from '../src/render.js';

const ENTRYPOINT = 'image-files/usr/local/bin/memcached-entrypoint';
const HEALTHCHECK = 'image-files/usr/local/bin/memcached-healthcheck';
const GUARD_SOURCE = 'build-files/memcached-guard.c';
const VALUES = `image-files${IMAGE_VALUES_PATH}`;
const LEFTOVER_PLACEHOLDER = /\{\{[^}]*\}\}/;

const file = (name: string, content: string | Buffer, mode = 0o644): ContextFile => ({
  name,
  mode,
  content: Buffer.from(content),
});

/** The regular files below a folder, by '/'-separated relative name, with their permission bits. */
function filesOnDisk(dir: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) continue;
    expect(entry.isFile(), `${path} is a regular file`).toBe(true);
    found.set(relative(dir, path).split('\\').join('/'), statSync(path).mode & 0o7777);
  }
  return found;
}

interface TarEntry {
  readonly type: string;
  readonly mode: number;
  readonly content: Buffer;
}

/** Every entry of a tar stream, in order, by name. */
async function tarEntries(stream: Readable): Promise<[string, TarEntry][]> {
  const entries: [string, TarEntry][] = [];
  const reader = extract();
  stream.on('error', (error) => reader.destroy(error));
  stream.pipe(reader);
  for await (const entry of reader) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    entries.push([
      entry.header.name,
      { type: entry.header.type ?? 'file', mode: entry.header.mode ?? -1, content: Buffer.concat(chunks) },
    ]);
  }
  return entries;
}

/** The file entries of a tar stream, by name ('./' prefixes dropped). */
async function tarFiles(stream: Readable): Promise<Map<string, TarEntry>> {
  const files = new Map<string, TarEntry>();
  for (const [name, entry] of await tarEntries(stream)) {
    if (entry.type === 'directory') continue;
    const key = name.replace(/^\.\//, '');
    expect(files.has(key), `${key} appears once in the tar`).toBe(false);
    files.set(key, entry);
  }
  return files;
}

/** Runs `body` under a umask, restoring the previous one whatever happens. */
async function withUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await body();
  } finally {
    process.umask(previous);
  }
}

const SAMPLE: readonly ContextFile[] = [
  file(DOCKERFILE_NAME, 'FROM scratch\n'),
  file('image-files/usr/local/bin/run', '#!/bin/sh\nexit 0\n', 0o755),
  file('image-files/etc/app.conf', 'key = value\n'),
  file('build-files/guard.c', 'int main(void) { return 0; }\n'),
  file('empty', ''),
];

describe('renderContext', () => {
  it('renders the Dockerfile and the image files with the profile values, and cleans up after itself', async () => {
    const context = await renderContext(profileValues(loadProfile('ubuntu-16.04')), undefined);
    try {
      const dockerfile = readFileSync(join(context.dir, DOCKERFILE_NAME), 'utf8');
      expect(dockerfile).toContain('FROM ubuntu:16.04 AS os');
      expect(dockerfile).not.toMatch(/\{\{[A-Z_]+\}\}/);
      const rules = readFileSync(join(context.dir, 'image-files', CREDENTIAL_RULES_PATH), 'utf8');
      expect(rules).toContain('users_file_problem()');
    } finally {
      await context.dispose();
    }
    expect(existsSync(context.dir)).toBe(false);
  });

  it('refuses a value no template uses (the template and the profile drifted apart)', async () => {
    await expect(
      renderContext({ ...profileValues(loadProfile('debian-12')), NOT_IN_ANY_TEMPLATE: 'x' }, undefined),
    ).rejects.toThrow(/never used: NOT_IN_ANY_TEMPLATE/);
  });
});

describe('renderFiles', () => {
  const values = profileValues(loadProfile('ubuntu-16.04'));
  const byName = (files: readonly ContextFile[]) => new Map(files.map((f) => [f.name, f]));

  it("names exactly the Dockerfile, the image files, values.sh and the build files, with '/' separators", async () => {
    const files = renderFiles(values);
    const names = files.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) {
      expect(name).not.toContain('\\');
      expect(name).not.toMatch(/^\/|(^|\/)\.\.?(\/|$)/);
    }
    const onDisk = (folder: string) => [...filesOnDisk(projectPath(folder)).keys()].map((name) => `${folder}/${name}`);
    const all = [DOCKERFILE_NAME, ...onDisk('image-files'), VALUES, ...onDisk('build-files')];
    expect([...names].sort()).toEqual(all.sort());
    const rules = `image-files${CREDENTIAL_RULES_PATH}`;
    const named = [DOCKERFILE_NAME, ENTRYPOINT, HEALTHCHECK, rules, VALUES, GUARD_SOURCE];
    expect(names).toEqual(expect.arrayContaining(named));
  });

  it('gives scripts 0755 and everything else 0644', async () => {
    const files = byName(renderFiles(values));
    expect(files.get(DOCKERFILE_NAME)?.mode).toBe(0o644);
    expect(files.get(ENTRYPOINT)?.mode).toBe(0o755);
    expect(files.get(HEALTHCHECK)?.mode).toBe(0o755);
    expect(files.get('image-files/etc/memcached.conf')?.mode).toBe(0o644);
    expect(files.get(VALUES)?.mode).toBe(0o644);
    expect(files.get(GUARD_SOURCE)?.mode).toBe(0o644);
    for (const f of files.values()) expect([0o644, 0o755], f.name).toContain(f.mode);
  });

  it('leaves no placeholder in the rendered files and takes the build files as they are', async () => {
    const files = renderFiles(values);
    for (const f of files.filter((f) => !f.name.startsWith('build-files/'))) {
      expect(f.content.toString('utf8'), f.name).not.toMatch(LEFTOVER_PLACEHOLDER);
    }
    const guard = byName(files).get(GUARD_SOURCE);
    expect(guard?.content.equals(readFileSync(projectPath(GUARD_SOURCE)))).toBe(true);
    // The image's scripts are static: they reach the image as they are, with the profile's values.sh beside them.
    for (const f of files.filter((f) => /^image-files\/usr\/local\/(bin|lib)\//.test(f.name) && f.name !== VALUES)) {
      expect(f.content.equals(readFileSync(projectPath(f.name))), f.name).toBe(true);
    }
    expect(byName(files).get(VALUES)?.content.toString('utf8')).toBe(imageValuesShell(loadProfile('ubuntu-16.04')));
  });

  it('gives byte-identical files for the same values', async () => {
    const [a, b] = await Promise.all([renderFiles(values), renderFiles({ ...values })]);
    expect(b).toEqual(a);
    expect(contextDigest(b)).toBe(contextDigest(a));
  });

  it('changes at least one file when the values change', async () => {
    const changed = async (other: typeof values) => {
      const [before, after] = [byName(renderFiles(values)), renderFiles(other)];
      expect([...before.keys()].sort()).toEqual(after.map((f) => f.name).sort());
      return after.filter((f) => !before.get(f.name)?.content.equals(f.content)).map((f) => f.name);
    };
    const allowFrom = await changed(profileValues(loadProfile('ubuntu-16.04'), { allowFrom: ['10.0.0.0/8'] }));
    expect(allowFrom).toEqual([DOCKERFILE_NAME]);
    expect(await changed(profileValues(loadProfile('ubuntu-16.04'), { credentials: 'runtime' }))).toContain(
      DOCKERFILE_NAME,
    );
    expect(await changed(profileValues(loadProfile('ubuntu-16.04'), { tls: true }))).toContain(DOCKERFILE_NAME);
    const otherProfile = await changed(profileValues(loadProfile('debian-12')));
    expect(otherProfile.sort()).toEqual([DOCKERFILE_NAME, 'image-files/etc/memcached.conf', VALUES].sort());
  });

  it('refuses values that leave a placeholder without a value', async () => {
    const missing = Object.fromEntries(Object.entries(values).filter(([key]) => key !== 'BASE_IMAGE'));
    expect(() => renderFiles(missing)).toThrow(/no value for \{\{BASE_IMAGE\}\}/);
  });

  it('refuses a value no template uses', async () => {
    expect(() => renderFiles({ ...values, NOT_IN_ANY_TEMPLATE: 'x' })).toThrow(/never used: NOT_IN_ANY_TEMPLATE/);
  });

  it('never holds the sasldb (it joins only in the tar stream)', async () => {
    for (const credentials of ['baked', 'runtime'] as const) {
      const files = renderFiles(profileValues(loadProfile('ubuntu-16.04'), { credentials }));
      expect(files.map((f) => f.name)).not.toContain(SASLDB_ENTRY);
    }
  });
});

describe('contextDigest', () => {
  const digest = contextDigest(SAMPLE);
  const replace = (index: number, change: Partial<ContextFile>) =>
    SAMPLE.map((f, i) => (i === index ? { ...f, ...change } : f));

  it('is a sha256 digest that leaves its input as it was', () => {
    const input = [...SAMPLE].reverse();
    const order = input.map((f) => f.name);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    contextDigest(input);
    expect(input.map((f) => f.name)).toEqual(order);
  });

  it('does not depend on the order of the files', () => {
    expect(contextDigest([...SAMPLE].reverse())).toBe(digest);
    fc.assert(
      fc.property(
        fc.shuffledSubarray([...SAMPLE], { minLength: SAMPLE.length, maxLength: SAMPLE.length }),
        (shuffled) => contextDigest(shuffled) === digest,
      ),
    );
  });

  it('changes when one byte of one file changes', () => {
    for (const [index, f] of SAMPLE.entries()) {
      if (f.content.length === 0) continue;
      for (const at of [0, f.content.length - 1]) {
        const content = Buffer.from(f.content);
        content[at] = (content[at]! + 1) & 0xff;
        expect(contextDigest(replace(index, { content })), `${f.name} byte ${at}`).not.toBe(digest);
      }
    }
    expect(contextDigest(replace(4, { content: Buffer.from('\0') }))).not.toBe(digest);
  });

  it('changes when a mode changes', () => {
    expect(contextDigest(replace(1, { mode: 0o644 }))).not.toBe(digest);
    expect(contextDigest(replace(2, { mode: 0o755 }))).not.toBe(digest);
    expect(contextDigest(replace(2, { mode: 0o600 }))).not.toBe(digest);
  });

  it('changes when a file is renamed, added or removed', () => {
    expect(contextDigest(replace(2, { name: 'image-files/etc/app.conf2' }))).not.toBe(digest);
    expect(contextDigest(replace(2, { name: 'image-files/etc/App.conf' }))).not.toBe(digest);
    expect(contextDigest([...SAMPLE, file('image-files/etc/other.conf', 'x')])).not.toBe(digest);
    expect(contextDigest([...SAMPLE, file('another-empty', '')])).not.toBe(digest);
    expect(contextDigest(SAMPLE.slice(0, -1))).not.toBe(digest);
    expect(contextDigest([])).not.toBe(digest);
  });

  it('cannot be fooled by moving bytes between a name, a mode and a content, or between files', () => {
    const distinct = [
      [file('a', 'bc')],
      [file('ab', 'c')],
      [file('abc', '')],
      [file('a', 'xy'), file('b', '')],
      [file('a', 'x'), file('b', 'y')],
      // What the second file adds to the hash, carried in the first one's content instead.
      [file('a', 'xb\x00644\x00y')],
      [file('a', ''), file('b', 'xy')],
      [file('a', '6440')],
      [file('a', '0', 0o6440)],
      [file('a', 'b\x00644\x00c')],
      [file('a\x00644\x00', 'c')],
    ].map((files) => contextDigest(files));
    expect(new Set(distinct).size).toBe(distinct.length);
  });
});

describe('writeContext', () => {
  const expectedModes = new Map(SAMPLE.map((f) => [f.name, f.mode]));

  it('writes exactly the files with their modes, even under a strict umask', async () => {
    await withUmask(0o077, async () => {
      const context = await writeContext(SAMPLE, Buffer.from('secret'));
      try {
        expect(filesOnDisk(context.dir)).toEqual(expectedModes);
        for (const f of SAMPLE) expect(readFileSync(join(context.dir, f.name)).equals(f.content), f.name).toBe(true);
      } finally {
        await context.dispose();
      }
    });
  });

  it('packs the files with their contents and modes, and no sasldb when there is none', async () => {
    await withUmask(0o022, async () => {
      const context = await writeContext(SAMPLE, undefined);
      try {
        const files = await tarFiles(context.pack());
        expect(new Map([...files].map(([name, e]) => [name, e.mode]))).toEqual(expectedModes);
        for (const f of SAMPLE) expect(files.get(f.name)?.content.equals(f.content), f.name).toBe(true);
        expect(files.has(SASLDB_ENTRY)).toBe(false);
      } finally {
        await context.dispose();
      }
    });
  });

  it('adds the sasldb to the tar only, as a 0600 entry with its bytes', async () => {
    const sasldb = Buffer.from([0x00, 0x06, 0x15, 0x61, 0xff, 0x00, 0x0a, 0x0d]);
    const context = await writeContext(SAMPLE, sasldb);
    try {
      const entries = await tarEntries(context.pack());
      const files = await tarFiles(context.pack());
      expect([...files.keys()].sort()).toEqual([...SAMPLE.map((f) => f.name), SASLDB_ENTRY].sort());
      const entry = files.get(SASLDB_ENTRY);
      expect(entry?.type).toBe('file');
      expect(entry?.mode).toBe(0o600);
      expect(entry?.content.equals(sasldb)).toBe(true);
      // Appended after the folder, once; the tar ends properly (the extractor saw every entry).
      expect(entries.filter(([name]) => name === SASLDB_ENTRY)).toHaveLength(1);
      expect(entries.at(-1)?.[0]).toBe(SASLDB_ENTRY);
      // Never on disk, not even after packing.
      expect(existsSync(join(context.dir, SASLDB_ENTRY))).toBe(false);
      const onDisk = filesOnDisk(context.dir);
      expect(onDisk).toEqual(expectedModes);
      for (const name of onDisk.keys())
        expect(readFileSync(join(context.dir, name)).includes(sasldb), name).toBe(false);
    } finally {
      await context.dispose();
    }
  });

  // tar-fs masks header modes with the process umask unless told otherwise: under 077 the scripts would
  // reach the image 0700 and the configs 0600, unreadable by the memcache user.
  it('packs the files with their modes even under a strict umask', async () => {
    await withUmask(0o077, async () => {
      const context = await writeContext(SAMPLE, undefined);
      try {
        const files = await tarFiles(context.pack());
        expect(new Map([...files].map(([name, e]) => [name, e.mode]))).toEqual(expectedModes);
        const directories = (await tarEntries(context.pack())).filter(([, e]) => e.type === 'directory');
        expect(directories.length).toBeGreaterThan(0);
        for (const [name, entry] of directories) expect(entry.mode, name).toBe(0o755);
      } finally {
        await context.dispose();
      }
    });
  });

  it('removes the folder on dispose (and dispose can be repeated)', async () => {
    const context = await writeContext(SAMPLE, Buffer.from('secret'));
    expect(existsSync(context.dir)).toBe(true);
    await context.dispose();
    expect(existsSync(context.dir)).toBe(false);
    await expect(context.dispose()).resolves.toBeUndefined();
  });

  it('removes the folder when a file cannot be written', async () => {
    const previous = process.env.TMPDIR;
    const scratch = mkdtempSync(join(tmpdir(), 'context-test-'));
    process.env.TMPDIR = scratch;
    try {
      // 'a' is a file, so 'a/b' cannot be created below it.
      await expect(writeContext([file('a', 'x'), file('a/b', 'y')], undefined)).rejects.toThrow();
      expect(readdirSync(scratch)).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
