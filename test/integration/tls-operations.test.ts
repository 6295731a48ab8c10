import type { StartedTestContainer } from 'testcontainers';
import { beforeAll, describe, expect, it } from 'vitest';
import { BinaryClient } from '../../lib/binary-client.js';
import { loadProfile } from '../../src/profiles.js';
import { docker } from '../helpers/docker.js';
import { pollUntil } from '../helpers/poll.js';
import { allowlistCapabilities, execIn, type RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';
import { tlsRoundTrip } from '../helpers/tls.js';
import { tlsBench } from '../helpers/tls-bench.js';

/** Fixed addresses (host numbers on the test network) the servers take: the server certificate names them all. */
const HOST = { tls: 10, capped: 14, guarded: 15, lifecycle: 16, killed: 17, killedFront: 18 } as const;

/** The host's process ids of a container's processes, by command name. */
async function hostPids(container: StartedTestContainer, command: string): Promise<number[]> {
  const top = (await docker.getContainer(container.getId()).top()) as { Titles: string[]; Processes: string[][] };
  const pid = top.Titles.indexOf('PID');
  const cmd = top.Titles.indexOf('CMD');
  return top.Processes.filter((row) => (row[cmd] ?? '').split(' ')[0]?.split('/').pop() === command).map((row) =>
    Number(row[pid]),
  );
}

// TLS in operation: the per-client cap and the allowlist at the TLS port, health, signals and exit codes.
describe.each(targetRows())('%s', (_name, target) => {
  const user = firstUser(target);
  const profile = loadProfile(target.profile);
  // The processes that serve the TLS port: memcached itself, or memcached and the front.
  const serving = profile.tls.via === 'memcached' ? ['memcached'] : ['memcached', profile.tls.via];
  const bench = tlsBench('tls-ops', target, HOST);
  let tlsServer: RunningServer;
  let cappedServer: RunningServer;
  let guardedServer: RunningServer;

  beforeAll(async () => {
    const network = bench.network.name;
    const clientHostIp = bench.clientHost.getIpAddress(network);
    [tlsServer, cappedServer, guardedServer] = await Promise.all([
      bench.startTls(network, bench.secret, { ipv4Address: bench.address(HOST.tls) }),
      bench.startTls(network, bench.secret, {
        ipv4Address: bench.address(HOST.capped),
        env: { MEMCACHED_MAX_CONNECTIONS_PER_CLIENT: '3' },
      }),
      bench.startTls(network, bench.secret, {
        ipv4Address: bench.address(HOST.guarded),
        capAdd: allowlistCapabilities(target),
        env: { MEMCACHED_ALLOW_FROM: `${clientHostIp}/32` },
        readyFromClientHost: true,
      }),
    ]);
  });

  it(
    'caps connections per client address at the TLS port: 3 held, the rest refused at once, another ' +
      'address served; the default cap holds them all',
    async () => {
      const hoard = async (ip: string, attempts: number) => {
        const outcomes = await Promise.all(
          Array.from({ length: attempts }, async () => {
            const opened = Date.now();
            try {
              return { client: await BinaryClient.connectTls(ip, bench.clientTls()), ms: Date.now() - opened };
            } catch {
              return { client: undefined, ms: Date.now() - opened };
            }
          }),
        );
        const held = outcomes.flatMap((o) => (o.client ? [o.client] : []));
        return {
          held: held.length,
          refusedMs: outcomes.filter((o) => !o.client).map((o) => o.ms),
          release: () => held.forEach((c) => c.close()),
        };
      };
      // The readiness probe's connection may still be counted for a moment: wait until the cap is all free.
      const capped = await pollUntil(
        async () => {
          const attempt = await hoard(cappedServer.ip, 5);
          if (attempt.held === 3) return attempt;
          attempt.release();
          return undefined;
        },
        {
          timeoutMs: 10_000,
          what: 'the host holds exactly 3 TLS connections of 5 to the capped server',
          diagnose: cappedServer.logs,
        },
      );
      try {
        expect(capped.refusedMs).toHaveLength(2);
        expect(Math.max(...capped.refusedMs)).toBeLessThan(1000);
        expect(
          await bench.dalli(cappedServer.ip, `capped-${Math.random().toString(36).slice(2)}`, 'other-address'),
        ).toBe('ok other-address');
        expect(await cappedServer.logs()).toMatch(
          /client [0-9.]+ holds 3 connections \(MEMCACHED_MAX_CONNECTIONS_PER_CLIENT=3\)/,
        );
      } finally {
        capped.release();
      }
      const uncapped = await hoard(tlsServer.ip, 5);
      uncapped.release();
      expect(uncapped.held).toBe(5);
    },
  );

  it(
    'applies the allowlist at the TLS port: the allowed client is served, this host is dropped, and ' +
      'is served where no allowlist is set',
    async () => {
      expect(await bench.dalli(guardedServer.ip, `allowed-${Math.random().toString(36).slice(2)}`, 'allowed')).toBe(
        'ok allowed',
      );
      const dropped = await tlsRoundTrip(guardedServer.ip, bench.clientTls(), user);
      expect(dropped).toMatchObject({ handshake: false, roundTrip: false });
      expect(dropped.error).toMatch(/timed out/);
      expect(await tlsRoundTrip(tlsServer.ip, bench.clientTls(), user)).toMatchObject({ roundTrip: true });
    },
  );

  it(
    `health check, signals and exit codes with ${serving.join(' and ')} serving: unhealthy while one ` +
      'is frozen, healthy after; docker stop exits 0; killing one ends the container non-zero',
    async () => {
      const server = await bench.startTls(bench.network.name, bench.secret, {
        ipv4Address: bench.address(HOST.lifecycle),
      });
      const healthy = async () =>
        (await execIn(server.container, ['/usr/local/bin/memcached-healthcheck'])).exitCode === 0;
      expect(await healthy()).toBe(true);
      for (const command of serving) {
        const [pid] = await hostPids(server.container, command);
        if (pid === undefined) throw new Error(`no ${command} process in ${server.container.getId()}`);
        process.kill(pid, 'SIGSTOP');
        try {
          expect({ command, healthy: await healthy() }).toEqual({ command, healthy: false });
        } finally {
          process.kill(pid, 'SIGCONT');
        }
        await pollUntil(async () => ((await healthy()) ? true : undefined), {
          timeoutMs: 10_000,
          what: `healthy again after ${command} resumes`,
        });
      }
      const container = docker.getContainer(server.container.getId());
      const stopping = Date.now();
      await container.stop({ t: 10 });
      const stopMs = Date.now() - stopping;
      expect({ exitCode: (await container.inspect()).State.ExitCode, promptly: stopMs < 5000 }).toEqual({
        exitCode: 0,
        promptly: true,
      });
      for (const [index, command] of serving.entries()) {
        const victim = await bench.startTls(bench.network.name, bench.secret, {
          ipv4Address: bench.address(index === 0 ? HOST.killed : HOST.killedFront),
        });
        const [pid] = await hostPids(victim.container, command);
        if (pid === undefined) throw new Error(`no ${command} process in ${victim.container.getId()}`);
        process.kill(pid, 'SIGKILL');
        const { StatusCode } = (await docker.getContainer(victim.container.getId()).wait()) as { StatusCode: number };
        expect({ command, exitCode: StatusCode === 0 ? 0 : 'non-zero' }).toEqual({ command, exitCode: 'non-zero' });
        if (serving.length > 1)
          expect(await victim.logs()).toContain(
            `memcached-hardened: ${command} exited with status 137; stopping the rest`,
          );
      }
    },
  );
});
