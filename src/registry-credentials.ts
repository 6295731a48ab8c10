import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { RegistryAuth } from './engine/index.js';
import { badInput, failure } from './errors.js';

/**
 * Push credentials in the two shapes of the engine's X-Registry-Auth: a user and password, or an identity
 * token (an OAuth refresh token the registry's token server exchanges, as `docker login` stores for some
 * registries).
 */
export type RegistryCredentials = RegistryAuth;

/** What a credential helper prints (with a non-zero exit) when it holds nothing for the server. */
export const CREDENTIALS_NOT_FOUND = 'credentials not found in native keychain';
/** The Username a helper answers with when its Secret is an identity token. */
const TOKEN_USERNAME = '<token>';
/** A helper may unlock a keychain or ask an agent; one that hangs must not hold the release forever. */
export const HELPER_TIMEOUT_MS = 30_000;

/** The part of the Docker config that says where credentials are. */
interface DockerConfig {
  readonly auths: Readonly<Record<string, AuthsEntry>>;
  readonly credHelpers: Readonly<Record<string, string>>;
  readonly credsStore?: string;
}

interface AuthsEntry {
  readonly auth?: string;
  readonly username?: string;
  readonly password?: string;
  readonly identitytoken?: string;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, as the Docker CLI reads it. */
export function dockerConfigPath(env: NodeJS.ProcessEnv): string {
  return join(env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker'), 'config.json');
}

/** The host an `auths` key of the Docker config stands for: keys may be URLs (`https://host:5000/v1/`). */
function authKeyHost(key: string): string {
  return key.replace(/^https?:\/\//, '').split('/')[0] ?? '';
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads the config's credential fields, refusing wrong types (a crash later would name nothing). */
function readDockerConfig(configPath: string): DockerConfig | undefined {
  if (!existsSync(configPath)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch {
    throw badInput(`${configPath} is not valid JSON`);
  }
  if (!isRecord(parsed)) throw badInput(`${configPath} is not a JSON object`);
  const { auths = {}, credHelpers = {}, credsStore } = parsed;
  if (!isRecord(auths) || !Object.values(auths).every(isRecord)) {
    throw badInput(`${configPath}: auths is not an object of entries`);
  }
  if (!isRecord(credHelpers) || !Object.values(credHelpers).every((name) => typeof name === 'string')) {
    throw badInput(`${configPath}: credHelpers does not map registries to helper names`);
  }
  if (credsStore !== undefined && typeof credsStore !== 'string') {
    throw badInput(`${configPath}: credsStore is not a string`);
  }
  return {
    auths: auths as Record<string, AuthsEntry>,
    credHelpers: credHelpers as Record<string, string>,
    ...(credsStore ? { credsStore } : {}),
  };
}

/**
 * The Docker config's credentials for `registry`, resolved as the Docker CLI does: `credHelpers[registry]`, else
 * `credsStore`, names a helper that alone answers for the registry (its "not found" means none, not the
 * `auths` entry); without a helper, the `auths` entry. An empty `credHelpers[registry]` means `auths`, as in Docker.
 */
export function dockerConfigCredentials(registry: string, env: NodeJS.ProcessEnv): RegistryCredentials | undefined {
  const configPath = dockerConfigPath(env);
  const config = readDockerConfig(configPath);
  if (!config) return undefined;
  // Stores are asked by the registry's host (the name in the tag); no registry's legacy key is special-cased.
  const helper = Object.hasOwn(config.credHelpers, registry) ? config.credHelpers[registry] : config.credsStore;
  if (helper) return helperCredentials(helper, registry, env);
  return authsCredentials(config.auths, registry, configPath);
}

/** The `auths` entry filed under the registry itself, else under a key (URL or host) whose host it is. */
function authsCredentials(
  auths: Readonly<Record<string, AuthsEntry>>,
  registry: string,
  configPath: string,
): RegistryCredentials | undefined {
  const entry = auths[registry] ?? Object.entries(auths).find(([k]) => authKeyHost(k) === registry)?.[1];
  if (!entry) return undefined;
  if (typeof entry.identitytoken === 'string' && entry.identitytoken) {
    return { identitytoken: entry.identitytoken, serveraddress: registry };
  }
  if (typeof entry.auth === 'string' && entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw badInput(`${configPath}: the auth entry for ${registry} is malformed`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: registry };
  }
  // `docker login` writes `auth`; hand-written configs may spell the two fields out.
  const username = typeof entry.username === 'string' ? entry.username : '';
  const password = typeof entry.password === 'string' ? entry.password : '';
  return username || password ? { username, password, serveraddress: registry } : undefined;
}

/**
 * Asks `docker-credential-<helper> get` for `serverAddress`, written to its stdin (argv carries no secret and
 * no shell runs). Errors name the program and the server, never the helper's stdout, which holds the secret.
 */
export function helperCredentials(
  helper: string,
  serverAddress: string,
  env: NodeJS.ProcessEnv,
  timeoutMs = HELPER_TIMEOUT_MS,
): RegistryCredentials | undefined {
  // The name becomes a program name: a path in it would run something other than a helper on PATH.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper)) {
    throw badInput(`the Docker config names an invalid credential helper '${helper}'`);
  }
  const program = `docker-credential-${helper}`;
  const retry = `(try: echo ${serverAddress} | ${program} get)`;
  const run = spawnSync(program, ['get'], {
    input: serverAddress,
    env,
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['pipe', 'pipe', 'pipe'],
    windowsHide: true,
  });
  const code = (run.error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') throw badInput(`the Docker config's credential helper ${program} is not on PATH`);
  if (code === 'ETIMEDOUT') {
    throw failure(`${program} gave no credentials for ${serverAddress} within ${timeoutMs / 1000} s`);
  }
  if (run.error) throw failure(`${program} could not be run for ${serverAddress}: ${code ?? run.error.name}`);
  if (run.status !== 0) {
    // The one answer Docker takes for "no credentials" (docker-credential-helpers compares it exactly).
    if (run.status !== null && run.stdout.trim() === CREDENTIALS_NOT_FOUND) return undefined;
    const how = run.status === null ? `was killed by ${run.signal ?? 'a signal'}` : `exited with ${run.status}`;
    throw failure(`${program} get ${how} for ${serverAddress} ${retry}`);
  }
  let answer: unknown;
  try {
    answer = JSON.parse(run.stdout);
  } catch {
    throw failure(`${program} answered for ${serverAddress} with something other than JSON ${retry}`);
  }
  const { Username: username, Secret: secret } = isRecord(answer) ? answer : {};
  if (typeof username !== 'string' || typeof secret !== 'string') {
    throw failure(`${program} answered for ${serverAddress} without a string Username and Secret ${retry}`);
  }
  // An empty answer is what Docker would push with: nothing.
  if (!secret && !username) return undefined;
  if (username === TOKEN_USERNAME) return { identitytoken: secret, serveraddress: serverAddress };
  return { username, password: secret, serveraddress: serverAddress };
}

/** Who the push goes as, for the progress line (never the secret). */
export function describeCredentials(credentials: RegistryCredentials): string {
  return 'identitytoken' in credentials ? 'with an identity token' : `as ${credentials.username}`;
}
