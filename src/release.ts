import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { Progress } from './base.js';
import type { ReleaseConfig } from './config.js';
import { connectEngine, type EngineMessage } from './engine/index.js';
import { badInput, failure } from './errors.js';
import { imageName, parseImageReference } from './image-reference.js';
import { buildWithOutputs, type Built } from './outputs.js';
import { describeCredentials, dockerConfigCredentials, type RegistryCredentials } from './registry-credentials.js';
import { serializeUsers } from './credentials.js';
import { generatedUser } from './sasldb.js';
import { runSuite, VERIFICATION_FILES, type SuiteCheck } from './verify.js';
import { INPUTS_LABEL } from './build.js';
import { projectPath } from './paths.js';
import { headCommit } from './source.js';
import type { Attached } from './signing/attestations.js';
import { readAttached } from './signing/evidence.js';
import { checkGpgSigning } from './signing/gpg.js';
import { mutationCheckAnnotation, readMutationRun } from './signing/mutation-result.js';
import { readPassphrase, readSigningKey } from './signing/key.js';
import { signRelease, type ReleaseSignatures } from './signing/release-signing.js';

/** npm runs scripts from the package root; the user's paths are relative to where they typed (as outputs.ts). */
function userPath(path: string): string {
  return isAbsolute(path) ? path : resolve(process.env.INIT_CWD ?? process.cwd(), path);
}

/** A release must name the registry it goes to. */
export function releaseRegistry(tag: string): string {
  const { registry } = parseImageReference(tag);
  if (!registry)
    throw badInput(
      `--tag '${tag}' names no registry: use REGISTRY/REPO:TAG (e.g. 127.0.0.1:5000/memcached-hardened:1.0)`,
    );
  return registry;
}

/**
 * Push credentials: REGISTRY_USERNAME + REGISTRY_PASSWORD, else what the Docker config
 * ($DOCKER_CONFIG/config.json or ~/.docker/config.json) gives for the registry, resolved as the Docker CLI
 * does (credHelpers, credsStore, auths: src/registry-credentials.ts), else none (an open registry).
 */
export function registryAuth(registry: string, env: NodeJS.ProcessEnv = process.env): RegistryCredentials | undefined {
  if (env.REGISTRY_USERNAME || env.REGISTRY_PASSWORD) {
    if (!env.REGISTRY_USERNAME || !env.REGISTRY_PASSWORD) {
      throw badInput('REGISTRY_USERNAME and REGISTRY_PASSWORD go together');
    }
    return { username: env.REGISTRY_USERNAME, password: env.REGISTRY_PASSWORD, serveraddress: registry };
  }
  return dockerConfigCredentials(registry, env);
}

/** What a release pushed. */
export interface Released {
  readonly built: Built;
  /** REPO:TAG@sha256:… */
  readonly pushed: string;
  /** REPO@sha256:…: how to deploy it (a tag can be pushed over, a digest cannot). */
  readonly reference: string;
  readonly digest: string;
  /** Where the signature and attestations went; undefined for an --unsigned release. */
  readonly signatures?: ReleaseSignatures;
}

/**
 * Build → verify → push → sign: the verification suite runs against the exact image id just built, the
 * image is pushed only if it passed, and the digest pushed is what gets signed and attested. The signing
 * key is decrypted before anything is built: a wrong passphrase costs nothing.
 */
export async function releaseImage(config: ReleaseConfig, progress: Progress): Promise<Released> {
  if (config.target !== 'server') throw badInput('release publishes the server image (no --target client)');
  const registry = releaseRegistry(config.tag);
  const auth = registryAuth(registry);
  const signing = config.signing;
  let key;
  // Checked before the build: a result about another commit or profile costs nothing.
  const mutation =
    signing.kind === 'key' && signing.mutationResult !== undefined
      ? readMutationRun(userPath(signing.mutationResult), config.profile, headCommit(projectPath()))
      : undefined;
  if (signing.kind === 'key') {
    const passphrase = readPassphrase(signing.passphraseFile === '-' ? '-' : userPath(signing.passphraseFile));
    try {
      key = readSigningKey(userPath(signing.keyFile), passphrase);
    } finally {
      passphrase.fill(0);
    }
    if (signing.gpg) await checkGpgSigning(signing.gpg.fingerprint);
  } else {
    progress('[release] --unsigned: the image will be pushed WITHOUT a signature or attestations');
  }
  const startedOn = new Date();
  const engine = connectEngine();
  const built = await buildWithOutputs(config, engine, progress);
  const finishedOn = new Date();
  let checks: readonly SuiteCheck[] = [];
  const suiteStarted = new Date();
  // The suite needs user:password lines the image accepts: the baked ones, or test users to mount.
  const scratch = mkdtempSync(join(tmpdir(), 'memcached-hardened-release-'));
  try {
    const usersFile = join(scratch, 'users');
    writeFileSync(usersFile, serializeUsers(built.users ?? [generatedUser()]), { mode: 0o600 });
    progress(`[verify] running the verification suite against ${built.result.imageId}`);
    const verdict = await runSuite({
      imageId: built.result.imageId,
      profile: config.profile,
      usersFile,
      bail: true,
      progress,
    });
    if (!verdict.passed) {
      throw failure(
        `verification failed: ${config.tag} (${built.result.imageId}) was not pushed; ` +
          `first failure: ${verdict.failedChecks[0] ?? 'none named'}`,
      );
    }
    checks = verdict.checks ?? [];
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const [image, base] = await Promise.all([
    engine.inspectImage(built.result.imageId),
    engine.inspectImage(built.result.base),
  ]);
  // What a signed release attests is read before the push: one it could not attest is not pushed.
  let attached: Attached | undefined;
  if (key) attached = readAttached(built, config.tls, suiteStarted);
  progress(`[release] pushing ${config.tag} to ${registry}${auth ? ` ${describeCredentials(auth)}` : ''}`);
  let digest: string;
  const onMessage = (m: EngineMessage) =>
    m.status && progress(`[push] ${m.status}${m.progress ? ` ${m.progress}` : ''}`);
  try {
    digest = await engine.push(config.tag, auth, onMessage);
  } catch (error) {
    throw failure(`push of ${config.tag} refused: ${(error as Error).message.split('\n')[0]}`);
  }
  const pushed = `${config.tag}@${digest}`;
  const reference = parseImageReference(config.tag);
  const byDigest = `${imageName(reference)}@${digest}`;
  if (!key || !attached || signing.kind !== 'key') return { built, pushed, reference: byDigest, digest };
  try {
    const signatures = await signRelease({
      config,
      reference,
      repository: imageName(reference),
      digest,
      key,
      auth,
      built,
      checks,
      attached,
      mutationCheck: mutationCheckAnnotation(mutation, image?.labels[INPUTS_LABEL]),
      suiteFiles: VERIFICATION_FILES,
      sourceCommit: image?.labels['org.opencontainers.image.revision'] ?? 'unknown',
      baseImageId: base?.id ?? 'unknown',
      startedOn,
      finishedOn,
      gpg: signing.gpg && {
        ...signing.gpg,
        lookaside: userPath(signing.gpg.lookaside),
        ...(signing.gpg.passphraseFile ? { passphraseFile: userPath(signing.gpg.passphraseFile) } : {}),
      },
      progress,
    });
    return { built, pushed, reference: byDigest, digest, signatures };
  } catch (error) {
    const why = (error as Error).message.split('\n')[0];
    throw failure(`${pushed} was pushed but signing it failed (policies that require the signature refuse it): ${why}`);
  }
}
