import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inputsDigest, type BuildInputs, type BuildResult } from '../src/build.js';
import { parseBuildArgs } from '../src/config.js';
import { summary, writeVex } from '../src/outputs.js';
import type { VexDocument } from '../src/vex.js';
import { loadVulnerabilityTable } from '../src/vulnerabilities.js';
import { renderFiles, type ContextFile } from '../src/context.js';
import { loadProfile } from '../src/profiles.js';
import { profileValues, SASLDB_ENTRY } from '../src/render.js';

const file = (name: string, content: string, mode = 0o644): ContextFile => ({
  name,
  mode,
  content: Buffer.from(content),
});

const INPUTS: BuildInputs = {
  baseId: 'sha256:1111111111111111111111111111111111111111111111111111111111111111',
  stage: 'server',
  files: [
    file('Dockerfile', 'FROM scratch AS server\n'),
    file('image-files/usr/local/bin/run', '#!/bin/sh\n', 0o755),
    file('build-files/guard.c', 'int x;\n'),
  ],
  labels: {
    'org.opencontainers.image.version': '1.2.3',
    'org.opencontainers.image.revision': 'abc',
    'memcached-hardened.profile': 'ubuntu-16.04',
  },
  buildArgs: { APT_MIRROR: 'http://mirror.example/ubuntu', OTHER: 'x' },
};

const reversed = <T extends Readonly<Record<string, string>>>(record: T): T =>
  Object.fromEntries(Object.entries(record).reverse()) as T;

describe('inputsDigest', () => {
  const digest = inputsDigest(INPUTS);

  it('is a sha256 digest, the same for equal inputs', () => {
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(inputsDigest(INPUTS)).toBe(digest);
    expect(inputsDigest(structuredClone(INPUTS))).toBe(digest);
  });

  it('does not depend on the order of the labels, the build args or the files', () => {
    expect(Object.keys(reversed(INPUTS.labels))).not.toEqual(Object.keys(INPUTS.labels));
    expect(inputsDigest({ ...INPUTS, labels: reversed(INPUTS.labels) })).toBe(digest);
    expect(inputsDigest({ ...INPUTS, buildArgs: reversed(INPUTS.buildArgs) })).toBe(digest);
    expect(inputsDigest({ ...INPUTS, files: [...INPUTS.files].reverse() })).toBe(digest);
  });

  it('changes when the base image or the stage changes', () => {
    expect(inputsDigest({ ...INPUTS, baseId: INPUTS.baseId.replace(/1$/, '2') })).not.toBe(digest);
    expect(inputsDigest({ ...INPUTS, stage: 'tools' })).not.toBe(digest);
  });

  it('changes when one file changes: a byte, a mode, a name, one more or one fewer', () => {
    const withFile = (index: number, change: Partial<ContextFile>) => ({
      ...INPUTS,
      files: INPUTS.files.map((f, i) => (i === index ? { ...f, ...change } : f)),
    });
    const variants: BuildInputs[] = [
      withFile(2, { content: Buffer.from('int y;\n') }),
      withFile(1, { mode: 0o644 }),
      withFile(2, { name: 'build-files/guard2.c' }),
      { ...INPUTS, files: [...INPUTS.files, file('image-files/etc/extra.conf', '')] },
      { ...INPUTS, files: INPUTS.files.slice(1) },
    ];
    const digests = variants.map(inputsDigest);
    for (const other of digests) expect(other).not.toBe(digest);
    expect(new Set(digests).size).toBe(digests.length);
  });

  it('changes when one label changes: a value, a name, one more or one fewer', () => {
    const fewer = Object.fromEntries(
      Object.entries(INPUTS.labels).filter(([name]) => name !== 'memcached-hardened.profile'),
    );
    const variants: BuildInputs[] = [
      { ...INPUTS, labels: { ...INPUTS.labels, 'org.opencontainers.image.revision': 'abd' } },
      { ...INPUTS, labels: { ...INPUTS.labels, 'org.opencontainers.image.version': '1.2.3 ' } },
      { ...INPUTS, labels: { ...fewer, 'memcached-hardened.profile2': 'ubuntu-16.04' } },
      { ...INPUTS, labels: { ...INPUTS.labels, 'memcached-hardened.tls': 'true' } },
      { ...INPUTS, labels: { ...INPUTS.labels, 'memcached-hardened.tls': '' } },
      { ...INPUTS, labels: fewer },
    ];
    const digests = variants.map(inputsDigest);
    for (const other of digests) expect(other).not.toBe(digest);
    expect(new Set(digests).size).toBe(digests.length);
  });

  it('changes when one build arg changes: a value, a name, one more or one fewer', () => {
    const variants: BuildInputs[] = [
      { ...INPUTS, buildArgs: { ...INPUTS.buildArgs, APT_MIRROR: 'http://other.example/ubuntu' } },
      { ...INPUTS, buildArgs: { APT_MIRROR2: INPUTS.buildArgs.APT_MIRROR!, OTHER: 'x' } },
      { ...INPUTS, buildArgs: { ...INPUTS.buildArgs, EXTRA: '' } },
      { ...INPUTS, buildArgs: { OTHER: 'x' } },
      { ...INPUTS, buildArgs: {} },
    ];
    const digests = variants.map(inputsDigest);
    for (const other of digests) expect(other).not.toBe(digest);
    expect(new Set(digests).size).toBe(digests.length);
  });

  it('tells a label from a build arg of the same name and value', () => {
    const asLabel = inputsDigest({ ...INPUTS, labels: { A: '1' }, buildArgs: {} });
    const asBuildArg = inputsDigest({ ...INPUTS, labels: {}, buildArgs: { A: '1' } });
    expect(asLabel).not.toBe(asBuildArg);
  });

  it('leaves the sasldb out: it takes no sasldb, and the rendered files never hold one', async () => {
    // The label is readable by anyone who can inspect the image, and the sasldb is password-derived,
    // so two builds that share everything but their users' sasldb share a digest. BuildInputs has no
    // place for a sasldb (the compiler refuses one), and anything extra is ignored.
    const shared = inputsDigest({ ...INPUTS });
    expect(shared).toBe(digest);
    expect(
      inputsDigest({
        ...INPUTS,
        // @ts-expect-error: the sasldb is not a build input.
        sasldb: Buffer.from('password-derived'),
      }),
    ).toBe(digest);
    // The files come from renderFiles, which never includes the sasldb (it joins only the tar stream).
    const files = renderFiles(profileValues(loadProfile('ubuntu-16.04'), { credentials: 'baked' }));
    expect(files.map((f) => f.name)).not.toContain(SASLDB_ENTRY);
    const rendered = inputsDigest({ ...INPUTS, files });
    expect(
      inputsDigest({
        ...INPUTS,
        files: renderFiles(profileValues(loadProfile('ubuntu-16.04'), { credentials: 'baked' })),
      }),
    ).toBe(rendered);
  });
});

describe("the build's VEX output", () => {
  const imageId = `sha256:${'ab'.repeat(32)}`;

  it("writes the table's statements beside the SBOM, saying no probe ran, and --json names it as vex", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mh-vex-'));
    try {
      const config = parseBuildArgs(['--profile', 'debian-12', '--tag', 'cache:1', '--sbom-dir', dir, '--json'])!;
      const said: string[] = [];
      const path = writeVex(imageId, config, (line) => said.push(line), new Date('2026-01-01T00:00:00Z'));
      expect(path).toBe(join(dir, 'cache_1.vex.json'));
      const vex = JSON.parse(readFileSync(path, 'utf8')) as VexDocument;
      const table = loadVulnerabilityTable('debian-12');
      expect(vex.statements.map((s) => s.vulnerability.name)).toEqual(table.entries.map((e) => e.id));
      expect(vex.statements.every((s) => s.status_notes.startsWith('no probe ran for this document'))).toBe(true);
      expect(vex.statements.every((s) => s.status !== 'under_investigation')).toBe(true);
      expect(vex.statements[0]!.products[0]!['@id']).toBe(`pkg:oci/memcached-hardened@${encodeURIComponent(imageId)}`);
      expect(vex.timestamp).toBe('2026-01-01T00:00:00.000Z');
      expect(said.join('\n')).toContain(path);
      const result = { imageId, tags: ['cache:1'] } as unknown as BuildResult;
      const line = summary(config, { result, sbom: join(dir, 'cache_1.cdx.json'), vex: path });
      expect(line).toMatchObject({ sbom: join(dir, 'cache_1.cdx.json'), vex: path });
      expect(summary(config, { result })).not.toHaveProperty('vex');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
