import { randomUUID } from 'node:crypto';
import type { Engine } from './engine/index.js';
import { failure } from './errors.js';
import type { Profile } from './profiles.js';

/** One installed Debian package. */
export interface InstalledPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
}

/** dpkg-query's output format the SBOM reads. */
export const DPKG_QUERY = [
  'dpkg-query',
  '-W',
  '-f',
  '${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n',
];

/** Parses DPKG_QUERY output; keeps installed packages only ("ii"). */
export function parseDpkgQuery(output: string): InstalledPackage[] {
  return output
    .split('\n')
    .map((line) => line.split('\t'))
    .filter((fields) => fields.length === 4 && fields[0]?.trim() === 'ii')
    .map(([, name, version, architecture]) => ({ name: name!, version: version!, architecture: architecture! }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** A package URL for a Debian/Ubuntu package. */
export function debPurl(pkg: InstalledPackage, distro: string, vendor: string): string {
  const name = encodeURIComponent(pkg.name);
  const version = encodeURIComponent(pkg.version);
  return `pkg:deb/${vendor}/${name}@${version}?arch=${pkg.architecture}&distro=${distro}`;
}

/** A CycloneDX 1.5 SBOM of the image's installed packages. */
export function cycloneDx(
  packages: readonly InstalledPackage[],
  image: { id: string; tag: string },
  profile: Profile,
  created: Date,
): object {
  const vendor = profile.base.image.startsWith('ubuntu') ? 'ubuntu' : 'debian';
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: created.toISOString(),
      tools: { components: [{ type: 'application', name: 'memcached-hardened' }] },
      component: {
        type: 'container',
        name: image.tag,
        version: image.id,
        properties: [{ name: 'memcached-hardened:profile', value: profile.name }],
      },
    },
    components: packages.map((pkg) => ({
      type: 'library',
      'bom-ref': debPurl(pkg, profile.name, vendor),
      name: pkg.name,
      version: pkg.version,
      purl: debPurl(pkg, profile.name, vendor),
    })),
  };
}

/**
 * True when `bom` (a parsed SBOM file) is the one written for exactly this image id: then it need not be
 * recomputed.
 */
export function describesImage(bom: unknown, imageId: string): boolean {
  const component = (bom as { metadata?: { component?: { version?: unknown } } } | null)?.metadata?.component;
  return (bom as { bomFormat?: unknown } | null)?.bomFormat === 'CycloneDX' && component?.version === imageId;
}

/** Lists the image's installed packages by running dpkg-query in a throwaway, network-less container. */
export async function installedPackages(engine: Engine, imageId: string): Promise<InstalledPackage[]> {
  const result = await engine.run({
    image: imageId,
    entrypoint: DPKG_QUERY.slice(0, 1),
    command: DPKG_QUERY.slice(1),
    stdin: '',
    labels: { 'memcached-hardened.purpose': 'sbom' },
    user: 'root',
  });
  if (result.exitCode !== 0)
    throw failure(`listing the image's packages failed: ${result.stderr.trim().split('\n').pop() ?? result.exitCode}`);
  const packages = parseDpkgQuery(result.stdout.toString('utf8'));
  if (!packages.some((p) => p.name === 'memcached')) throw failure('the SBOM lists no memcached package');
  return packages;
}
