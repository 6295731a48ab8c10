import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { failure } from '../errors.js';
import type { Built } from '../outputs.js';
import { projectPath } from '../paths.js';
import type { Attached } from './attestations.js';

/**
 * What a release attaches besides its own facts, read before anything is pushed (a release that cannot
 * attest pushes nothing): the SBOM and the seccomp profile the build wrote, and the OpenVEX document the
 * suite's vulnerability probes wrote about this very image id in this release's run.
 */

/** The product id the vulnerability probes give the image they ran against (test/integration/vulnerabilities). */
export const vexProduct = (imageId: string) => `pkg:oci/memcached-hardened@${encodeURIComponent(imageId)}`;

interface VexLike {
  statements?: Array<{ products?: Array<{ '@id'?: unknown }> }>;
}

/** True when every statement of the document is about exactly this image id (and there is one at least). */
export function vexIsAbout(document: unknown, imageId: string): boolean {
  const statements = (document as VexLike | null)?.statements;
  return (
    Array.isArray(statements) &&
    statements.length > 0 &&
    statements.every((s) => Array.isArray(s?.products) && s.products.some((p) => p?.['@id'] === vexProduct(imageId)))
  );
}

/**
 * The newest OpenVEX document in `dir` written since `since` about this image id: the one the suite's
 * run against it wrote (reports/vex-<run>-<profile>-<credentials>.json). An older run's document, or one
 * about another image, is not this release's evidence.
 */
export function suiteVex(imageId: string, since: Date, dir: string = projectPath('reports')): unknown {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => /^vex-.*\.json$/.test(name));
  } catch {
    names = [];
  }
  const found = names
    .map((name) => ({ path: join(dir, name), mtime: statSync(join(dir, name)).mtimeMs }))
    .filter((file) => file.mtime >= since.getTime())
    .sort((a, b) => b.mtime - a.mtime)
    .map((file) => {
      try {
        return JSON.parse(readFileSync(file.path, 'utf8')) as unknown;
      } catch {
        return undefined;
      }
    })
    .find((document) => vexIsAbout(document, imageId));
  if (found === undefined) {
    throw failure(`the suite's run wrote no OpenVEX document about ${imageId} (reports/vex-*.json): nothing to attest`);
  }
  return found;
}

/** The SBOM, the seccomp profile (named as in the project: seccomp/<profile>[-tls].json) and the run's VEX. */
export function readAttached(built: Built, tls: boolean, suiteStarted: Date, reports?: string): Attached {
  const { imageId, profile } = built.result;
  let sbom: unknown;
  try {
    sbom = JSON.parse(readFileSync(built.sbom ?? '', 'utf8'));
  } catch {
    throw failure(`the SBOM of ${imageId} could not be read (${built.sbom ?? 'none written'})`);
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(built.seccompProfile ?? '');
    JSON.parse(bytes.toString('utf8'));
  } catch {
    throw failure(`the seccomp profile of ${imageId} could not be read (${built.seccompProfile ?? 'none written'})`);
  }
  const file = `seccomp/${profile}${tls ? '-tls' : ''}.json`;
  return { sbom, vex: suiteVex(imageId, suiteStarted, reports), seccomp: { file, bytes } };
}
