import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { badInput, failure } from '../errors.js';

const run = promisify(execFile);

/**
 * containers/image "simple signing" with GPG, for skopeo, podman and CRI-O: the signature is made by
 * skopeo (`standalone-sign`, with gpg underneath) and stored in a lookaside directory laid out as
 * containers/image reads it, `DIR/<repository path>@sha256=<hex>/signature-N`, to publish on any static
 * web server and name in registries.d.
 */
export const SKOPEO = 'skopeo';

export function isFingerprint(value: string): boolean {
  return /^(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/.test(value);
}

/** The lookaside folder of one manifest: the repository path without its registry, the digest as algo=hex. */
export function lookasideFolder(dir: string, repositoryPath: string, digest: string): string {
  return join(dir, `${repositoryPath}@${digest.replace(':', '=')}`);
}

/** The next free `signature-N` (N from 1) of a folder's names. */
export function nextSignatureName(existing: readonly string[]): string {
  let n = 1;
  while (existing.includes(`signature-${n}`)) n += 1;
  return `signature-${n}`;
}

export interface GpgSignRequest {
  /** The manifest exactly as the registry serves it under the digest. */
  readonly manifest: Buffer;
  readonly digest: string;
  /** registry/repo:tag, the identity the signature names. */
  readonly dockerReference: string;
  /** The repository path below the registry. */
  readonly repositoryPath: string;
  readonly fingerprint: string;
  readonly lookaside: string;
  /** A file holding the GPG key's passphrase (given to skopeo as a path, never its content). */
  readonly passphraseFile?: string;
}

/** Signs the manifest with skopeo and stores the signature in the lookaside folder; returns its path. */
export async function gpgSign(request: GpgSignRequest): Promise<string> {
  if (!isFingerprint(request.fingerprint))
    throw badInput(`--gpg-sign-by: '${request.fingerprint}' is not a GPG key id or fingerprint`);
  const scratch = mkdtempSync(join(tmpdir(), 'mh-gpg-'));
  try {
    const manifestFile = join(scratch, 'manifest.json');
    const signatureFile = join(scratch, 'signature');
    writeFileSync(manifestFile, request.manifest);
    const args = [
      'standalone-sign',
      manifestFile,
      request.dockerReference,
      request.fingerprint,
      '--output',
      signatureFile,
    ];
    if (request.passphraseFile) args.push('--passphrase-file', request.passphraseFile);
    try {
      await run(SKOPEO, args, { timeout: 120_000 });
    } catch (error) {
      const e = error as { code?: string; stderr?: string; message: string };
      if (e.code === 'ENOENT') throw failure('--gpg-sign-by needs skopeo (apt-get install skopeo gnupg)');
      const why = (e.stderr ?? e.message).trim().split('\n').pop() ?? 'failed';
      throw failure(`skopeo standalone-sign refused: ${why}`);
    }
    const folder = lookasideFolder(request.lookaside, request.repositoryPath, request.digest);
    mkdirSync(folder, { recursive: true });
    const target = join(folder, nextSignatureName(readdirSync(folder)));
    // Copied beside its place, then renamed: a reader never sees half a signature (tmp may be another disk).
    copyFileSync(signatureFile, `${target}.partial`);
    renameSync(`${target}.partial`, target);
    return target;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Before anything is built: skopeo is there and gpg holds the secret key, so a release never stops after
 * its push for want of either.
 */
export async function checkGpgSigning(fingerprint: string): Promise<void> {
  try {
    await run(SKOPEO, ['--version'], { timeout: 30_000 });
  } catch {
    throw badInput('--gpg-sign-by needs skopeo (apt-get install skopeo gnupg)');
  }
  try {
    await run('gpg', ['--batch', '--list-secret-keys', fingerprint], { timeout: 30_000 });
  } catch {
    throw badInput(`--gpg-sign-by ${fingerprint}: gpg holds no secret key by that id (gpg --list-secret-keys)`);
  }
}
