import { beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/profiles.js';
import { defaultPerClientCap } from '../../src/render.js';
import { BinaryClient, Status } from '../../lib/binary-client.js';
import type { IsolatedNetwork } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import { answers, hoardConnections, served } from '../helpers/hoard.js';
import { pollUntil } from '../helpers/poll.js';
import { runToExit, type RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

const MAX_CONNECTIONS = 64;
/** More connections than -c allows, all from one address, never authenticating. */
const HOARD = 70;
const CAP = defaultPerClientCap(MAX_CONNECTIONS);

describe.each(targetRows())('%s', (_name, target) => {
  const user = firstUser(target);
  const profile = loadProfile(target.profile);
  // The host reaches each server through two networks, so it is two client addresses: the hoarder on
  // one bridge, the legitimate client on the other.
  const bench = isolatedServers('cap-hoarder');
  let hoarderSide: IsolatedNetwork;
  let clientSide: IsolatedNetwork;
  let capped: RunningServer;
  let uncapped: RunningServer;

  const start = (env: Record<string, string> = {}) =>
    bench.start(target, {
      extraNetworks: [clientSide.name],
      env: { MEMCACHED_MAX_CONNECTIONS: String(MAX_CONNECTIONS), ...env },
    });
  const otherAddress = (server: RunningServer) => server.container.getIpAddress(clientSide.name);

  beforeAll(async () => {
    hoarderSide = bench.network;
    clientSide = await bench.addNetwork('cap-client');
    capped = await start();
    // Control: the cap as high as -c, i.e. no protection.
    uncapped = await start({ MEMCACHED_MAX_CONNECTIONS_PER_CLIENT: String(MAX_CONNECTIONS) });
  });

  it(
    `one address holding ${HOARD} idle unauthenticated connections (-c ${MAX_CONNECTIONS}) ` +
      'no longer locks another out; without the cap it does',
    async () => {
      const hoard = await hoardConnections(capped.ip, HOARD);
      try {
        expect({ held: hoard.held.length, refused: hoard.refused }).toEqual({ held: CAP, refused: HOARD - CAP });
        // Refused at once: closed by the server, not left waiting.
        expect(hoard.refusalMs).toHaveLength(HOARD - CAP);
        expect(Math.max(...hoard.refusalMs)).toBeLessThan(1000);
        expect(await served(otherAddress(capped), user.name, user.password)).toEqual({
          authStatus: Status.ok,
          roundTrip: true,
        });
        // The hoarder's own connections keep working.
        expect(await Promise.all(hoard.held.map((client) => answers(client)))).not.toContain(false);
        expect(await capped.logs()).toMatch(
          /client [0-9.]+ holds \d+ connections \(MEMCACHED_MAX_CONNECTIONS_PER_CLIENT=\d+\)/,
        );
      } finally {
        hoard.release();
      }
      const control = await hoardConnections(uncapped.ip, HOARD);
      try {
        expect(control.held.length).toBeGreaterThan(CAP);
        expect((await served(otherAddress(uncapped), user.name, user.password)).roundTrip).toBe(false);
      } finally {
        control.release();
      }
    },
  );

  it('gives a capped client its slot back when one of its connections closes', async () => {
    const hoard = await hoardConnections(capped.ip, CAP + 1);
    try {
      expect(hoard.held).toHaveLength(CAP);
      hoard.held[0]!.close();
      const again = await pollUntil(
        async () => {
          const client = await BinaryClient.connect(capped.ip);
          if (await answers(client)) return client;
          client.close();
          return undefined;
        },
        { timeoutMs: 10_000, what: 'the capped client gets a connection again after closing one' },
      );
      again.close();
    } finally {
      hoard.release();
    }
  });

  it(
    'refuses a per-client cap outside 1..-c with one line ' +
      '(the servers above started with the default and with -c)',
    async () => {
      for (const value of ['0', String(MAX_CONNECTIONS + 1), 'many']) {
        const refused = await runToExit(target, hoarderSide.name, {
          env: { MEMCACHED_MAX_CONNECTIONS: String(MAX_CONNECTIONS), MEMCACHED_MAX_CONNECTIONS_PER_CLIENT: value },
        });
        expect(refused.exitCode).toBe(78);
        expect(refused.output.trim().split('\n')).toEqual([
          'memcached-hardened: MEMCACHED_MAX_CONNECTIONS_PER_CLIENT must be a whole number ' +
            `from 1 to -c (${MAX_CONNECTIONS}) (got '${value}')`,
        ]);
      }
    },
  );

  it(
    'closes idle connections with MEMCACHED_IDLE_TIMEOUT where this memcached can, ' +
      'and refuses the variable with one line where not',
    async () => {
      if (!profile.memcached.idleTimeout) {
        const refused = await runToExit(target, hoarderSide.name, { env: { MEMCACHED_IDLE_TIMEOUT: '30' } });
        expect(refused.exitCode).toBe(78);
        expect(refused.output.trim().split('\n')).toEqual([
          expect.stringMatching(/^memcached-hardened: MEMCACHED_IDLE_TIMEOUT: .* has no idle timeout/),
        ]);
        return;
      }
      const timed = await start({ MEMCACHED_IDLE_TIMEOUT: '2' });
      try {
        // Both idle from the same moment: the one without a timeout is the control.
        const [idle, control] = await Promise.all([BinaryClient.connect(timed.ip), BinaryClient.connect(capped.ip)]);
        await pollUntil(async () => (idle.isClosed ? true : undefined), {
          timeoutMs: 15_000,
          what: 'memcached closes the idle connection',
        });
        expect(control.isClosed).toBe(false);
        expect(await answers(control)).toBe(true);
        control.close();
      } finally {
        await timed.stop();
      }
    },
  );
});
