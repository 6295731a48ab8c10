import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Progress } from './base.js';
import type { BuildConfig } from './config.js';
import { connectEngine, type EngineMessage } from './engine/index.js';
import { badInput, failure } from './errors.js';
import { parseImageReference } from './image-reference.js';
import { buildWithOutputs, type Built } from './outputs.js';
import {
  describeCredentials,
  dockerConfigCredentials,
  type RegistryCredentials,
} from './registry-credentials.js';
import { serializeUsers } from './credentials.js';
import { generatedUser } from './sasldb.js';
import { runSuite } from './verify.js';

/** A release must name the registry it goes to. */
export function releaseRegistry(tag: string): string {
  const { registry } = parseImageReference(tag);
  if (!registry) throw badInput(`--tag '${tag}' names no registry: use REGISTRY/REPO:TAG (e.g. 127.0.0.1:5000/memcached-hardened:1.0)`);
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
  readonly digest: string;
}

/**
 * Build → verify → push: the verification suite runs against the exact image id just built, and the
 * image is pushed only if it passed.
 */
export async function releaseImage(config: BuildConfig, progress: Progress): Promise<Released> {
  if (config.target !== 'server') throw badInput('release publishes the server image (no --target client)');
  const registry = releaseRegistry(config.tag);
  const auth = registryAuth(registry);
  const engine = connectEngine();
  const built = await buildWithOutputs(config, engine, progress);
  // The suite needs user:password lines the image accepts: the baked ones, or test users to mount.
  const scratch = mkdtempSync(join(tmpdir(), 'memcached-hardened-release-'));
  try {
    const usersFile = join(scratch, 'users');
    writeFileSync(usersFile, serializeUsers(built.users ?? [generatedUser()]), { mode: 0o600 });
    progress(`[verify] running the verification suite against ${built.result.imageId}`);
    const verdict = await runSuite({ imageId: built.result.imageId, profile: config.profile, usersFile, bail: true, progress });
    if (!verdict.passed) {
      throw failure(`verification failed: ${config.tag} (${built.result.imageId}) was not pushed; first failure: ${verdict.failedChecks[0] ?? 'none named'}`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  progress(`[release] pushing ${config.tag} to ${registry}${auth ? ` ${describeCredentials(auth)}` : ''}`);
  let digest: string;
  const onMessage = (m: EngineMessage) =>
    m.status && progress(`[push] ${m.status}${m.progress ? ` ${m.progress}` : ''}`);
  try {
    digest = await engine.push(config.tag, auth, onMessage);
  } catch (error) {
    throw failure(`push of ${config.tag} refused: ${(error as Error).message.split('\n')[0]}`);
  }
  return { built, pushed: `${config.tag}@${digest}`, digest };
}
