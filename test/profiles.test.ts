import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { listProfiles, loadProfile, parseProfile } from '../src/profiles.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a profile to break at will
type Loose = any;

/** The error parseProfile gives for `name`'s profile after `change` (its result is ignored). */
function invalid(change: (profile: Loose) => unknown, name = 'debian-12'): string {
  const profile: Loose = structuredClone(loadProfile(name));
  change(profile);
  return problem(profile);
}

/** The error parseProfile gives for `data`. */
function problem(data: unknown): string {
  try {
    parseProfile(data, 'test');
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(2);
    return (error as Error).message;
  }
  throw new Error('the profile was accepted');
}

describe('profiles', () => {
  it('ships ubuntu-16.04 and debian-12', () => {
    expect(listProfiles()).toEqual(['debian-12', 'ubuntu-16.04']);
  });

  it('rejects an unknown profile naming the known ones', () => {
    expect(() => loadProfile('centos-7')).toThrow(/unknown profile 'centos-7' \(known: debian-12, ubuntu-16.04\)/);
  });

  it('rejects a hardening flag the memcached version lacks', () => {
    const profile = structuredClone(loadProfile('ubuntu-16.04')) as unknown as {
      memcached: { hardeningFlags: string[] };
    };
    profile.memcached.hardeningFlags.push('-X');
    expect(() => parseProfile(profile, 'test')).toThrow(/supportedFlags/);
  });

  it('requires the per-version capabilities the entrypoint reads', () => {
    for (const key of ['ipv6Listen', 'idleTimeout']) {
      const profile = structuredClone(loadProfile('debian-12')) as unknown as { memcached: Record<string, unknown> };
      delete profile.memcached[key];
      expect(() => parseProfile(profile, 'test')).toThrow(new RegExp(`at memcached\\.${key}`));
      profile.memcached[key] = 'yes';
      expect(() => parseProfile(profile, 'test')).toThrow(new RegExp(`at memcached\\.${key}`));
    }
  });

  it(
    'says how TLS is spoken, natively only where memcached ' +
      'has it (-Z), always with openssl for the start-up check',
    () => {
      expect(loadProfile('debian-12').tls.via).toBe('memcached');
      expect(loadProfile('ubuntu-16.04').tls.via).toBe('stunnel');
      const native = structuredClone(loadProfile('ubuntu-16.04')) as unknown as {
        tls: { via: string; packages: string[] };
      };
      native.tls.via = 'memcached';
      expect(() => parseProfile(native, 'test')).toThrow(/-Z/);
      const withoutOpenssl = structuredClone(loadProfile('debian-12')) as unknown as { tls: { packages: string[] } };
      withoutOpenssl.tls.packages = ['stunnel4'];
      expect(() => parseProfile(withoutOpenssl, 'test')).toThrow(/openssl/);
    },
  );

  it('rejects unexpected keys', () => {
    expect(() => parseProfile({ ...loadProfile('debian-12'), extra: 1 }, 'test')).toThrow(/invalid/);
  });

  it('loads both shipped profiles, each a fresh copy of its file', () => {
    for (const name of listProfiles()) {
      const profile = loadProfile(name);
      expect(profile.name).toBe(name);
      expect(parseProfile(structuredClone(profile), 'test')).toEqual(profile);
      expect(loadProfile(name)).not.toBe(profile);
    }
  });

  it('checks every pattern, naming the field', () => {
    expect(invalid((p) => (p.name = 'Debian'))).toBe(
      "profile test is invalid at name: must be lower-case letters, digits, '.' and '-', " +
        'starting with a letter or digit',
    );
    expect(invalid((p) => (p.base.image = 'debian'))).toBe('profile test is invalid at base.image: must be NAME:TAG');
    expect(invalid((p) => (p.base.bootstrap.suite = 'Bookworm'))).toBe(
      'profile test is invalid at base.bootstrap.suite: must be a Debian package or suite name',
    );
    expect(invalid((p) => (p.base.bootstrap.keyring = 'debian.asc'))).toBe(
      'profile test is invalid at base.bootstrap.keyring: must be a keyring file name ending in .gpg',
    );
    expect(invalid((p) => (p.apt.suites[1] = 'bookworm updates'))).toBe(
      'profile test is invalid at apt.suites.1: must be a Debian package or suite name',
    );
    expect(invalid((p) => p.packages.purgeAfterInstall.push('-perl'))).toBe(
      'profile test is invalid at packages.purgeAfterInstall.3: must be a Debian package or suite name',
    );
    expect(invalid((p) => (p.memcached.minVersion = 'v1.6'))).toBe(
      'profile test is invalid at memcached.minVersion: must be a Debian version starting with a digit',
    );
    expect(invalid((p) => (p.iptablesBinary = 'iptables'))).toBe(
      "profile test is invalid at iptablesBinary: must be an absolute path of letters, digits and '/._-'",
    );
    expect(invalid((p) => (p.description = ''))).toBe(
      'profile test is invalid at description: must be a non-empty string',
    );
  });

  it('checks every enumeration, listing the values it takes', () => {
    expect(invalid((p) => (p.base.bootstrap.variant = 'buildd'))).toBe(
      'profile test is invalid at base.bootstrap.variant: must be one of minbase',
    );
    expect(invalid((p) => p.memcached.supportedFlags.push('-Q'))).toBe(
      'profile test is invalid at memcached.supportedFlags.4: must be one of -F, -X, -Y, -Z',
    );
    expect(invalid((p) => (p.memcached.hardeningFlags = ['-f']))).toBe(
      'profile test is invalid at memcached.hardeningFlags.0: must be one of -F, -X, -Y, -Z',
    );
    expect(invalid((p) => (p.memcached.udpWithSasl = 'answers'))).toBe(
      'profile test is invalid at memcached.udpWithSasl: must be one of answers-unauthenticated, refused-at-start',
    );
    expect(invalid((p) => (p.memcached.saslStepWithoutStart = 'ignored'))).toBe(
      'profile test is invalid at memcached.saslStepWithoutStart: must be one of crashes, refused',
    );
    expect(invalid((p) => (p.memcached.atConnectionLimit = 'stalls'))).toBe(
      'profile test is invalid at memcached.atConnectionLimit: must be one of stalls-a-worker, refuses-new-connections',
    );
    expect(invalid((p) => (p.tls.via = 'nginx'))).toBe(
      'profile test is invalid at tls.via: must be one of memcached, stunnel',
    );
  });

  it('requires the lists that must name something to be non-empty, and allows the others empty', () => {
    for (const [section, key] of [
      ['apt', 'suites'],
      ['apt', 'components'],
      ['packages', 'server'],
      ['packages', 'tools'],
      ['tls', 'packages'],
    ] as const) {
      expect(invalid((p) => (p[section][key] = []))).toBe(
        `profile test is invalid at ${section}.${key}: must be a non-empty list`,
      );
    }
    expect(invalid((p) => (p.apt.suites = 'bookworm'))).toBe(
      'profile test is invalid at apt.suites: must be a non-empty list',
    );
    expect(invalid((p) => (p.packages.purgeAfterInstall = 'perl'))).toBe(
      'profile test is invalid at packages.purgeAfterInstall: must be a list',
    );
    const empty: Loose = structuredClone(loadProfile('debian-12'));
    empty.packages.purgeAfterInstall = [];
    empty.tls.keepInstalled = [];
    empty.memcached.hardeningFlags = [];
    expect(parseProfile(empty, 'test').packages.purgeAfterInstall).toEqual([]);
  });

  it('refuses unknown keys at the top and at every nested level, naming the key', () => {
    expect(invalid((p) => (p.extra = 1))).toBe("profile test is invalid: unknown key 'extra'");
    expect(invalid((p) => (p.memcached.extra = 1))).toBe("profile test is invalid at memcached: unknown key 'extra'");
    expect(invalid((p) => (p.base.bootstrap.mirror = 'http://mirror.example/debian'))).toBe(
      "profile test is invalid at base.bootstrap: unknown key 'mirror'",
    );
  });

  it('refuses values of the wrong type and missing keys', () => {
    expect(invalid((p) => (p.name = 12))).toBe('profile test is invalid at name: must be a string');
    expect(invalid((p) => (p.memcached.idleTimeout = 'false'))).toBe(
      'profile test is invalid at memcached.idleTimeout: must be true or false',
    );
    expect(invalid((p) => delete p.memcached.ipv6Listen)).toBe(
      'profile test is invalid at memcached.ipv6Listen: is missing',
    );
    expect(invalid((p) => (p.base = ['debian:12']))).toBe('profile test is invalid at base: must be an object');
    expect(invalid((p) => (p.tls = null))).toBe('profile test is invalid at tls: must be an object');
    expect(problem('debian-12')).toBe('profile test is invalid: must be an object');
    expect(problem(null)).toBe('profile test is invalid: must be an object');
  });

  it('reports only the first problem', () => {
    expect(
      invalid((p) => {
        p.name = 'Debian';
        p.iptablesBinary = 'iptables';
      }),
    ).toMatch(/^profile test is invalid at name: [^\n]*$/);
  });

  it('checks each rule across fields, without a path', () => {
    expect(invalid((p) => p.memcached.hardeningFlags.push('-Y'), 'ubuntu-16.04')).toBe(
      'profile test is invalid: hardeningFlags must all be in supportedFlags (this memcached version lacks one)',
    );
    expect(invalid((p) => (p.packages.server = p.packages.server.filter((name: string) => name !== 'memcached')))).toBe(
      'profile test is invalid: server packages must include memcached',
    );
    expect(invalid((p) => p.packages.purgeAfterInstall.push('iproute2'))).toBe(
      'profile test is invalid: purgeAfterInstall must not remove a server package',
    );
    expect(invalid((p) => (p.allowlistCapabilities = ['NET_RAW']))).toBe(
      'profile test is invalid: allowlistCapabilities must include NET_ADMIN',
    );
    expect(invalid((p) => (p.tls.via = 'memcached'), 'ubuntu-16.04')).toBe(
      'profile test is invalid: tls.via memcached needs a memcached built with TLS (-Z in supportedFlags)',
    );
    const openssl =
      'profile test is invalid: tls.packages must include openssl (the start-up certificate check) ' +
      'and tls.keepInstalled must name purgeAfterInstall packages';
    expect(invalid((p) => (p.tls.packages = ['stunnel4']), 'ubuntu-16.04')).toBe(openssl);
    expect(invalid((p) => p.tls.keepInstalled.push('libssl3'))).toBe(openssl);
  });
});
