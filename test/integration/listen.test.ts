import { beforeAll, describe, expect, it } from 'vitest';
import { Status } from '../../lib/binary-client.js';
import { ipv6Of, type IsolatedNetwork } from '../helpers/docker.js';
import { isolatedServers, type ClientHost } from '../helpers/fixture.js';
import { hoardConnections, served } from '../helpers/hoard.js';
import { pollUntil } from '../helpers/poll.js';
import {
  allowlistCapabilities,
  execIn,
  hostConnects,
  memcstatIn,
  memcstatShowsStats,
  type RunningServer,
  runToExit,
  type ServerOptions,
  tcpProbe,
  waitUntilServing,
} from '../helpers/server.js';
import { procNetAddress, socketsOnPort, TCP_LISTEN } from '../helpers/proc-net.js';
import { firstUser, targetRows } from '../helpers/targets.js';

/** The server's listening sockets on 11211, IPv4 (/proc/net/tcp) and IPv6 (/proc/net/tcp6) apart. */
async function listeners(server: RunningServer): Promise<{ v4: string[]; v6: string[] }> {
  const read = async (file: string) =>
    socketsOnPort((await execIn(server.container, ['cat', file])).output)
      .filter((s) => s.state === TCP_LISTEN)
      .map((s) => s.localAddress);
  return { v4: await read('/proc/net/tcp'), v6: await read('/proc/net/tcp6') };
}

describe.each(targetRows())('%s', (_profile, target) => {
  const user = firstUser(target);
  const bench = isolatedServers('listen-private');
  let privateNet: IsolatedNetwork;
  let publicNet: IsolatedNetwork;
  let dualStack: IsolatedNetwork;
  let privateClient: ClientHost;
  let publicClient: ClientHost;
  let ipv6Clients: ClientHost[];
  let ipv6Server: RunningServer;
  let ipv6Address: string;
  const start = (of: typeof target, network: string, options?: ServerOptions) => bench.start(of, options, network);
  const memcstatFrom = (client: typeof privateClient, ip: string) => memcstatIn(client.container, ip, user);

  beforeAll(async () => {
    privateNet = bench.network;
    [publicNet, dualStack] = await Promise.all([
      bench.addNetwork('listen-public', { publicAddresses: true }),
      bench.addNetwork('listen-dual', { ipv6: true }),
    ]);
    [privateClient, publicClient, ...ipv6Clients] = await Promise.all([
      bench.clientHost(target, privateNet.name),
      bench.clientHost(target, publicNet.name),
      bench.clientHost(target, dualStack.name),
      bench.clientHost(target, dualStack.name),
    ]);
    // Asked to listen on IPv6 (also the unguarded control for the allowlist below), with a small cap.
    ipv6Address = dualStack.fixedAddress6(3);
    ipv6Server = await start(target, dualStack.name, {
      ipv6Address,
      env: { MEMCACHED_LISTEN: ipv6Address, MEMCACHED_MAX_CONNECTIONS_PER_CLIENT: '3' },
      unreachableFromHost: true,
    });
    await waitUntilServing(ipv6Address);
  });

  it(
    'on a private and a public-range network, listens only on the private address; ' +
      'the public one answers only when chosen',
    async () => {
      const server = await start(target, privateNet.name, { extraNetworks: [publicNet.name] });
      const publicIp = server.container.getIpAddress(publicNet.name);
      expect(await listeners(server)).toEqual({ v4: [procNetAddress(server.ip)], v6: [] });
      expect(await tcpProbe(privateClient.container, server.ip)).toBe('connected');
      expect(await tcpProbe(publicClient.container, publicIp)).toBe('failed');
      // Control: the operator names the public address; it is reachable and authenticates, and says so.
      const chosenIp = publicNet.fixedAddress(10);
      const chosen = await start(target, publicNet.name, {
        ipv4Address: chosenIp,
        extraNetworks: [privateNet.name],
        env: { MEMCACHED_LISTEN: chosenIp },
      });
      expect(await tcpProbe(publicClient.container, chosenIp)).toBe('connected');
      expect(memcstatShowsStats(await memcstatFrom(publicClient, chosenIp), chosenIp)).toBe(true);
      expect(await tcpProbe(privateClient.container, chosen.container.getIpAddress(privateNet.name))).toBe('failed');
      expect(await chosen.logs()).toContain(
        `listening on ${chosenIp} port 11211 (TCP only, a public address chosen by MEMCACHED_LISTEN)`,
      );
    },
  );

  it('refuses to start with only a public address, naming it and MEMCACHED_LISTEN in one line', async () => {
    const address = publicNet.fixedAddress(11);
    const refused = await runToExit(target, publicNet.name, { ipv4Address: address });
    expect(refused.exitCode).toBe(78);
    const lines = refused.output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^memcached-hardened: no private IPv4 address /);
    expect(lines[0]).toContain(`found: ${address} on eth0`);
    expect(lines[0]).toContain('set MEMCACHED_LISTEN');
  });

  it('on a dual-stack network, listens on IPv4 only by default; on IPv6 only when asked', async () => {
    const defaultServer = await start(target, dualStack.name, { ipv6Address: dualStack.fixedAddress6(2) });
    expect(await listeners(defaultServer)).toEqual({ v4: [procNetAddress(defaultServer.ip)], v6: [] });
    expect(await hostConnects(dualStack.fixedAddress6(2))).toBe(false);
    expect(await hostConnects(defaultServer.ip)).toBe(true);
    // Control: asked for IPv6, it listens there alone, serves over IPv6 and not over IPv4.
    expect(await listeners(ipv6Server)).toEqual({ v4: [], v6: [expect.any(String)] });
    expect(await served(ipv6Address, user.name, user.password)).toEqual({ authStatus: Status.ok, roundTrip: true });
    expect(await hostConnects(ipv6Server.ip)).toBe(false);
  });

  it('caps connections per IPv6 client address too', async () => {
    // The server may not yet have closed the earlier tests' connections from this address: let it settle.
    const hoard = async () => {
      const attempt = await hoardConnections(ipv6Address, 5);
      attempt.release();
      return { held: attempt.held.length, refused: attempt.refused };
    };
    const settled = await pollUntil(
      async () => {
        const verdict = await hoard();
        return verdict.held === 3 ? verdict : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 250, what: 'the IPv6 client holds exactly the cap' },
    ).catch(hoard);
    expect(settled).toEqual({ held: 3, refused: 2 });
  });

  it(
    'with an IPv6 allowlist, the allowed IPv6 clients are served and another is dropped; ' +
      'it reaches an unguarded server',
    async () => {
      const [allowed, blocked] = ipv6Clients;
      const allowedIp = await ipv6Of(allowed!.container.getId(), dualStack.name);
      const address = dualStack.fixedAddress6(4);
      await start(target, dualStack.name, {
        ipv6Address: address,
        capAdd: allowlistCapabilities(target),
        env: { MEMCACHED_LISTEN: address, MEMCACHED_ALLOW_FROM: `${dualStack.ipv6Gateway}/128,${allowedIp}/128` },
        unreachableFromHost: true,
      });
      await waitUntilServing(address);
      expect(await served(address, user.name, user.password)).toEqual({ authStatus: Status.ok, roundTrip: true });
      expect(await tcpProbe(allowed!.container, address)).toBe('connected');
      expect(await tcpProbe(blocked!.container, address)).toBe('failed');
      expect(await tcpProbe(blocked!.container, ipv6Address)).toBe('connected');
    },
  );

  it(
    'refuses an IPv6 allowlist without NET_ADMIN (fail closed), ' + 'and an IPv6 address the container does not have',
    async () => {
      const address = dualStack.fixedAddress6(5);
      const withoutCap = await runToExit(target, dualStack.name, {
        ipv6Address: address,
        env: { MEMCACHED_LISTEN: address, MEMCACHED_ALLOW_FROM: `${dualStack.ipv6Gateway}/128` },
      });
      expect(withoutCap.exitCode).toBe(78);
      expect(withoutCap.output.trim().split('\n')).toEqual([
        expect.stringContaining('MEMCACHED_ALLOW_FROM needs --cap-add NET_ADMIN'),
      ]);
      const elsewhere = await runToExit(target, dualStack.name, {
        env: { MEMCACHED_LISTEN: dualStack.fixedAddress6(6) },
      });
      expect(elsewhere.exitCode).toBe(78);
      expect(elsewhere.output.trim().split('\n')).toEqual([
        expect.stringContaining(`MEMCACHED_LISTEN ${dualStack.fixedAddress6(6)} is not an address of this container`),
      ]);
    },
  );
});
