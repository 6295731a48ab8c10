import { beforeAll, describe, expect, it } from 'vitest';
import type { IsolatedNetwork } from '../helpers/docker.js';
import { isolatedServers, type ClientHost } from '../helpers/fixture.js';
import {
  allowlistCapabilities,
  execIn,
  memcstatIn,
  memcstatShowsStats,
  type RunningServer,
  runToExit,
  tcpProbe,
  udpStatsProbe,
} from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

const REFUSAL = 'MEMCACHED_ALLOW_FROM needs --cap-add NET_ADMIN';

describe.each(targetRows())('%s', (_profile, target) => {
  const user = firstUser(target);
  const bench = isolatedServers('fw-a');
  let networkA: IsolatedNetwork;
  let networkB: IsolatedNetwork;
  let open: RunningServer;
  let guarded: RunningServer;
  let client1: ClientHost;
  let client2: ClientHost;
  let outsider: ClientHost;

  const memcstatFrom = (client: typeof client1, ip: string) => memcstatIn(client.container, ip, user);

  beforeAll(async () => {
    networkA = bench.network;
    networkB = await bench.addNetwork('fw-b');
    [client1, client2, outsider] = await Promise.all([
      bench.clientHost(target),
      bench.clientHost(target),
      bench.clientHost(target, networkB.name),
    ]);
    open = await bench.start(target);
    guarded = await bench.start(target, {
      capAdd: allowlistCapabilities(target),
      env: { MEMCACHED_ALLOW_FROM: `${client1.ip}/32` },
      unreachableFromHost: true,
    });
  });

  it('a client on another network cannot connect; a client on the same network can', async () => {
    expect(await tcpProbe(client2.container, open.ip)).toBe('connected');
    expect(memcstatShowsStats(await memcstatFrom(client2, open.ip), open.ip)).toBe(true);
    expect(await tcpProbe(outsider.container, open.ip)).toBe('failed');
  });

  it('with the allowlist, the allowed client authenticates and the other cannot connect over TCP', async () => {
    expect(await tcpProbe(client1.container, guarded.ip)).toBe('connected');
    expect(memcstatShowsStats(await memcstatFrom(client1, guarded.ip), guarded.ip)).toBe(true);
    expect(await tcpProbe(client2.container, guarded.ip)).toBe('failed');
    expect(memcstatShowsStats(await memcstatFrom(client2, guarded.ip), guarded.ip)).toBe(false);
  });

  it('the allowlist also drops UDP to port 11211 from other clients', async () => {
    // memcached's UDP is off, so a test-only UDP listener on 11211 inside the guarded container shows
    // that the rule, not the absence of a listener, stops client2.
    const started = await execIn(guarded.container, ['memcached', '-U', '11211', '-p', '11299', '-l', '0.0.0.0', '-d']);
    expect(started.exitCode).toBe(0);
    expect(await udpStatsProbe(client1.container, guarded.ip)).toMatch(/STAT pid \d+/);
    expect(await udpStatsProbe(client2.container, guarded.ip)).not.toContain('STAT');
  });

  it('refuses to start without NET_ADMIN, or where no-new-privileges blocks the firewall', async () => {
    const withoutCap = await runToExit(target, networkA.name, { env: { MEMCACHED_ALLOW_FROM: `${client1.ip}/32` } });
    expect(withoutCap.exitCode).not.toBe(0);
    expect(withoutCap.output).toContain(REFUSAL);
    expect(withoutCap.output.trim().split('\n')).toHaveLength(1);
    const noNewPrivileges = await runToExit(target, networkA.name, {
      env: { MEMCACHED_ALLOW_FROM: `${client1.ip}/32` },
      capAdd: allowlistCapabilities(target),
      securityOpt: ['no-new-privileges'],
    });
    expect(noNewPrivileges.exitCode).not.toBe(0);
    expect(noNewPrivileges.output).toContain(REFUSAL);
  });

  it('refuses an invalid or empty allowlist', async () => {
    for (const value of ['10.0.0.300/32', '']) {
      const result = await runToExit(target, networkA.name, {
        env: { MEMCACHED_ALLOW_FROM: value },
        capAdd: allowlistCapabilities(target),
      });
      expect(result.exitCode).not.toBe(0);
      expect(result.output).toMatch(/MEMCACHED_ALLOW_FROM/);
    }
  });
});
