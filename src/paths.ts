import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { homedir } from 'node:os';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

/** A path inside the project checkout (templates, profiles, image files, scripts). */
export function projectPath(...parts: string[]): string {
  return join(root, ...parts);
}

/** Where bootstrapped root filesystems and fetched keyrings are kept between builds. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.MEMCACHED_HARDENED_CACHE ?? join(env.HOME ?? homedir(), '.cache', 'memcached-hardened');
}
