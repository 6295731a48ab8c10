import { randomBytes } from 'node:crypto';
import type { Engine } from './docker.js';
import { failure } from './errors.js';
import { serializeUsers, type SaslUser } from './credentials.js';

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
export async function generateSasldb(engine: Engine, toolsImage: string, users: readonly SaslUser[], realm: string): Promise<Buffer> {
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
