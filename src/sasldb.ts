import { randomBytes } from 'node:crypto';
import { readHashDb, type DbEntry } from './berkeley-db.js';
import type { Engine, ImageFacts } from './engine/index.js';
import { failure } from './errors.js';
import { serializeUsers, type SaslUser } from './credentials.js';
import { BAKED_SASLDB_PATH } from './render.js';

/** The user created when no users file is given. */
export const GENERATED_USER_NAME = 'app';

/** A strong random password: 32 URL-safe characters from 24 random bytes. */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/** The single user created when no users file is given. */
export function generatedUser(): SaslUser {
  return { name: GENERATED_USER_NAME, password: generatePassword() };
}

/**
 * The shell script that turns `user:password` lines on stdin into a sasldb and writes it to stdout.
 * Passwords go to saslpasswd2 through a pipe (-p), never through argv.
 */
export function sasldbScript(realm: string): string {
  return [
    'set -eu',
    'db=$(mktemp -d)/sasldb2',
    'while IFS= read -r line; do',
    `  printf '%s' "\${line#*:}" | saslpasswd2 -p -c -a memcached -u ${realm} -f "$db" "\${line%%:*}"`,
    'done',
    'cat "$db"',
  ].join('\n');
}

/** Builds the sasldb in a throwaway, network-less container of the tools image; users arrive on stdin. */
export async function generateSasldb(
  engine: Engine,
  toolsImage: string,
  users: readonly SaslUser[],
  realm: string,
): Promise<Buffer> {
  const result = await engine.run({
    image: toolsImage,
    command: ['sh', '-c', sasldbScript(realm)],
    stdin: serializeUsers(users),
    labels: { 'memcached-hardened.purpose': 'sasldb' },
  });
  if (result.exitCode !== 0 || result.stdout.length === 0) {
    const reason = result.stderr.trim().split('\n').pop() ?? `exit ${result.exitCode}`;
    throw failure(`generating the sasldb failed: ${reason}`);
  }
  return result.stdout;
}

/**
 * True when the entries are exactly what saslpasswd2 writes for these users under `realm`: one
 * `user NUL realm NUL userPassword` key per user holding the password, and nothing else.
 */
export function holdsExactly(entries: readonly DbEntry[], users: readonly SaslUser[], realm: string): boolean {
  if (entries.length !== users.length) return false;
  const expected = new Map(
    users.map((u) => [Buffer.from(`${u.name}\0${realm}\0userPassword`).toString('hex'), Buffer.from(u.password)]),
  );
  const matched = new Set<string>();
  for (const entry of entries) {
    const key = entry.key.toString('hex');
    const password = expected.get(key);
    if (password === undefined || matched.has(key) || !entry.data.equals(password)) return false;
    matched.add(key);
  }
  return true;
}

/**
 * The sasldb of a baked image, when it holds exactly these users. The comparison happens in memory:
 * nothing derived from a password is kept outside the image.
 */
export async function reusableSasldb(
  engine: Engine,
  image: ImageFacts | undefined,
  users: readonly SaslUser[],
  realm: string,
): Promise<Buffer | undefined> {
  try {
    if (image?.labels['memcached-hardened.credentials'] !== 'baked') return undefined;
    const bytes = await engine.readFile(image.id, BAKED_SASLDB_PATH);
    return bytes !== undefined && holdsExactly(readHashDb(bytes), users, realm) ? bytes : undefined;
  } catch {
    // An image that vanished meanwhile, or a database this reader does not fully understand, is simply
    // not reused: a fresh sasldb is generated instead.
    return undefined;
  }
}
