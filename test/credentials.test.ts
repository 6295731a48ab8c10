import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { UserError } from '../src/errors.js';
import { MIN_PASSWORD_CHARACTERS, parseUsersFile, serializeUsers } from '../src/credentials.js';
import { projectPath } from '../src/paths.js';
import { loadProfile } from '../src/profiles.js';
import { CREDENTIAL_RULES_PATH, imageValuesShell } from '../src/render.js';
import { bytesOf, cliVerdict, SHELL_DRIVER, USERS_FILE_CASES } from './helpers/users-file-cases.js';

describe('one rulebook for users files: the CLI and the entrypoint agree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-credentials-'));
  const rules = join(dir, 'rules.sh');
  // What the entrypoint sources: the profile's values.sh (the rules' limits and words), then the static rules.
  const staticRules = readFileSync(projectPath(`image-files${CREDENTIAL_RULES_PATH}`), 'utf8');
  writeFileSync(rules, `${imageValuesShell(loadProfile('ubuntu-16.04'))}\n${staticRules}\n${SHELL_DRIVER}`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(USERS_FILE_CASES)('%s', (name, content) => {
    const file = join(dir, name.replace(/[^a-z0-9]+/gi, '-'));
    writeFileSync(file, bytesOf(content));
    const shell = execFileSync('/bin/sh', [rules, file], { encoding: 'utf8' });
    expect(shell).toBe(cliVerdict(content));
  });

  it('the verdicts are the decided ones, not merely equal', () => {
    const verdict = (name: string) => cliVerdict(USERS_FILE_CASES.find(([n]) => n === name)?.[1] ?? '');
    expect(verdict('a non-ASCII user name')).toBe(' line 1: user name contains a character outside printable ASCII');
    expect(verdict('a password of 6 two-byte letters (12 bytes)')).toBe(
      ` line 1: password for 'sammy' is shorter than ${MIN_PASSWORD_CHARACTERS} characters`,
    );
    expect(verdict(`a password of ${MIN_PASSWORD_CHARACTERS} two-byte letters`)).toBe(
      `ok sammy=${'é'.repeat(MIN_PASSWORD_CHARACTERS)}`,
    );
    expect(verdict('a duplicate user')).toBe(" line 3: duplicate user 'sammy'");
    expect(verdict('bytes that are not UTF-8')).toBe(': not valid UTF-8');
  });
});

const bytes = (text: string) => new TextEncoder().encode(text);
const parse = (text: string) => parseUsersFile(bytes(text), 'users');

function parseError(input: string | Uint8Array): UserError {
  try {
    parseUsersFile(typeof input === 'string' ? bytes(input) : input, 'users');
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error;
  }
  throw new Error('expected the users file to be rejected');
}

describe('parseUsersFile', () => {
  it('reads user:password lines, skipping comments and blank lines', () => {
    expect(parse('# team\n\nsammy:correct-horse-battery\r\n  # indented comment\nalice:pass:with:colons\n')).toEqual([
      { name: 'sammy', password: 'correct-horse-battery' },
      { name: 'alice', password: 'pass:with:colons' },
    ]);
  });

  it.each([
    ['empty file', '', 'no users'],
    ['only comments', '# nobody\n\n', 'no users'],
    ['missing colon', 'sammycorrect-horse-battery\n', "no ':' found"],
    ['empty password', 'sammy:\n', "password for 'sammy' is empty"],
    ['short password', 'sammy:short\n', `shorter than ${MIN_PASSWORD_CHARACTERS}`],
    ['empty user', ':correct-horse-battery\n', 'user name is empty'],
    ['user with @', 'sammy@realm:correct-horse-battery\n', "contains '@'"],
    ['user with space', 'sam my:correct-horse-battery\n', 'whitespace'],
    ['user with tab', 'sam\tmy:correct-horse-battery\n', 'control character'],
    ['user with NUL', 'sam\u0000my:correct-horse-battery\n', 'control character'],
    ['password with control character', 'sammy:correct-horse\u0007battery\n', 'control character'],
    ['duplicate user', 'sammy:correct-horse-battery\nsammy:another-password-1\n', "duplicate user 'sammy'"],
    ['very long line', `sammy:${'x'.repeat(5000)}\n`, 'longer than 4096 bytes'],
  ])('rejects %s with one line naming the problem', (_case, input, expected) => {
    const error = parseError(input);
    expect(error.message).toContain(expected);
    expect(error.message).not.toContain('\n');
    expect(error.exitCode).toBe(2);
  });

  it('rejects bytes that are not UTF-8', () => {
    expect(parseError(new Uint8Array([0x73, 0x3a, 0xff, 0xfe, 0x0a])).message).toContain('not valid UTF-8');
  });

  it('names the line but never echoes the password', () => {
    const secret = 'sekrit-but-short';
    const error = parseError(`alice:correct-horse-battery\nbob\u0001x:${secret}\n`);
    expect(error.message).toMatch(/line 2/);
    expect(error.message).not.toContain(secret);
    expect(parseError(`${secret}\n`).message).not.toContain(secret);
  });

  it('accepts thousands of users', () => {
    const text = Array.from({ length: 3000 }, (_, i) => `user${i}:password-number-${i}`).join('\n');
    expect(parse(text)).toHaveLength(3000);
  });

  it('round-trips any valid users through serializeUsers (property)', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/);
    const password = fc.stringMatching(/^[\x20-\x7e]{12,40}$/);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ name, password }), { minLength: 1, maxLength: 20, selector: (u) => u.name }),
        (users) => {
          expect(parse(serializeUsers(users))).toEqual(users);
        },
      ),
    );
  });

  it('either parses or throws a one-line UserError that leaks no password, for any input (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (input) => {
        try {
          const users = parseUsersFile(input, 'users');
          expect(users.length).toBeGreaterThan(0);
        } catch (error) {
          expect(error).toBeInstanceOf(UserError);
          const message = (error as UserError).message;
          expect(message).not.toContain('\n');
          const text = Buffer.from(input).toString('utf8');
          for (const line of text.split('\n')) {
            const password = line.slice(line.indexOf(':') + 1);
            if (line.includes(':') && password.length >= 6) expect(message).not.toContain(password);
          }
        }
      }),
    );
  });
});
