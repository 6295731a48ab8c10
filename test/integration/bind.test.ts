import { beforeAll, describe, expect, it } from 'vitest';
import { isolatedServers } from '../helpers/fixture.js';
import {
  execIn,
  hostConnects,
  type RunningServer,
  runToExit,
  startServer,
  waitUntilServing,
} from '../helpers/server.js';
import { procNetAddress, socketsOnPort, TCP_LISTEN } from '../helpers/proc-net.js';
import { targetRows } from '../helpers/targets.js';

const listeners = async (server: RunningServer) =>
  socketsOnPort((await execIn(server.container, ['cat', '/proc/net/tcp', '/proc/net/tcp6'])).output).filter(
    (s) => s.state === TCP_LISTEN,
  );

describe.each(targetRows())('%s', (_profile, target) => {
  const bench = isolatedServers('bind');
  let server: RunningServer;
  let wildcard: RunningServer;
  let loopbackOnly: RunningServer;

  beforeAll(async () => {
    server = await bench.start(target);
    // Control: memcached told to listen everywhere, to show the check sees a wildcard listener.
    wildcard = await bench.control(target, ['-U', '0', '-p', '11211', '-l', '0.0.0.0']);
    loopbackOnly = await bench.start(target, { env: { MEMCACHED_LISTEN: '127.0.0.1' }, unreachableFromHost: true });
  });

  it('listens only on the private address by default, where the control listens on 0.0.0.0', async () => {
    expect(await listeners(server)).toEqual([{ localAddress: procNetAddress(server.ip), state: TCP_LISTEN }]);
    expect(await listeners(wildcard)).toEqual([{ localAddress: procNetAddress('0.0.0.0'), state: TCP_LISTEN }]);
    expect(await hostConnects(server.ip)).toBe(true);
  });

  it('with MEMCACHED_LISTEN=127.0.0.1 a peer cannot connect while a client inside the container can', async () => {
    expect(await listeners(loopbackOnly)).toEqual([{ localAddress: procNetAddress('127.0.0.1'), state: TCP_LISTEN }]);
    expect(await hostConnects(loopbackOnly.ip)).toBe(false);
    // The health check is an in-container client: it connects and gets "auth required" back.
    expect((await execIn(loopbackOnly.container, ['/usr/local/bin/memcached-healthcheck'])).exitCode).toBe(0);
    expect(await hostConnects(server.ip)).toBe(true);
  });

  it('accepts an interface name and refuses to listen on every interface', async () => {
    const byInterface = await startServer(target, bench.network.name, { env: { MEMCACHED_LISTEN: 'eth0' } });
    try {
      expect(await listeners(byInterface)).toEqual([
        { localAddress: procNetAddress(byInterface.ip), state: TCP_LISTEN },
      ]);
      await waitUntilServing(byInterface.ip);
    } finally {
      await byInterface.stop();
    }
    const refused = await runToExit(target, bench.network.name, { env: { MEMCACHED_LISTEN: '0.0.0.0' } });
    expect(refused.exitCode).not.toBe(0);
    expect(refused.output).toContain('would listen on every interface');
  });
});
