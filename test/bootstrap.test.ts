import { describe, expect, it } from 'vitest';
import { debootstrapArgs, keyringCandidates, RELEASE_DATE_PREFIX, upgradeScript } from '../src/bootstrap.js';
import { loadProfile } from '../src/profiles.js';

describe('base bootstrap', () => {
  const xenial = loadProfile('ubuntu-16.04');

  it('bootstraps minbase with the profile keyring, never without a signature check', () => {
    const args = debootstrapArgs(xenial, '/k/ubuntu-archive-keyring.gpg', '/tmp/root');
    expect(args).toEqual(['--variant=minbase', '--keyring=/k/ubuntu-archive-keyring.gpg', 'xenial', '/tmp/root']);
    expect(args.join(' ')).not.toMatch(/no-check-gpg|allow-unauthenticated/);
  });

  it('looks for the keyring on the host first, then in the cache', () => {
    expect(keyringCandidates(xenial, { MEMCACHED_HARDENED_CACHE: '/c' })).toEqual([
      '/usr/share/keyrings/ubuntu-archive-keyring.gpg',
      '/c/keyrings/ubuntu-archive-keyring.gpg',
    ]);
  });

  it("applies every suite of the profile, restores the rootfs's own sources and reports the Release date", () => {
    const script = upgradeScript(xenial);
    expect(script).toContain(
      'for suite in xenial xenial-updates xenial-security; do echo "deb $mirror $suite main universe"',
    );
    expect(script).toContain('cp /tmp/sources.list.orig /etc/apt/sources.list');
    expect(script).toContain(RELEASE_DATE_PREFIX);
    expect(script).not.toMatch(/allow-unauthenticated|AllowUnauthenticated|trusted=yes/);
  });
});
