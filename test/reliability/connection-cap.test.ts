import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantile } from '../../bench/stats.js';
import { defaultPerClientCap } from '../../src/render.js';
import { Status } from '../../lib/binary-client.js';
import { createIsolatedNetwork, type IsolatedNetwork } from '../helpers/docker.js';
import { recordFigure } from '../helpers/figures.js';
import { answers, hoardConnections, served } from '../helpers/hoard.js';
import { scaled } from '../helpers/scale.js';
import { execIn, startServer, type RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

const MAX_CONNECTIONS = 64;

/** CPU time memcached (PID 1) has used, in ms (utime + stime from /proc/1/stat, 100 ticks a second). */
async function cpuMs(server: RunningServer): Promise<number> {
  const stat = (await execIn(server.container, ['cat', '/proc/1/stat'])).output;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

describe.each(targetRows())('%s', (profile, target) => {
  const user = firstUser(target);
  // The host is two client addresses: the hoarder on one bridge, the other clients on the second.
  let hoarderSide: IsolatedNetwork;
  let clientSide: IsolatedNetwork;
  const servers: RunningServer[] = [];
  const start = async (env: Record<string, string> = {}) => {
    const server = await startServer(target, hoarderSide.name, {
      extraNetworks: [clientSide.name],
      env: { MEMCACHED_MAX_CONNECTIONS: String(MAX_CONNECTIONS), ...env },
    });
    servers.push(server);
    return server;
  };
  const otherAddress = (server: RunningServer) => server.container.getIpAddress(clientSide.name);

  beforeAll(async () => {
    [hoarderSide, clientSide] = await Promise.all([
      createIsolatedNetwork('cap-hoarder'),
      createIsolatedNetwork('cap-client'),
    ]);
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all([hoarderSide?.remove(), clientSide?.remove()]);
  });

  it(
    'one address hoarding many times -c idle unauthenticated connections: ' +
      'every other client is served, the hoarder is refused at once',
    async () => {
      const attempts = scaled(300, 1500);
      const rounds = scaled(50, 200);
      const cap = defaultPerClientCap(MAX_CONNECTIONS);
      const server = await start();
      const cpuBefore = await cpuMs(server);
      const hoard = await hoardConnections(server.ip, attempts);
      const cpuForHoard = (await cpuMs(server)) - cpuBefore;
      try {
        expect({ held: hoard.held.length, refused: hoard.refused }).toEqual({ held: cap, refused: attempts - cap });
        expect(quantile(hoard.refusalMs, 1)).toBeLessThan(1000);
        const latencies: number[] = [];
        let roundTrips = 0;
        for (let round = 0; round < rounds; round++) {
          const started = Date.now();
          const attempt = await served(otherAddress(server), user.name, user.password);
          latencies.push(Date.now() - started);
          if (attempt.authStatus === Status.ok && attempt.roundTrip) roundTrips++;
        }
        expect(roundTrips).toBe(rounds);
        expect(await Promise.all(hoard.held.map((client) => answers(client)))).not.toContain(false);
        recordFigure(
          profile,
          `hoarder: idle unauthenticated connections tried (-c ${MAX_CONNECTIONS})`,
          attempts,
          'connections',
        );
        recordFigure(profile, 'hoarder: connections kept (default per-client cap)', hoard.held.length, 'connections');
        recordFigure(profile, 'hoarder: connections refused', hoard.refused, 'connections');
        recordFigure(profile, 'hoarder: connected to refused, p50', quantile(hoard.refusalMs, 0.5), 'ms');
        recordFigure(profile, 'hoarder: connected to refused, max', quantile(hoard.refusalMs, 1), 'ms');
        recordFigure(profile, 'memcached CPU time for the whole hoard (no spinning)', cpuForHoard, 'ms');
        recordFigure(
          profile,
          'other address: authenticated set/get while hoarded (0 failures)',
          roundTrips,
          'round trips',
        );
        recordFigure(
          profile,
          'other address: connect + SASL + set/get while hoarded, p50',
          quantile(latencies, 0.5),
          'ms',
        );
        recordFigure(
          profile,
          'other address: connect + SASL + set/get while hoarded, p99',
          quantile(latencies, 0.99),
          'ms',
        );
      } finally {
        hoard.release();
      }
    },
  );

  it('control: with the cap raised to -c, the same hoard locks the other address out', async () => {
    const server = await start({ MEMCACHED_MAX_CONNECTIONS_PER_CLIENT: String(MAX_CONNECTIONS) });
    const hoard = await hoardConnections(server.ip, MAX_CONNECTIONS + 6);
    try {
      const tries = 5;
      let servedCount = 0;
      for (let i = 0; i < tries; i++)
        if ((await served(otherAddress(server), user.name, user.password)).roundTrip) servedCount++;
      expect(servedCount).toBe(0);
      recordFigure(profile, `control (cap = -c): hoarder kept`, hoard.held.length, 'connections');
      recordFigure(profile, `control (cap = -c): other address served, of ${tries}`, servedCount, 'round trips');
    } finally {
      hoard.release();
    }
  });
});
