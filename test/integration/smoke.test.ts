import { beforeAll, describe, expect, it } from 'vitest';
import { Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { isolatedServers } from '../helpers/fixture.js';
import { memcstat, memcstatShowsStats, type RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

// Issue A's smoke test: each profile's image authenticates the right password and refuses a wrong one.
describe.each(targetRows())('%s', (_profile, target) => {
  const bench = isolatedServers('smoke');
  let server: RunningServer;
  const user = firstUser(target);

  beforeAll(async () => {
    server = await bench.start(target, { hostname: `smoke-${Math.random().toString(36).slice(2, 10)}` });
  });

  it('memcstat with the right password shows stats; with a wrong one shows none', async () => {
    const right = await memcstat(target, bench.network.name, server.ip, user.name, user.password);
    const wrong = await memcstat(target, bench.network.name, server.ip, user.name, `${user.password}-wrong`);
    expect(memcstatShowsStats(right.output, server.ip)).toBe(true);
    expect(memcstatShowsStats(wrong.output, server.ip)).toBe(false);
  });

  it('the binary protocol round-trips with the right password and is refused with a wrong one', async () => {
    const right = await tryAuthenticatedRoundTrip(server.ip, user.name, user.password);
    const wrong = await tryAuthenticatedRoundTrip(server.ip, user.name, `${user.password}-wrong`);
    expect(right).toEqual({ authStatus: Status.ok, roundTrip: true });
    expect(wrong).toEqual({ authStatus: Status.authError, roundTrip: false });
  });
});
