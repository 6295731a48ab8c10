import { describe, expect, it } from 'vitest';
import { listProfiles, loadProfile, parseProfile } from '../src/profiles.js';

describe('profiles', () => {
  it('ships ubuntu-16.04 and debian-12', () => {
    expect(listProfiles()).toEqual(['debian-12', 'ubuntu-16.04']);
  });

  it('rejects an unknown profile naming the known ones', () => {
    expect(() => loadProfile('centos-7')).toThrow(/unknown profile 'centos-7' \(known: debian-12, ubuntu-16.04\)/);
  });

  it('rejects a hardening flag the memcached version lacks', () => {
    const profile = structuredClone(loadProfile('ubuntu-16.04')) as unknown as { memcached: { hardeningFlags: string[] } };
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

  it('says how TLS is spoken, natively only where memcached has it (-Z), always with openssl for the start-up check', () => {
    expect(loadProfile('debian-12').tls.via).toBe('memcached');
    expect(loadProfile('ubuntu-16.04').tls.via).toBe('stunnel');
    const native = structuredClone(loadProfile('ubuntu-16.04')) as unknown as { tls: { via: string; packages: string[] } };
    native.tls.via = 'memcached';
    expect(() => parseProfile(native, 'test')).toThrow(/-Z/);
    const withoutOpenssl = structuredClone(loadProfile('debian-12')) as unknown as { tls: { packages: string[] } };
    withoutOpenssl.tls.packages = ['stunnel4'];
    expect(() => parseProfile(withoutOpenssl, 'test')).toThrow(/openssl/);
  });

  it('rejects unexpected keys', () => {
    expect(() => parseProfile({ ...loadProfile('debian-12'), extra: 1 }, 'test')).toThrow(/invalid/);
  });
});
