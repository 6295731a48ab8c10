import { readFileSync } from 'node:fs';
import { beforeAll, describe, it } from 'vitest';
import { projectPath } from '../../src/paths.js';
import { loadProfile } from '../../src/profiles.js';
import { iptablesFileCapabilities } from '../../src/render.js';
import { TLS_MARKER } from '../../src/tls.js';
import {
  decodeCapabilities,
  inventoryImage,
  isRegularFile,
  mergedFilesystem,
  resolvePath,
  type MergedEntry,
} from '../helpers/image-inventory.js';
import { surfaceRows, surfaceTarget } from '../helpers/surface.js';
import type { TestTarget } from '../helpers/targets.js';
import { buildVariant } from '../helpers/variants.js';
import { INTERPRETER_BACK, SETUID_SHELL, SHELL_FILE_CAPABILITY } from '../helpers/weakenings.js';

// What docs/image.md says the image holds, checked on the final filesystem of the saved image (every layer
// merged, whiteouts applied), not on what a running container shows: the file capabilities, the setuid and
// setgid files, and every executable file, each against the intended set.

type Files = ReadonlyMap<string, MergedEntry>;

async function finalFilesystem(image: string): Promise<Files> {
  return mergedFilesystem((await inventoryImage(image)).layers);
}

/** What a set has that the intended one has not, and what it lacks. */
function difference(actual: readonly string[], intended: readonly string[]): { extra: string[]; missing: string[] } {
  return {
    extra: actual.filter((item) => !intended.includes(item)).sort(),
    missing: intended.filter((item) => !actual.includes(item)).sort(),
  };
}

const NONE = { extra: [], missing: [] };

/** Every file capability, as `<path> <capabilities>` (the capabilities as getcap prints them). */
function fileCapabilities(files: Files): string[] {
  return [...files.values()]
    .filter((entry) => entry.xattrs['security.capability'])
    .map((entry) => `${entry.path} ${decodeCapabilities(entry.xattrs['security.capability']!).text}`);
}

/** Every setuid or setgid regular file, as `<path> <mode>`. */
function setIdFiles(files: Files): string[] {
  return [...files.values()]
    .filter((entry) => isRegularFile(entry) && (entry.mode & 0o6000) !== 0)
    .map((entry) => `${entry.path} ${entry.mode.toString(8)}`);
}

/** Every regular file with any execute bit. */
function executables(files: Files): string[] {
  return [...files.values()].filter((e) => isRegularFile(e) && (e.mode & 0o111) !== 0).map((e) => e.path);
}

/** Paths from a committed allow list: one absolute path a line, `#` comments. */
function allowList(name: string): string[] {
  const text = readFileSync(projectPath('test/fixtures/inventory', `${name}.executables.txt`), 'utf8');
  const paths = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const odd = paths.filter((path) => !path.startsWith('/') || /\s/.test(path));
  if (odd.length > 0) throw new Error(`${name}.executables.txt: not absolute paths: ${odd.join(', ')}`);
  return paths;
}

/**
 * True when the image carries the TLS layer: the TLS surface, and also the plaintext one of an image under
 * test built with --tls (the suite takes only its marker away: see tlsPair).
 */
function hasTlsLayer(config: Record<string, unknown>): boolean {
  const history = (config.history ?? []) as Array<{ created_by?: string }>;
  return history.some((step) => step.created_by?.includes(`> ${TLS_MARKER}`));
}

/**
 * The executables an image may hold: its profile's list, plus what runtime credentials (sasl2-bin) and the
 * TLS layer add, each in a list of its own.
 */
function intendedExecutables(target: TestTarget, tlsLayer: boolean): string[] {
  return [
    ...allowList(target.profile),
    ...(target.credentials === 'runtime' ? allowList(`${target.profile}-runtime`) : []),
    ...(tlsLayer ? allowList(`${target.profile}-tls`) : []),
  ];
}

/** Names that are an interpreter, a compiler or a network fetcher: none may be on an allow list... */
const FORBIDDEN = new RegExp(
  '^(perl[\\d.]*|python[\\d.]*|ruby[\\d.]*|lua[\\d.]*|tclsh[\\d.]*|wish[\\d.]*|php[\\d.]*|node|nodejs|' +
    'gcc.*|cc|c\\+\\+|g\\+\\+.*|clang.*|as|ld|ld\\.\\w+|make|wget|curl|nc|netcat|ncat|socat|telnet|ftp|tftp|busybox)$',
);
/** ...but these, each there for a reason. */
const KEPT_FOR_A_REASON: Readonly<Record<string, string>> = {
  '/usr/lib/apt/methods/ftp': "apt's: the TLS layer installs its packages with apt on top of the image",
};

// A row's three checks run at once: each waits mostly on the engine, building and saving its control.
describe.concurrent.each(surfaceRows())('%s', (_name, target, surface) => {
  const image = surfaceTarget(target, surface);
  let files: Files;
  let tlsLayer: boolean;

  beforeAll(async () => {
    const inventory = await inventoryImage(image.image);
    files = mergedFilesystem(inventory.layers);
    tlsLayer = hasTlsLayer(inventory.config);
  });

  const capabilities = iptablesFileCapabilities(loadProfile(target.profile));
  const a = `(a) file capabilities: only ${capabilities} on the iptables binary; an extra one is caught`;
  it(a, async ({ expect }) => {
    const iptables = resolvePath(files, loadProfile(target.profile).iptablesBinary);
    const intended = [`${iptables} ${capabilities}`];
    expect(difference(fileCapabilities(files), intended), `file capabilities of ${image.image}`).toEqual(NONE);
    // Control: a shell that can become root (cap_setgid,cap_setuid on dash) is caught by the same check.
    const variant = await buildVariant(image, SHELL_FILE_CAPABILITY);
    try {
      const weakened = await finalFilesystem(variant.target.image);
      const dash = resolvePath(weakened, '/bin/dash');
      const extra = [`${dash} cap_setgid,cap_setuid+ep`];
      expect(difference(fileCapabilities(weakened), intended)).toEqual({ extra, missing: [] });
    } finally {
      await variant.remove();
    }
  });

  it('(b) no setuid or setgid file; a setuid shell is caught', async ({ expect }) => {
    expect(difference(setIdFiles(files), []), `setuid/setgid files of ${image.image}`).toEqual(NONE);
    // Control: a setuid-root shell.
    const variant = await buildVariant(image, SETUID_SHELL);
    try {
      const weakened = await finalFilesystem(variant.target.image);
      const dash = resolvePath(weakened, '/bin/dash');
      expect(difference(setIdFiles(weakened), [])).toEqual({ extra: [`${dash} 4755`], missing: [] });
    } finally {
      await variant.remove();
    }
  });

  const c = '(c) every executable is on the allow list (no interpreter or fetcher on it); a copied-in perl is caught';
  it(c, async ({ expect }) => {
    if (surface === 'tls') expect(tlsLayer, 'the TLS image carries the TLS layer').toBe(true);
    const intended = intendedExecutables(target, tlsLayer);
    const forbidden = intended.filter((path) => FORBIDDEN.test(path.split('/').pop()!) && !KEPT_FOR_A_REASON[path]);
    expect(forbidden, 'interpreters, compilers or fetchers on the allow list').toEqual([]);
    expect(FORBIDDEN.test('perl') && FORBIDDEN.test('python3.5') && !FORBIDDEN.test('memcached')).toBe(true);
    const { extra, missing } = difference(executables(files), intended);
    const lists = `test/fixtures/inventory/${target.profile}{,-runtime,-tls}.executables.txt`;
    expect({ extra, missing }, `executables of ${image.image} against ${lists} (extra: not on the list)`).toEqual(NONE);
    // Control: a shell copied to /usr/bin/perl: an interpreter back in the image.
    const variant = await buildVariant(image, INTERPRETER_BACK);
    try {
      const weakened = await finalFilesystem(variant.target.image);
      expect(difference(executables(weakened), intended)).toEqual({ extra: ['/usr/bin/perl'], missing: [] });
    } finally {
      await variant.remove();
    }
  });
});
