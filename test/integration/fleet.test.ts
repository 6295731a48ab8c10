import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { clientsImage, runClient, storedValues } from '../helpers/clients.js';
import { hostnameOf } from '../helpers/docker.js';
import { isolatedServers, type ClientHost } from '../helpers/fixture.js';
import { podHostname, type RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

const KEYS = 300;
/** Host numbers of the three servers' fixed addresses in the fleet's /24. */
const HOSTS = [11, 12, 13] as const;
/** Which server the test stops and replaces. */
const REPLACED = 1;

/** A ketama client run's lines, per key: "HIT <value>", "MISS <reason>", "STORED", "NOTSTORED <reason>". */
function outcomes(stdout: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const match = /^(HIT|MISS|STORED|NOTSTORED) (\S+)(?: (.*))?$/.exec(line.trim());
    if (match) result.set(match[2]!, `${match[1]}${match[3] ? ` ${match[3]}` : ''}`);
  }
  return result;
}

describe.each(targetRows())('%s', (_name, target) => {
  const user = firstUser(target);
  const prefix = `fleet-${randomBytes(4).toString('hex')}`;
  const keys = Array.from({ length: KEYS }, (_, i) => `${prefix}-${i}`);
  const bench = isolatedServers('fleet', { fixedAddresses: true });
  let addresses: string[];
  const hostnames = HOSTS.map(() => podHostname());
  let servers: RunningServer[] = [];
  let host: ClientHost;
  /** Index of the server that held each key after the first sets, read from the servers themselves. */
  const owner = new Map<string, number>();

  const ketama = async (mode: 'set' | 'get', tag?: string) =>
    outcomes(
      await runClient(
        host.container,
        ['ketama', mode, prefix, String(KEYS), ...(tag ? [tag] : []), ...addresses.map((a) => `${a}:11211`)],
        user,
      ),
    );
  /** For each key, the indexes of the servers holding it with `<key>:<tag>`, read directly. */
  const holders = async (tag: string) => {
    const held = await Promise.all(servers.map((server) => storedValues(server.ip, user, keys)));
    return new Map(
      keys.map((key) => [key, held.flatMap((values, index) => (values.get(key) === `${key}:${tag}` ? [index] : []))]),
    );
  };
  const allHit = (tag: string) => new Map(keys.map((key) => [key, `HIT ${key}:${tag}`]));

  beforeAll(async () => {
    addresses = HOSTS.map((n) => bench.network.fixedAddress(n));
    [host, ...servers] = await Promise.all([
      bench.clientHost(clientsImage()),
      ...addresses.map((ipv4Address, index) => bench.start(target, { hostname: hostnames[index], ipv4Address })),
    ]);
  });

  it(
    `spreads ${KEYS} keys set through a ketama client over all three: ` +
      'each on exactly one server, read back by the client',
    async () => {
      expect(await ketama('set', 'first')).toEqual(new Map(keys.map((key) => [key, 'STORED'])));
      for (const [key, indexes] of await holders('first')) {
        expect(indexes, key).toHaveLength(1);
        owner.set(key, indexes[0]!);
      }
      const shares = HOSTS.map((_, index) => keys.filter((key) => owner.get(key) === index).length);
      expect(
        shares.every((share) => share > 0),
        `keys per server: ${shares.join(', ')}`,
      ).toBe(true);
      // The positive control for the next check: with all three up, every key hits.
      expect(await ketama('get')).toEqual(allHit('first'));
    },
  );

  it(
    "with one server stopped, only that server's keys miss through the ketama client; " + 'all others still hit',
    async () => {
      await servers[REPLACED]!.stop();
      const got = await ketama('get');
      const missed = keys.filter((key) => got.get(key)?.startsWith('MISS '));
      expect(missed).toEqual(keys.filter((key) => owner.get(key) === REPLACED));
      expect(missed.length).toBeGreaterThan(0);
      for (const key of keys.filter((k) => owner.get(k) !== REPLACED))
        expect(got.get(key), key).toBe(`HIT ${key}:first`);
    },
  );

  it(
    'a replacement at the same address under a new hostname authenticates, ' + 'and every key round-trips again',
    async () => {
      const hostname = podHostname();
      expect(hostnames).not.toContain(hostname);
      servers[REPLACED] = await bench.start(target, { hostname, ipv4Address: addresses[REPLACED] });
      expect(servers[REPLACED]!.ip).toBe(addresses[REPLACED]);
      expect(await hostnameOf(servers[REPLACED]!.container.getId())).toBe(hostname);
      expect(await tryAuthenticatedRoundTrip(addresses[REPLACED]!, user.name, user.password)).toEqual({
        authStatus: Status.ok,
        roundTrip: true,
      });
      expect(
        (await tryAuthenticatedRoundTrip(addresses[REPLACED]!, user.name, `${user.password}-wrong`)).roundTrip,
      ).toBe(false);
      expect(await ketama('set', 'second')).toEqual(new Map(keys.map((key) => [key, 'STORED'])));
      expect(await ketama('get')).toEqual(allHit('second'));
      // Same address, same place on the continuum: the replacement holds exactly the keys of the server it replaced.
      for (const [key, indexes] of await holders('second')) expect(indexes, key).toEqual([owner.get(key)]);
    },
  );
});
