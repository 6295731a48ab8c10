import { pollUntil } from '../helpers/poll.js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/paths.js';
import { serializeUsers } from '../../src/credentials.js';
import { generatePassword } from '../../src/sasldb.js';
import { ensureHostTool } from '../helpers/host-tools.js';

const run = promisify(execFile);
const REGISTRY_BINARY = '/usr/bin/docker-registry';
const scratch = mkdtempSync(join(tmpdir(), 'mh-release-'));
const id = Date.now().toString(36);

interface Registry {
  readonly address: string;
  readonly process: ChildProcess;
}

/** Debian's docker-registry serving on loopback; `readOnly` makes it refuse every push. */
async function startRegistry(name: string, readOnly: boolean): Promise<Registry> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const config = join(scratch, `${name}.yml`);
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(scratch, `${name}-data`)}`,
      '  maintenance:',
      '    readonly:',
      `      enabled: ${readOnly}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = spawn(REGISTRY_BINARY, ['serve', config], { stdio: 'ignore' });
  const address = `127.0.0.1:${port}`;
  await pollUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`);
      return (await fetch(`http://${address}/v2/`).then((r) => r.ok, () => false)) ? true : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200, what: `docker-registry answers on ${address}` },
  );
  return { address, process: child };
}

async function release(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(projectPath('bin/memcached-hardened'), ['release', ...args], { cwd: scratch, timeout: 900_000, maxBuffer: 64 * 1024 * 1024 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

/** The registry's tags for a repository ([] when it has none). */
async function tags(registry: Registry, repository: string): Promise<string[]> {
  const response = await fetch(`http://${registry.address}/v2/${repository}/tags/list`);
  if (response.status === 404) return [];
  return ((await response.json()) as { tags: string[] | null }).tags ?? [];
}

describe('npm run release: build, verify, push only if green', () => {
  let open: Registry;
  let readOnly: Registry;
  const usersFile = join(scratch, 'users');

  beforeAll(async () => {
    await ensureHostTool(REGISTRY_BINARY, 'docker-registry');
    writeFileSync(usersFile, serializeUsers([{ name: 'release', password: generatePassword() }]), { mode: 0o600 });
    [open, readOnly] = await Promise.all([startRegistry('open', false), startRegistry('readonly', true)]);
  });

  afterAll(() => {
    open?.process.kill();
    readOnly?.process.kill();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('pushes a verified image and prints the digest the registry holds', async () => {
    const tag = `${open.address}/memcached-hardened:good-${id}`;
    const result = await release(['--profile', 'ubuntu-16.04', '--users-file', usersFile, '--tag', tag, '--json']);
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    const output = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as { digest: string; verified: boolean; sbom: string };
    expect(output.verified).toBe(true);
    expect(output.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(existsSync(output.sbom)).toBe(true);
    const manifest = await fetch(`http://${open.address}/v2/memcached-hardened/manifests/good-${id}`, {
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(output.digest);
  });

  it('does not push an image that fails verification', async () => {
    // A baked allowlist makes the image refuse to start without NET_ADMIN: the suite fails on it.
    const tag = `${open.address}/memcached-hardened:broken-${id}`;
    const result = await release(['--profile', 'ubuntu-16.04', '--users-file', usersFile, '--tag', tag, '--allow-from', '10.9.9.9/32']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/verification failed: .* was not pushed/);
    expect(await tags(open, 'memcached-hardened')).not.toContain(`broken-${id}`);
    // Control: the registry does list the good release.
    expect(await tags(open, 'memcached-hardened')).toContain(`good-${id}`);
  });

  it('reports a refused push with exit 1 and pushes nothing', async () => {
    const tag = `${readOnly.address}/memcached-hardened:refused-${id}`;
    const result = await release(['--profile', 'ubuntu-16.04', '--users-file', usersFile, '--tag', tag]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/push of .* refused/);
    expect(result.stderr.trim().split('\n').pop()).toMatch(/^memcached-hardened: push of/);
    expect(await tags(readOnly, 'memcached-hardened')).toEqual([]);
  });

  it('refuses a tag without a registry before building anything', async () => {
    const result = await release(['--users-file', usersFile, '--tag', 'memcached-hardened:no-registry']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toMatch(/^memcached-hardened: --tag 'memcached-hardened:no-registry' names no registry/);
  });
});
