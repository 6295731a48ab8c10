import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.js';

// main() in-process: exit codes and messages, no Docker (a dead DOCKER_HOST stands for a missing engine).
let out: string[];
let err: string[];
let cwd: string;

beforeEach(() => {
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line));
  vi.spyOn(console, 'error').mockImplementation((line: string) => void err.push(line));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  // Where the user "typed": outputs such as generated credentials would land here.
  cwd = mkdtempSync(join(tmpdir(), 'mh-cli-test-'));
  vi.stubEnv('INIT_CWD', cwd);
  vi.stubEnv('DOCKER_HOST', 'tcp://127.0.0.1:9');
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  rmSync(cwd, { recursive: true, force: true });
});

describe('main', () => {
  it('answers help with 0 and the usage', async () => {
    for (const argv of [['--help'], ['-h'], ['help']]) expect(await main(argv)).toBe(0);
    expect(await main(['build', '--help'])).toBe(0);
    expect(out.at(-1)).toMatch(/^Usage: npm run build/);
    expect(await main(['release', '-h'])).toBe(0);
    expect(out.at(-1)).toMatch(/^Usage: npm run release/);
    expect(err).toEqual([]);
  });

  it('exits 2 with one line for bad input', async () => {
    const cases = [
      [],
      ['frobnicate'],
      ['build', '--bogus'],
      ['build', '--profile', 'no-such-profile'],
      ['build', '--users-file', join(tmpdir(), 'no-such-users-file')],
      ['build', '--tag', 'no spaces allowed'],
      ['release', '--tag', 'memcached-hardened:1.0'],
      ['release', '--target', 'client', '--tag', '127.0.0.1:5000/memcached-hardened:1.0'],
      // The mutation check's result goes into the attestations: no place for it in an unsigned release.
      ['release', '--tag', '127.0.0.1:5000/memcached-hardened:1.0', '--unsigned', '--mutation-result', 'm.json'],
      [
        'release',
        '--tag',
        '127.0.0.1:5000/m:1',
        '--signing-key',
        'k',
        '--passphrase-file',
        'p',
        '--mutation-result',
        '',
      ],
      [
        ...['release', '--tag', '127.0.0.1:5000/m:1', '--signing-key', 'k', '--passphrase-file', 'p'],
        ...['--mutation-result', join(tmpdir(), 'no-such-mutation-result.json')],
      ],
    ];
    for (const argv of cases) {
      err = [];
      expect(await main(argv), argv.join(' ')).toBe(2);
      if (argv.length > 0) expect(err, argv.join(' ')).toHaveLength(1);
      expect(err.join('\n')).not.toContain('\n');
    }
  });

  it('exits 1 when the engine is unreachable, leaving no generated credentials behind', async () => {
    expect(await main(['build', '--tag', 'memcached-hardened:cli-test'])).toBe(1);
    expect(err).toEqual([
      expect.stringMatching(/^memcached-hardened: no Docker engine reachable at tcp:\/\/127\.0\.0\.1:9/),
    ]);
    expect(existsSync(join(cwd, 'memcached-credentials'))).toBe(false);
  });
});
