import { describe, expect, it } from 'vitest';
import { parseBuildArgs, parseKeygenArgs, parseReleaseArgs, parseVerifyReleaseArgs } from '../src/config.js';
import { checksIn } from '../src/verify.js';

const tag = ['--tag', '127.0.0.1:5000/memcached-hardened:1'];

describe('release signing options', () => {
  it('refuses a release that names no key unless --unsigned is given', () => {
    expect(() => parseReleaseArgs(tag)).toThrow(
      /^release signs what it pushes: give --signing-key FILE --passphrase-file FILE/,
    );
    expect(parseReleaseArgs([...tag, '--unsigned'])?.signing).toEqual({ kind: 'unsigned' });
    expect(parseReleaseArgs([...tag, '--signing-key', 'k', '--passphrase-file', '-'])?.signing).toEqual({
      kind: 'key',
      keyFile: 'k',
      passphraseFile: '-',
    });
  });

  it('checks the combinations with one line each', () => {
    expect(() => parseReleaseArgs([...tag, '--signing-key', 'k'])).toThrow(/needs --passphrase-file/);
    expect(() => parseReleaseArgs([...tag, '--unsigned', '--signing-key', 'k'])).toThrow(/--unsigned excludes/);
    expect(() =>
      parseReleaseArgs([...tag, '--signing-key', 'k', '--passphrase-file', '-', '--users-file', '-']),
    ).toThrow(/cannot both read stdin/);
    expect(() =>
      parseReleaseArgs([...tag, '--signing-key', 'k', '--passphrase-file', 'p', '--gpg-sign-by', 'ABCDEF0123456789']),
    ).toThrow(/go together/);
    expect(() =>
      parseReleaseArgs([
        ...tag,
        '--signing-key',
        'k',
        '--passphrase-file',
        'p',
        '--gpg-sign-by',
        'nothex',
        '--lookaside',
        'd',
      ]),
    ).toThrow(/not a GPG key id/);
    const gpg = parseReleaseArgs([
      ...tag,
      '--signing-key',
      'k',
      '--passphrase-file',
      'p',
      '--gpg-sign-by',
      'ABCDEF0123456789',
      '--lookaside',
      'd',
    ]);
    expect(gpg?.signing).toMatchObject({ kind: 'key', gpg: { fingerprint: 'ABCDEF0123456789', lookaside: 'd' } });
    expect(() => parseReleaseArgs([...tag, '--passphrase', 'x'])).toThrow(/Unknown option '--passphrase'/);
  });

  it('build takes none of the signing options', () => {
    expect(() => parseBuildArgs(['--signing-key', 'k'])).toThrow(/Unknown option/);
    expect(parseBuildArgs(['--help'])).toBeUndefined();
  });

  it('keygen and verify-release parse their options, with --help', () => {
    expect(parseKeygenArgs(['--out', 'd', '--passphrase-file', '-'])).toEqual({
      out: 'd',
      passphraseFile: '-',
      json: false,
    });
    expect(() => parseKeygenArgs(['--out', 'd'])).toThrow(/never goes on the command line/);
    expect(parseKeygenArgs(['-h'])).toBeUndefined();
    expect(parseVerifyReleaseArgs(['r/m:1', '--key', 'p', '--json'])).toEqual({
      reference: 'r/m:1',
      keyFile: 'p',
      json: true,
    });
    expect(() => parseVerifyReleaseArgs(['--key', 'p'])).toThrow(/one image reference/);
    expect(parseVerifyReleaseArgs(['--help'])).toBeUndefined();
  });
});

describe('the suite report read for attestation', () => {
  it('lists every check with its verdict, files relative to the project', () => {
    const checks = checksIn(
      {
        testResults: [
          {
            name: '/p/test/integration/smoke.test.ts',
            assertionResults: [
              { status: 'passed', fullName: 'a b' },
              { status: 'skipped', fullName: 'c' },
            ],
          },
          { name: '/p/test/integration/udp.test.ts', assertionResults: [{ status: 'failed', fullName: 'd' }] },
        ],
      },
      '/p',
    );
    expect(checks).toEqual([
      { file: 'test/integration/smoke.test.ts', name: 'a b', status: 'passed' },
      { file: 'test/integration/smoke.test.ts', name: 'c', status: 'skipped' },
      { file: 'test/integration/udp.test.ts', name: 'd', status: 'failed' },
    ]);
  });
});
