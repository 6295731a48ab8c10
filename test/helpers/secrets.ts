import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import { MEMCACHE_UID } from '../../src/render.js';

/** Writes a secret file as the image expects one mounted: owned by its memcache user, mode 0400. */
export function writeMemcacheSecret(path: string, content: string): string {
  writeFileSync(path, content);
  chownSync(path, MEMCACHE_UID, MEMCACHE_UID);
  chmodSync(path, 0o400);
  return path;
}
