import { describe, expect, it } from 'vitest';
import { imageTagProblem, isIpv4Cidr, parseBuildArgs, parseCidrList, withExplicitTag } from '../src/config.js';
import { UserError } from '../src/errors.js';

function rejection(argv: string[]): UserError {
  try {
    parseBuildArgs(argv);
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error;
  }
  throw new Error(`expected ${argv.join(' ')} to be rejected`);
}

describe('parseBuildArgs', () => {
  it('defaults to the ubuntu-16.04 server image', () => {
    expect(parseBuildArgs([])).toMatchObject({
      profile: 'ubuntu-16.04',
      tag: 'memcached-hardened:ubuntu-16.04',
      target: 'server',
      allowFrom: [],
      json: false,
    });
  });

  it('reads every option', () => {
    const config = parseBuildArgs([
      '--profile',
      'debian-12',
      '--tag',
      'registry.local:5000/team/memcached:1.0',
      '--users-file',
      'u.txt',
      '--allow-from',
      '10.0.0.5/32,10.0.1.0/24',
      '--target',
      'client',
      '--json',
      '--no-cache',
    ]);
    expect(config).toMatchObject({
      profile: 'debian-12',
      tag: 'registry.local:5000/team/memcached:1.0',
      usersFile: 'u.txt',
      allowFrom: ['10.0.0.5/32', '10.0.1.0/24'],
      target: 'client',
      json: true,
      noCache: true,
    });
  });

  it('reads the credentials mode and the SBOM folder', () => {
    expect(parseBuildArgs([])).toMatchObject({ credentials: 'baked', sbomDir: 'sbom' });
    expect(parseBuildArgs(['--runtime-credentials', '--sbom-dir', 'out'])).toMatchObject({
      credentials: 'runtime',
      sbomDir: 'out',
    });
  });

  it('builds the plaintext image by default; --tls the TLS one, tagged <profile>-tls unless --tag says', () => {
    expect(parseBuildArgs([])).toMatchObject({ tls: false, tag: 'memcached-hardened:ubuntu-16.04' });
    expect(parseBuildArgs(['--tls', '--profile', 'debian-12'])).toMatchObject({
      tls: true,
      tag: 'memcached-hardened:debian-12-tls',
    });
    expect(parseBuildArgs(['--tls', '--tag', 'cache:1'])).toMatchObject({ tls: true, tag: 'cache:1' });
  });

  it('returns undefined for --help', () => {
    expect(parseBuildArgs(['--help'])).toBeUndefined();
  });

  it.each([
    [['--bogus'], "Unknown option '--bogus'"],
    [['--tag'], "Option '--tag <value>' argument missing"],
    [['--tag', 'Bad:Tag'], 'invalid image tag'],
    [['--tag', 'name:bad tag'], 'invalid image tag'],
    [['--target', 'database'], '--target must be server or client'],
    [['--allow-from', '10.0.0.300/32'], "'10.0.0.300/32' is not an IPv4"],
    [['--allow-from', '10.0.0.1/33'], 'is not an IPv4'],
    [['--allow-from', '10.0.0.1,,10.0.0.2'], 'empty entry'],
    [['--profile', '../etc/passwd'], "unknown profile '../etc/passwd'"],
    [['--apt-mirror', 'not a url'], '--apt-mirror'],
    [['extra'], 'positional'],
    [['--users-file', 'u.txt', '--runtime-credentials'], 'exclude each other'],
    [['--tls', '--target', 'client'], '--tls applies to the server image'],
  ])('rejects %j', (argv, expected) => {
    const error = rejection(argv);
    expect(error.message).toContain(expected);
    expect(error.exitCode).toBe(2);
  });
});

describe('image references and CIDRs', () => {
  it('accepts docker references and adds :latest', () => {
    expect(imageTagProblem('memcached-hardened:ubuntu-16.04')).toBeUndefined();
    expect(imageTagProblem('localhost:5000/a/b')).toBeUndefined();
    expect(withExplicitTag('localhost:5000/a/b')).toBe('localhost:5000/a/b:latest');
    expect(withExplicitTag('a:1')).toBe('a:1');
    expect(imageTagProblem('UPPER:1')).toMatch(/invalid/);
    expect(imageTagProblem('')).toMatch(/empty/);
  });

  it('validates IPv4 CIDRs', () => {
    expect(isIpv4Cidr('172.18.0.3/32')).toBe(true);
    expect(isIpv4Cidr('10.0.0.0/8')).toBe(true);
    expect(isIpv4Cidr('10.0.0.1')).toBe(true);
    expect(isIpv4Cidr('256.0.0.1')).toBe(false);
    expect(isIpv4Cidr('10.0.0/8')).toBe(false);
    expect(isIpv4Cidr('::1/128')).toBe(false);
    expect(parseCidrList('10.0.0.1, 10.0.0.2/31', '--allow-from')).toEqual(['10.0.0.1', '10.0.0.2/31']);
  });
});
