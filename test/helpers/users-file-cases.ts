import {
  MAX_NAME_CHARACTERS,
  MAX_PASSWORD_BYTES,
  MIN_PASSWORD_CHARACTERS,
  parseUsersFile,
} from '../../src/credentials.js';
import { UserError } from '../../src/errors.js';

/**
 * One table of users files, each judged by the CLI's parser and by the entrypoint's shell version of the
 * same rules (credential-rules.sh with values.sh): the verdicts must be identical. The integration suite
 * runs this table in a real runtime-credentials container too (test/integration/runtime-credentials.test.ts).
 */
export const USERS_FILE_CASES: ReadonlyArray<readonly [string, string | Uint8Array]> = [
  [
    'plain users, comments, blank lines, CRLF',
    '# team\n\nsammy:correct-horse-battery\r\n  # indented\nalice:pass:with:colons-1\n',
  ],
  ['a byte-order mark and no final newline', '\ufeffsammy:correct-horse-battery'],
  ['a non-ASCII user name', 'josé:correct-horse-battery\n'],
  ['a no-break space in a name', 'sam\u00a0my:correct-horse-battery\n'],
  ['a password of 6 two-byte letters (12 bytes)', 'sammy:éééééé\n'],
  [`a password of ${MIN_PASSWORD_CHARACTERS} two-byte letters`, `sammy:${'é'.repeat(MIN_PASSWORD_CHARACTERS)}\n`],
  ['a password of 11 characters', 'sammy:abcdefghijk\n'],
  [`a password of ${MAX_PASSWORD_BYTES} bytes`, `sammy:${'p'.repeat(MAX_PASSWORD_BYTES)}\n`],
  [
    `a password of ${MAX_PASSWORD_BYTES + 1} bytes in fewer characters`,
    `sammy:${'é'.repeat(MAX_PASSWORD_BYTES / 2)}p\n`,
  ],
  ['a Cyrillic password', 'sammy:пароль-пароль\n'],
  ['a password with a C1 control character', 'sammy:correct-horse\u0085battery\n'],
  ['a password with BEL', 'sammy:correct-horse\u0007battery\n'],
  ['a password with a tab', 'sammy:correct-horse\tbattery\n'],
  ['a NUL in a name', 'sam\u0000my:correct-horse-battery\n'],
  ['a tab in a name', 'sam\tmy:correct-horse-battery\n'],
  ['a space in a name', 'sam my:correct-horse-battery\n'],
  ["an '@' in a name", 'sammy@realm:correct-horse-battery\n'],
  [`a name of ${MAX_NAME_CHARACTERS + 1} characters`, `${'n'.repeat(MAX_NAME_CHARACTERS + 1)}:correct-horse-battery\n`],
  [`a name of ${MAX_NAME_CHARACTERS} characters`, `${'n'.repeat(MAX_NAME_CHARACTERS)}:correct-horse-battery\n`],
  ['no colon', 'sammycorrect-horse-battery\n'],
  ['an empty name', ':correct-horse-battery\n'],
  ['an empty password', 'sammy:\n'],
  ['a duplicate user', 'sammy:correct-horse-battery\nalice:another-password-1\nsammy:another-password-2\n'],
  ['a 5000-byte line', `sammy:${'x'.repeat(5000)}\n`],
  ['a 5000-byte comment', `#${'x'.repeat(5000)}\nsammy:correct-horse-battery\n`],
  ['an empty file', ''],
  ['only comments and blanks', '# nobody\n \t\n'],
  ['a line of only a no-break space', '\u00a0\nsammy:correct-horse-battery\n'],
  ['bytes that are not UTF-8', new Uint8Array([0x73, 0x3a, 0xff, 0xfe, 0x0a])],
];

export const bytesOf = (content: string | Uint8Array) =>
  typeof content === 'string' ? new TextEncoder().encode(content) : content;

/** The CLI's verdict, in the shell's words: "ok NAME..." or what follows the file's name in the error. */
export function cliVerdict(content: string | Uint8Array): string {
  try {
    return `ok ${parseUsersFile(bytesOf(content), 'FILE')
      .map((u) => `${u.name}=${u.password}`)
      .join(' ')}`;
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return error.message.replace(/^FILE/, '');
  }
}

/** A driver for the shell rules (sourced after values.sh and them): prints the same kind of verdict for FILE. */
export const SHELL_DRIVER = `
show_user() { printf ' %s=%s' "$1" "$2"; }
problem=$(users_file_problem "$1")
if [ -n "$problem" ]; then printf '%s' "$problem"; else printf ok; users_file_each "$1" show_user; fi
`;
