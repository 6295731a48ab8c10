import { randomBytes } from 'node:crypto';
import type { Engine } from './docker.js';
import { badInput, failure } from './errors.js';

/** One SASL user for memcached's sasldb. */
export interface SaslUser {
  readonly name: string;
  readonly password: string;
}

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_USERS = 10_000;
const MAX_LINE_BYTES = 4096;
const MAX_NAME_LENGTH = 64;
/** The user created when no users file is given. */
export const GENERATED_USER_NAME = 'app';

// Control characters, including NUL and DEL.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why a user name is unusable, or undefined: ':' splits the file, '@' would name a realm. */
export function userNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'user name is empty';
  if (name.length > MAX_NAME_LENGTH) return `user name is longer than ${MAX_NAME_LENGTH} characters`;
  if (CONTROL.test(name)) return 'user name contains a control character';
  if (/\s/u.test(name)) return 'user name contains whitespace';
  if (name.includes('@')) return "user name contains '@' (the realm is the server's business)";
  return undefined;
}

/** Why a password is unusable, or undefined. Never includes the password itself. */
export function passwordProblem(password: string): string | undefined {
  if (password.length === 0) return 'password is empty';
  if ([...password].length < MIN_PASSWORD_LENGTH) return `password is shorter than ${MIN_PASSWORD_LENGTH} characters`;
  if (CONTROL.test(password)) return 'password contains a control character';
  return undefined;
}

/**
 * Parses a users file: `user:password` lines, `#` comments and blank lines ignored, the password is
 * everything after the first ':'. Errors name the line, never its content, so no password is echoed.
 */
export function parseUsersFile(bytes: Uint8Array, source = 'users file'): SaslUser[] {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw badInput(`${source}: not valid UTF-8`);
  }
  if (text.startsWith('\ufeff')) text = text.slice(1);
  const users: SaslUser[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const where = `${source} line ${index + 1}`;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) throw badInput(`${where}: longer than ${MAX_LINE_BYTES} bytes`);
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon < 0) throw badInput(`${where}: expected user:password (no ':' found)`);
    const name = line.slice(0, colon);
    const password = line.slice(colon + 1);
    const nameProblem = userNameProblem(name);
    if (nameProblem) throw badInput(`${where}: ${nameProblem}`);
    const pwProblem = passwordProblem(password);
    if (pwProblem) throw badInput(`${where}: ${pwProblem.replace('password', `password for '${name}'`)}`);
    if (seen.has(name)) throw badInput(`${where}: duplicate user '${name}'`);
    seen.add(name);
    users.push({ name, password });
    if (users.length > MAX_USERS) throw badInput(`${source}: more than ${MAX_USERS} users`);
  });
  if (users.length === 0) throw badInput(`${source}: no users (expected user:password lines)`);
  return users;
}

/** The users as the build context's `users` file: one canonical `user:password` line each. */
export function serializeUsers(users: readonly SaslUser[]): string {
  return users.map((u) => `${u.name}:${u.password}\n`).join('');
}

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
