import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { badInput } from './errors.js';

export interface RegistryAuth {
  readonly username: string;
  readonly password: string;
  readonly serveraddress: string;
}

/** The registry host of a reference (`host[:port]/repo:tag`), or undefined for a Docker Hub style name. */
export function registryOf(reference: string): string | undefined {
  const first = reference.split('/')[0] ?? '';
  return reference.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : undefined;
}

/** A release must name the registry it goes to. */
export function releaseRegistry(tag: string): string {
  const registry = registryOf(tag);
  if (!registry) throw badInput(`--tag '${tag}' names no registry: use REGISTRY/REPO:TAG (e.g. 127.0.0.1:5000/memcached-hardened:1.0)`);
  return registry;
}

/**
 * Push credentials: REGISTRY_USERNAME + REGISTRY_PASSWORD, else the Docker config's `auths` entry for the
 * registry ($DOCKER_CONFIG/config.json or ~/.docker/config.json), else none (an open registry).
 */
export function registryAuth(registry: string, env: NodeJS.ProcessEnv = process.env): RegistryAuth | undefined {
  if (env.REGISTRY_USERNAME || env.REGISTRY_PASSWORD) {
    if (!env.REGISTRY_USERNAME || !env.REGISTRY_PASSWORD) throw badInput('REGISTRY_USERNAME and REGISTRY_PASSWORD go together');
    return { username: env.REGISTRY_USERNAME, password: env.REGISTRY_PASSWORD, serveraddress: registry };
  }
  const configPath = join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json');
  if (!existsSync(configPath)) return undefined;
  let config: { auths?: Record<string, { auth?: string }> };
  try {
    config = JSON.parse(readFileSync(configPath, 'utf8')) as typeof config;
  } catch {
    throw badInput(`${configPath} is not valid JSON`);
  }
  const entry = config.auths?.[registry] ?? config.auths?.[`https://${registry}`] ?? config.auths?.[`http://${registry}`];
  if (!entry?.auth) return undefined;
  const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw badInput(`${configPath}: the auth entry for ${registry} is malformed`);
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: registry };
}
