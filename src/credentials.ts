import { badInput } from './errors.js';

/**
 * The rulebook for users files: the CLI applies it to `--users-file`, and the runtime-credentials
 * entrypoint applies the same rules, in shell (credential-rules.sh, with credentialRuleValues), at every start.
 *
 * Non-ASCII: user names are printable ASCII (clients differ in how they normalise Unicode names, and
 * look-alike names are a trap in a sasldb nobody can list from a client); passwords may be any UTF-8
 * text without control characters, and their length is counted in characters (code points), not bytes.
 */

/** One SASL user for memcached's sasldb. */
export interface SaslUser {
  readonly name: string;
  readonly password: string;
}

export const MIN_PASSWORD_CHARACTERS = 12;
export const MAX_NAME_CHARACTERS = 64;
/** saslpasswd2 silently cuts longer passwords: such a user could never log in. */
export const MAX_PASSWORD_BYTES = 2048;
export const MAX_LINE_BYTES = 4096;
export const MAX_USERS = 10_000;

/** The problems a users file can have; the shell rules print exactly these words. */
export const PROBLEM = {
  notUtf8: 'not valid UTF-8',
  noColon: "expected user:password (no ':' found)",
  longLine: `longer than ${MAX_LINE_BYTES} bytes`,
  noUsers: 'no users (expected user:password lines)',
  tooManyUsers: `more than ${MAX_USERS} users`,
  nameEmpty: 'user name is empty',
  nameControl: 'user name contains a control character',
  nameSpace: 'user name contains whitespace',
  nameNotAscii: 'user name contains a character outside printable ASCII',
  nameAt: "user name contains '@' (the realm is the server's business)",
  nameLong: `user name is longer than ${MAX_NAME_CHARACTERS} characters`,
  passwordEmpty: 'password is empty',
  passwordShort: `password is shorter than ${MIN_PASSWORD_CHARACTERS} characters`,
  passwordLong: `password is longer than ${MAX_PASSWORD_BYTES} bytes`,
  passwordControl: 'password contains a control character',
  duplicate: 'duplicate user',
} as const;

// C0 controls and DEL (in a name, anything else outside printable ASCII has its own message).
// eslint-disable-next-line no-control-regex
const ASCII_CONTROL = /[\u0000-\u001f\u007f]/;
// C0, DEL and C1 controls: what a password must not contain.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why a user name is unusable, or undefined: ':' splits the file, '@' would name a realm. */
export function userNameProblem(name: string): string | undefined {
  if (name.length === 0) return PROBLEM.nameEmpty;
  if (ASCII_CONTROL.test(name)) return PROBLEM.nameControl;
  if (name.includes(' ')) return PROBLEM.nameSpace;
  if (/[^!-~]/.test(name)) return PROBLEM.nameNotAscii;
  if (name.includes('@')) return PROBLEM.nameAt;
  if (name.length > MAX_NAME_CHARACTERS) return PROBLEM.nameLong;
  return undefined;
}

/** Why a password is unusable, or undefined. Never includes the password itself. */
export function passwordProblem(password: string): string | undefined {
  if (password.length === 0) return PROBLEM.passwordEmpty;
  if ([...password].length < MIN_PASSWORD_CHARACTERS) return PROBLEM.passwordShort;
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return PROBLEM.passwordLong;
  if (CONTROL.test(password)) return PROBLEM.passwordControl;
  return undefined;
}

/** A password problem, said of one user (the name is not secret, the password never appears). */
function forUser(problem: string, name: string): string {
  return problem.replace('password', `password for '${name}'`);
}

/** Blank or comment: only ASCII blanks count, as in the shell rendering. */
const SKIPPED_LINE = /^[ \t\v\f\r]*(#|$)/;

/**
 * Parses a users file: `user:password` lines, `#` comments and blank lines ignored, the password is
 * everything after the first ':'. Errors name the line, never its content, so no password is echoed.
 */
export function parseUsersFile(bytes: Uint8Array, source = 'users file'): SaslUser[] {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw badInput(`${source}: ${PROBLEM.notUtf8}`);
  }
  const users: SaslUser[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const where = `${source} line ${index + 1}`;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) throw badInput(`${where}: ${PROBLEM.longLine}`);
    if (SKIPPED_LINE.test(line)) return;
    const colon = line.indexOf(':');
    if (colon < 0) throw badInput(`${where}: ${PROBLEM.noColon}`);
    const name = line.slice(0, colon);
    const password = line.slice(colon + 1);
    const nameProblem = userNameProblem(name);
    if (nameProblem) throw badInput(`${where}: ${nameProblem}`);
    const pwProblem = passwordProblem(password);
    if (pwProblem) throw badInput(`${where}: ${forUser(pwProblem, name)}`);
    if (seen.has(name)) throw badInput(`${where}: ${PROBLEM.duplicate} '${name}'`);
    seen.add(name);
    users.push({ name, password });
    if (users.length > MAX_USERS) throw badInput(`${source}: ${PROBLEM.tooManyUsers}`);
  });
  if (users.length === 0) throw badInput(`${source}: ${PROBLEM.noUsers}`);
  return users;
}

/** The users as a users file: one canonical `user:password` line each. */
export function serializeUsers(users: readonly SaslUser[]): string {
  return users.map((u) => `${u.name}:${u.password}\n`).join('');
}

/** camelCase to the shell's UPPER_SNAKE_CASE: `nameNotAscii` is PROBLEM_NAME_NOT_ASCII. */
const shellName = (key: string) => key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase();

/**
 * The limits and words of these rules, for the image's values.sh: the same rules in shell
 * (image-files/usr/local/lib/memcached-hardened/credential-rules.sh, a static file) read them from there,
 * so a limit or a message has one source, here.
 */
export function credentialRuleValues(): Record<string, string> {
  return {
    MIN_PASSWORD_CHARACTERS: String(MIN_PASSWORD_CHARACTERS),
    MAX_NAME_CHARACTERS: String(MAX_NAME_CHARACTERS),
    MAX_PASSWORD_BYTES: String(MAX_PASSWORD_BYTES),
    MAX_LINE_BYTES: String(MAX_LINE_BYTES),
    MAX_USERS: String(MAX_USERS),
    ...Object.fromEntries(Object.entries(PROBLEM).map(([key, words]) => [`PROBLEM_${shellName(key)}`, words])),
  };
}
