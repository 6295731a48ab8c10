import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/paths.js';
import { docker } from '../helpers/docker.js';
import { recordFigure } from '../helpers/figures.js';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'mh-bad-input-'));
const SECRET = 'Pw-never-echo-7f3a9c';
const GOOD_USERS = `sammy:${SECRET}\n`;

/** A users file in the scratch folder with the given content. */
function usersFile(name: string, content: string | Buffer): string {
  const path = join(scratch, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

interface Case {
  readonly name: string;
  readonly args: () => string[];
  readonly env?: Record<string, string>;
  readonly exitCode: 1 | 2;
  readonly message: RegExp;
}

const withUsers =
  (name: string, content: string | Buffer, extra: string[] = []) =>
  () => ['--users-file', usersFile(name, content), ...extra];
const thousands = (n: number) => Array.from({ length: n }, (_, i) => `user${i}:password-number-${i}`).join('\n');

const CASES: Case[] = [
  { name: 'empty users file', args: withUsers('empty', ''), exitCode: 2, message: /no users/ },
  { name: 'only comments', args: withUsers('comments', '# nobody\n\n'), exitCode: 2, message: /no users/ },
  {
    name: 'missing colon',
    args: withUsers('nocolon', `sammy${SECRET}\n`),
    exitCode: 2,
    message: /line 1: expected user:password/,
  },
  {
    name: 'empty password',
    args: withUsers('emptypw', 'sammy:\n'),
    exitCode: 2,
    message: /password for 'sammy' is empty/,
  },
  {
    name: 'short password',
    args: withUsers('shortpw', 'sammy:Short-pw1\nalice:x\n'),
    exitCode: 2,
    message: /line 1: password for 'sammy' is shorter than 12/,
  },
  {
    name: 'duplicate user',
    args: withUsers('dup', `sammy:${SECRET}\nsammy:${SECRET}-2\n`),
    exitCode: 2,
    message: /line 2: duplicate user 'sammy'/,
  },
  {
    name: "':' starting a line (empty name)",
    args: withUsers('colonname', `:${SECRET}\n`),
    exitCode: 2,
    message: /user name is empty/,
  },
  { name: "'@' in name", args: withUsers('at', `sammy@realm:${SECRET}\n`), exitCode: 2, message: /contains '@'/ },
  { name: 'space in name', args: withUsers('space', `sam my:${SECRET}\n`), exitCode: 2, message: /whitespace/ },
  { name: 'tab in name', args: withUsers('tab', `sam\tmy:${SECRET}\n`), exitCode: 2, message: /control character/ },
  {
    name: 'escape character in name',
    args: withUsers('esc', `sam\u001bmy:${SECRET}\n`),
    exitCode: 2,
    message: /control character/,
  },
  { name: 'NUL in name', args: withUsers('nul', `sam\u0000my:${SECRET}\n`), exitCode: 2, message: /control character/ },
  {
    name: 'control character in password',
    args: withUsers('ctlpw', `sammy:${SECRET}\u0007\n`),
    exitCode: 2,
    message: /control character/,
  },
  {
    name: 'non-UTF-8 bytes',
    args: withUsers('latin1', Buffer.from([0x73, 0x3a, 0xe9, 0xe9, 0xe9, 0x0a])),
    exitCode: 2,
    message: /not valid UTF-8/,
  },
  {
    name: 'very long line',
    args: withUsers('long', `sammy:${'p'.repeat(10_000)}\n`),
    exitCode: 2,
    message: /longer than 4096 bytes/,
  },
  { name: 'too many users', args: withUsers('many', thousands(10_001)), exitCode: 2, message: /more than 10000 users/ },
  {
    name: 'users file missing',
    args: () => ['--users-file', join(scratch, 'does-not-exist')],
    exitCode: 2,
    message: /cannot read users file .*ENOENT/,
  },
  {
    name: 'users file is a folder',
    args: () => ['--users-file', scratch],
    exitCode: 2,
    message: /cannot read users file .*EISDIR/,
  },
  { name: 'unknown flag', args: () => ['--frobnicate'], exitCode: 2, message: /Unknown option '--frobnicate'/ },
  { name: 'flag missing its value', args: () => ['--tag'], exitCode: 2, message: /argument missing/ },
  { name: 'users-file missing its value', args: () => ['--users-file'], exitCode: 2, message: /argument missing/ },
  { name: 'positional argument', args: () => ['surprise'], exitCode: 2, message: /positional/ },
  {
    name: 'upper-case tag',
    args: withUsers('ok1', GOOD_USERS, ['--tag', 'Memcached:1']),
    exitCode: 2,
    message: /invalid image tag/,
  },
  {
    name: 'tag with space',
    args: withUsers('ok2', GOOD_USERS, ['--tag', 'memcached:a b']),
    exitCode: 2,
    message: /invalid image tag/,
  },
  {
    name: 'tag too long',
    args: withUsers('ok3', GOOD_USERS, ['--tag', `m:${'t'.repeat(200)}`]),
    exitCode: 2,
    message: /invalid image tag/,
  },
  {
    name: 'unknown profile',
    args: withUsers('ok4', GOOD_USERS, ['--profile', 'centos-7']),
    exitCode: 2,
    message: /unknown profile 'centos-7'/,
  },
  {
    name: 'path as profile',
    args: withUsers('ok5', GOOD_USERS, ['--profile', '../../etc/passwd']),
    exitCode: 2,
    message: /unknown profile/,
  },
  {
    name: 'bad target',
    args: withUsers('ok6', GOOD_USERS, ['--target', 'database']),
    exitCode: 2,
    message: /--target must be server or client/,
  },
  {
    name: 'CIDR octet out of range',
    args: withUsers('ok7', GOOD_USERS, ['--allow-from', '10.0.0.256/32']),
    exitCode: 2,
    message: /not an IPv4 address or CIDR/,
  },
  {
    name: 'CIDR prefix out of range',
    args: withUsers('ok8', GOOD_USERS, ['--allow-from', '10.0.0.1/40']),
    exitCode: 2,
    message: /not an IPv4 address or CIDR/,
  },
  {
    name: 'CIDR list with empty entry',
    args: withUsers('ok9', GOOD_USERS, ['--allow-from', '10.0.0.1,']),
    exitCode: 2,
    message: /empty entry/,
  },
  {
    name: 'IPv6 CIDR',
    args: withUsers('ok10', GOOD_USERS, ['--allow-from', 'fd00::/8']),
    exitCode: 2,
    message: /not an IPv4 address or CIDR/,
  },
  {
    name: 'apt mirror not a URL',
    args: withUsers('ok11', GOOD_USERS, ['--apt-mirror', 'mirror; rm -rf /']),
    exitCode: 2,
    message: /--apt-mirror/,
  },
  {
    name: 'unknown command',
    args: () => [],
    env: { CLI_COMMAND: 'deploy' },
    exitCode: 2,
    message: /unknown command 'deploy'/,
  },
  {
    name: 'no Docker engine (socket missing)',
    args: withUsers('ok12', GOOD_USERS),
    env: { DOCKER_HOST: `unix://${join(scratch, 'no-such.sock')}` },
    exitCode: 1,
    message: /no Docker engine reachable at unix:\/\//,
  },
  {
    name: 'unreachable DOCKER_HOST',
    args: withUsers('ok13', GOOD_USERS),
    env: { DOCKER_HOST: 'tcp://127.0.0.1:9' },
    exitCode: 1,
    message: /no Docker engine reachable at tcp:\/\/127.0.0.1:9/,
  },
];

async function imagesAndContainers(): Promise<string> {
  const [images, containers] = await Promise.all([
    docker.listImages({ all: true }),
    docker.listContainers({ all: true }),
  ]);
  const tags = images.flatMap((i) => [i.Id, ...(i.RepoTags ?? [])]).sort();
  return JSON.stringify({ tags, containers: containers.map((c) => c.Id).sort() });
}

describe('bad input to the CLI', () => {
  let before: string;
  beforeAll(async () => {
    before = await imagesAndContainers();
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it(`has at least 30 cases (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
  });

  it.concurrent.each(CASES.map((c) => [c.name, c] as const))(
    '%s: one clear line, the right exit code, no password echoed',
    async (_name, c) => {
      const command = c.env?.CLI_COMMAND ?? 'build';
      const result = await run(projectPath('bin/memcached-hardened'), [command, ...c.args()], {
        cwd: scratch,
        env: { ...process.env, ...c.env },
        timeout: 60_000,
      }).then(
        () => ({ code: 0, stdout: '', stderr: '' }),
        (error: { code: number; stdout: string; stderr: string }) => ({
          code: error.code,
          stdout: error.stdout,
          stderr: error.stderr,
        }),
      );
      const lines = result.stderr.trim().split('\n');
      expect({ code: result.code, lines: lines.length }, result.stderr).toEqual({ code: c.exitCode, lines: 1 });
      expect(lines[0]).toMatch(/^memcached-hardened: /);
      expect(lines[0]).toMatch(c.message);
      expect(result.stdout).toBe('');
      expect(result.stderr).not.toContain(SECRET);
    },
  );

  it('built, tagged and started nothing', async () => {
    expect(await imagesAndContainers()).toBe(before);
    recordFigure('cli', 'bad-input cases (each exit code + one line, no password)', CASES.length, 'cases');
  });
});
