import { pollUntil } from '../helpers/poll.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/paths.js';
import { Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { createIsolatedNetwork, docker } from '../helpers/docker.js';
import { recordFigure } from '../helpers/figures.js';
import { containerLogs, containerSpec, startServer, waitUntilServing } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

const scratch = mkdtempSync(join(tmpdir(), 'mh-faults-'));

/** Runs the CLI build; `interruptWhen` sends SIGINT once stderr matches. */
function cliBuild(args: string[], interruptWhen?: RegExp): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(projectPath('bin/memcached-hardened'), ['build', ...args], {
      cwd: scratch,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let interrupted = false;
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (interruptWhen && !interrupted && interruptWhen.test(stderr)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    child.stdout.on('data', () => undefined);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const containerIds = async () => new Set((await docker.listContainers({ all: true })).map((c) => c.Id));
const tagExists = async (tag: string) =>
  (await docker.listImages({ filters: JSON.stringify({ reference: [tag] }) })).length > 0;

describe.each(targetRows())('%s', (profile, target) => {
  const user = firstUser(target);
  let network: Awaited<ReturnType<typeof createIsolatedNetwork>>;

  beforeAll(async () => {
    network = await createIsolatedNetwork('faults');
  });

  afterAll(async () => {
    await network?.remove();
  });

  it('SIGTERM stops the container cleanly in under 2 s', async () => {
    const server = await startServer(target, network.name);
    const container = docker.getContainer(server.container.getId());
    const started = Date.now();
    await container.stop({ t: 10 });
    const elapsed = Date.now() - started;
    const state = (await container.inspect()).State;
    await container.remove({ force: true });
    expect(state.ExitCode).toBe(0);
    expect(elapsed).toBeLessThan(2000);
    recordFigure(profile, 'docker stop (SIGTERM) to exit', elapsed, 'ms');
  });

  it(
    'memcached killed with SIGKILL: the container exits non-zero, ' +
      'and with a restart policy comes back and authenticates',
    async () => {
      const create = async (restart: boolean) => {
        const spec = containerSpec(target, network.name);
        return docker.createContainer({
          ...spec,
          HostConfig: {
            ...spec.HostConfig,
            RestartPolicy: restart ? { Name: 'on-failure', MaximumRetryCount: 3 } : { Name: 'no' },
          },
        });
      };
      const kill = async (container: Awaited<ReturnType<typeof create>>) => {
        const info = await container.inspect();
        await waitUntilServing(info.NetworkSettings.Networks[network.name]!.IPAddress);
        // From the host, as a crash or the OOM killer would: not through the engine, which would count
        // it as a manual stop and skip the restart policy.
        process.kill(info.State.Pid, 'SIGKILL');
      };
      const plain = await create(false);
      try {
        await plain.start();
        await kill(plain);
        const { StatusCode } = (await plain.wait()) as { StatusCode: number };
        expect(StatusCode).not.toBe(0);
      } finally {
        await plain.remove({ force: true });
      }
      const restarting = await create(true);
      try {
        await restarting.start();
        await kill(restarting);
        const started = Date.now();
        const restarted = async () => {
          const info = await restarting.inspect();
          return info.RestartCount >= 1 && info.State.Running ? info : undefined;
        };
        const info = await pollUntil(restarted, {
          timeoutMs: 30_000,
          intervalMs: 200,
          what: 'the engine restarted the killed container',
        }).catch(() => restarting.inspect());
        expect(info.RestartCount).toBe(1);
        const ip = info.NetworkSettings.Networks[network.name]!.IPAddress;
        await waitUntilServing(ip);
        expect(await tryAuthenticatedRoundTrip(ip, user.name, user.password)).toEqual({
          authStatus: Status.ok,
          roundTrip: true,
        });
        expect(await containerLogs(restarting.id)).toMatch(/listening on[\s\S]*listening on/);
        recordFigure(profile, 'SIGKILL to serving again (restart policy)', Date.now() - started, 'ms');
      } finally {
        await restarting.remove({ force: true });
      }
    },
  );
});

describe('builds that fail or are interrupted', () => {
  const [target] = targetRows().map(([, t]) => t);
  const usersFile = join(scratch, 'users');
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it(
    'a build failing mid-way exits 1 with the engine error and log tail, ' + 'tags nothing, leaves no container',
    async () => {
      if (!target) throw new Error('no target');
      writeFileSync(usersFile, 'sammy:correct-horse-battery\n', { mode: 0o600 });
      const tag = `memcached-hardened-test/failing:${Date.now()}`;
      const before = await containerIds();
      // The apt mirror is the build container's own loopback, where nothing listens: apt fails mid-build.
      const result = await cliBuild([
        '--profile',
        target.profile,
        '--users-file',
        usersFile,
        '--tag',
        tag,
        '--no-cache',
        '--apt-mirror',
        'http://127.0.0.1:9/archive',
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/build failed: .*returned a non-zero code/);
      expect(result.stderr).toContain('--- last build output ---');
      expect(result.stderr).not.toContain('correct-horse-battery');
      expect(await tagExists(tag)).toBe(false);
      expect([...(await containerIds())].filter((id) => !before.has(id))).toEqual([]);
    },
  );

  it('a build interrupted with SIGINT exits 130, tags nothing, leaves no container', async () => {
    if (!target) throw new Error('no target');
    const tag = `memcached-hardened-test/interrupted:${Date.now()}`;
    const before = await containerIds();
    const result = await cliBuild(
      ['--profile', target.profile, '--users-file', usersFile, '--tag', tag, '--no-cache'],
      /Running in [0-9a-f]+/,
    );
    expect(result.code).toBe(130);
    const strays = async () => [...(await containerIds())].filter((id) => !before.has(id));
    const stray = await pollUntil(async () => ((await strays()).length === 0 ? [] : undefined), {
      timeoutMs: 20_000,
      intervalMs: 500,
      what: 'the interrupted build left no container',
    }).catch(strays);
    expect(stray).toEqual([]);
    expect(await tagExists(tag)).toBe(false);
  });
});
