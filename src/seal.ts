import { createHmac, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SaslUser } from './credentials.js';
import { cacheDir } from './paths.js';
import { compareCodeUnits } from './text-order.js';

/**
 * The users seal: a label that lets a rebuild on the machine that baked an image see, without reading
 * its sasldb, that the image holds exactly the given users. It is an HMAC under a random key that never
 * leaves this machine's cache (a 0600 file). Without the key the label says nothing about the passwords,
 * so it is no offline oracle for whoever can read the image config. Only the key's holder could test
 * guesses against it, and that is the account that holds the users file and can read any image's sasldb.
 * A machine without the key (another builder, a cleared cache) reads the sasldb instead.
 */
export const SEAL_LABEL = 'memcached-hardened.users-seal';

const KEY_BYTES = 32;
const KEY_FILE = 'users-seal.key';

/** The seal of exactly these users under `realm`, bound to the build inputs (so equal users on other builds do not match). */
export function usersSeal(key: Buffer, inputs: string, users: readonly SaslUser[], realm: string): string {
  const sorted = users.map((u) => [u.name, u.password] as const).sort(([a], [b]) => compareCodeUnits(a, b));
  const canonical = JSON.stringify({ inputs, realm, users: sorted });
  return `hmac-sha256:${createHmac('sha256', key).update(canonical).digest('hex')}`;
}

/** The key, when it exists as only its owner can read it and holds exactly KEY_BYTES bytes. */
function existingKey(path: string): Buffer | undefined {
  try {
    if ((statSync(path).mode & 0o077) !== 0) return undefined;
    const key = readFileSync(path);
    return key.length === KEY_BYTES ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * This machine's seal key, created on first use. A key file others could read, or of the wrong size, is
 * replaced (rebuilds of images sealed under it then read their sasldb). Undefined when the cache cannot be
 * written: the seal is a shortcut, never a condition.
 */
export function usersSealKey(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const path = join(cacheDir(env), KEY_FILE);
  const found = existingKey(path);
  if (found) return found;
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    mkdirSync(cacheDir(env), { recursive: true, mode: 0o700 });
    const fresh = randomBytes(KEY_BYTES);
    writeFileSync(temporary, fresh, { mode: 0o600, flag: 'wx' });
    try {
      // First writer wins: a build that raced us keeps the key its image was sealed with.
      linkSync(temporary, path);
      return fresh;
    } catch {
      const raced = existingKey(path);
      if (raced) return raced;
      renameSync(temporary, path);
      return fresh;
    }
  } catch {
    return undefined;
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // Already renamed into place, or never written.
    }
  }
}
