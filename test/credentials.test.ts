import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { credentialRulesShell, MIN_PASSWORD_CHARACTERS } from '../src/credentials.js';
import { bytesOf, cliVerdict, SHELL_DRIVER, USERS_FILE_CASES } from './helpers/users-file-cases.js';

describe('one rulebook for users files: the CLI and the entrypoint agree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mh-credentials-'));
  const rules = join(dir, 'rules.sh');
  writeFileSync(rules, `${credentialRulesShell()}\n${SHELL_DRIVER}`);
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
    expect(verdict('a password of 6 two-byte letters (12 bytes)')).toBe(` line 1: password for 'sammy' is shorter than ${MIN_PASSWORD_CHARACTERS} characters`);
    expect(verdict(`a password of ${MIN_PASSWORD_CHARACTERS} two-byte letters`)).toBe(`ok sammy=${'é'.repeat(MIN_PASSWORD_CHARACTERS)}`);
    expect(verdict('a duplicate user')).toBe(" line 3: duplicate user 'sammy'");
    expect(verdict('bytes that are not UTF-8')).toBe(': not valid UTF-8');
  });
});
