import { describe, expect, it } from 'vitest';
import { loadProfile } from '../src/profiles.js';
import { cycloneDx, debPurl, describesImage, parseDpkgQuery } from '../src/sbom.js';

const DPKG_OUTPUT = [
  'ii \tmemcached\t1.4.25-2ubuntu1.5\tamd64',
  'rc \tperl\t5.22.1-9ubuntu0.9\tamd64',
  'ii \tlibc6\t2.23-0ubuntu11.3\tamd64',
  'garbage line',
  '',
].join('\n');

describe('SBOM', () => {
  it('keeps installed packages only, sorted', () => {
    expect(parseDpkgQuery(DPKG_OUTPUT)).toEqual([
      { name: 'libc6', version: '2.23-0ubuntu11.3', architecture: 'amd64' },
      { name: 'memcached', version: '1.4.25-2ubuntu1.5', architecture: 'amd64' },
    ]);
  });

  it('writes CycloneDX 1.5 with package URLs', () => {
    const profile = loadProfile('ubuntu-16.04');
    const bom = cycloneDx(
      parseDpkgQuery(DPKG_OUTPUT),
      { id: 'sha256:abc', tag: 'memcached-hardened:ubuntu-16.04' },
      profile,
      new Date(0),
    ) as {
      bomFormat: string;
      specVersion: string;
      components: Array<{ name: string; version: string; purl: string }>;
      metadata: { component: { name: string; version: string } };
    };
    expect(bom.bomFormat).toBe('CycloneDX');
    expect(bom.specVersion).toBe('1.5');
    expect(bom.metadata.component).toMatchObject({ name: 'memcached-hardened:ubuntu-16.04', version: 'sha256:abc' });
    expect(bom.components.find((c) => c.name === 'memcached')).toMatchObject({
      version: '1.4.25-2ubuntu1.5',
      purl: 'pkg:deb/ubuntu/memcached@1.4.25-2ubuntu1.5?arch=amd64&distro=ubuntu-16.04',
    });
    expect(debPurl({ name: 'libstdc++6', version: '1:2.0', architecture: 'amd64' }, 'debian-12', 'debian')).toBe(
      'pkg:deb/debian/libstdc%2B%2B6@1%3A2.0?arch=amd64&distro=debian-12',
    );
  });

  it('recognises the SBOM written for an image id, so it is not recomputed', () => {
    const bom = cycloneDx(
      [],
      { id: 'sha256:abc', tag: 'memcached-hardened:ubuntu-16.04' },
      loadProfile('ubuntu-16.04'),
      new Date(0),
    );
    expect(describesImage(JSON.parse(JSON.stringify(bom)), 'sha256:abc')).toBe(true);
    expect(describesImage(bom, 'sha256:def')).toBe(false);
    for (const other of [undefined, null, {}, { metadata: { component: { version: 'sha256:abc' } } }])
      expect(describesImage(other, 'sha256:abc')).toBe(false);
  });
});
