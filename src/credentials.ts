import { badInput } from './errors.js';

/**
 * The rulebook for users files: the CLI applies it to `--users-file`, and the runtime-credentials
 * entrypoint applies the shell rendering of the very same rules (credentialRulesShell) at every start.
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

/** The problems a users file can have; the shell rendering prints exactly these words. */
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

const sq = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * The same rules as POSIX shell functions, for the runtime-credentials entrypoint (sourced from a file
 * the build renders). Byte-exact under LC_ALL=C: characters are counted as UTF-8 lead bytes.
 *   credential_problem NAME PASSWORD   prints the problem with one user, or nothing
 *   users_file_problem FILE            prints " line N: problem" (": problem" for the whole file), or nothing:
 *                                      the words after the file name in the CLI's message
 *   users_file_each FILE COMMAND       runs COMMAND NAME PASSWORD for every user of a valid file
 */
export function credentialRulesShell(): string {
  const passwordSays = (problem: string) => `"${forUser(problem, '$1')}"`;
  return `# shellcheck shell=sh
# Generated from src/credentials.ts (the CLI applies the same rules): do not edit.
LC_ALL=C
export LC_ALL

# Characters, not bytes: UTF-8 continuation bytes (0x80-0xBF) do not start a character.
credential_characters() { printf '%s' "$1" | tr -d '\\200-\\277' | wc -c; }

credential_problem() {
  case "$1" in '') echo ${sq(PROBLEM.nameEmpty)}; return ;; esac
  case "$1" in *[[:cntrl:]]*) echo ${sq(PROBLEM.nameControl)}; return ;; esac
  case "$1" in *' '*) echo ${sq(PROBLEM.nameSpace)}; return ;; esac
  case "$1" in *[!!-~]*) echo ${sq(PROBLEM.nameNotAscii)}; return ;; esac
  case "$1" in *@*) echo ${sq(PROBLEM.nameAt)}; return ;; esac
  [ "\${#1}" -le ${MAX_NAME_CHARACTERS} ] || { echo ${sq(PROBLEM.nameLong)}; return; }
  case "$2" in '') echo ${passwordSays(PROBLEM.passwordEmpty)}; return ;; esac
  [ "$(credential_characters "$2")" -ge ${MIN_PASSWORD_CHARACTERS} ] || { echo ${passwordSays(PROBLEM.passwordShort)}; return; }
  [ "$(printf '%s' "$2" | wc -c)" -le ${MAX_PASSWORD_BYTES} ] || { echo ${passwordSays(PROBLEM.passwordLong)}; return; }
  case "$2" in *[[:cntrl:]]*) echo ${passwordSays(PROBLEM.passwordControl)}; return ;; esac
  # C1 controls (U+0080-U+009F) are 0xC2 0x80-0x9F in UTF-8.
  if printf '%s' "$2" | grep -q "$(printf '\\302[\\200-\\237]')"; then echo ${passwordSays(PROBLEM.passwordControl)}; fi
}

# Calls "$2 LINE-NUMBER LINE" for every line that is not blank or a comment; stops at the first failure.
# NUL bytes become \\001: the shell cannot hold them, and either is a control character to the rules.
users_file_lines() {
  credential_line_number=0
  while IFS= read -r credential_line || [ -n "$credential_line" ]; do
    credential_line_number=$((credential_line_number + 1))
    [ "$credential_line_number" -ne 1 ] || credential_line=\${credential_line#"$(printf '\\357\\273\\277')"}
    credential_line=\${credential_line%"$(printf '\\r')"}
    if [ "$(printf '%s' "$credential_line" | wc -c)" -gt ${MAX_LINE_BYTES} ]; then echo " line $credential_line_number: ${PROBLEM.longLine}"; return 1; fi
    case "$credential_line" in *[![:space:]]*) ;; *) continue ;; esac
    case "\${credential_line#"\${credential_line%%[![:space:]]*}"}" in '#'*) continue ;; esac
    "$2" "$credential_line_number" "$credential_line" || return
  done <<CREDENTIAL_LINES
$(tr '\\000' '\\001' < "$1")
CREDENTIAL_LINES
}

credential_check_line() {
  case "$2" in *:*) ;; *) echo " line $1: ${PROBLEM.noColon}"; return 1 ;; esac
  credential_found=$(credential_problem "\${2%%:*}" "\${2#*:}")
  if [ -n "$credential_found" ]; then echo " line $1: $credential_found"; return 1; fi
  case " $credential_names " in *" \${2%%:*} "*) echo " line $1: ${PROBLEM.duplicate} '\${2%%:*}'"; return 1 ;; esac
  credential_names="$credential_names \${2%%:*}"
  credential_count=$((credential_count + 1))
  if [ "$credential_count" -gt ${MAX_USERS} ]; then echo ": ${PROBLEM.tooManyUsers}"; return 1; fi
}

users_file_problem() {
  if ! iconv -f UTF-8 -t UTF-8 < "$1" > /dev/null 2>&1; then echo ": ${PROBLEM.notUtf8}"; return; fi
  credential_names='' credential_count=0
  if users_file_lines "$1" credential_check_line && [ "$credential_count" -eq 0 ]; then echo ": ${PROBLEM.noUsers}"; fi
}

credential_each_user() { "$credential_command" "\${2%%:*}" "\${2#*:}"; }

users_file_each() {
  credential_command=$2
  users_file_lines "$1" credential_each_user
}
`;
}
