import { beforeAll, describe, expect, it } from 'vitest';
import { Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { isolatedServers } from '../helpers/fixture.js';
import { parseSasldbDump } from '../helpers/sasldb-dump.js';
import { execIn, podHostname, type RunningServer } from '../helpers/server.js';
import { targetRows } from '../helpers/targets.js';
import { addSasldbUserScript, EXTRA_USER } from '../helpers/weakenings.js';

/** The sasldb memcached's SASL library reads: the path its config names (the claim tested below). */
async function sasldbPath(server: RunningServer): Promise<string> {
  const conf = (await execIn(server.container, ['cat', '/etc/sasl2/memcached.conf'])).output;
  const path = /^sasldb_path:\s*(\S+)\s*$/m.exec(conf)?.[1];
  if (!path) throw new Error(`no sasldb_path in the server's /etc/sasl2/memcached.conf:\n${conf}`);
  return path;
}

/** Users the running server's sasldb holds, as user@realm (names only: values are never read out). */
async function sasldbUsers(server: RunningServer): Promise<string[]> {
  const dump = await execIn(server.container, ['db5.3_dump', '-p', await sasldbPath(server)]);
  if (dump.exitCode !== 0) throw new Error(`db5.3_dump failed in the server: ${dump.output.trim()}`);
  return [...new Set(parseSasldbDump(dump.output).map((e) => `${e.user}@${e.realm}`))].sort();
}

/** Extra and missing user@realm entries against the expected names under the server's hostname. */
function difference(
  actual: readonly string[],
  names: readonly string[],
  realm: string,
): { extra: string[]; missing: string[] } {
  const expected = names.map((name) => `${name}@${realm}`);
  return {
    extra: actual.filter((u) => !expected.includes(u)),
    missing: expected.filter((u) => !actual.includes(u)).sort(),
  };
}

describe.each(targetRows())('%s', (_profile, target) => {
  const names = target.users.map((u) => u.name);
  const bench = isolatedServers('users');
  let server: RunningServer;
  let planted: RunningServer;
  const hostname = podHostname();
  const plantedHostname = podHostname();

  beforeAll(async () => {
    [server, planted] = await Promise.all([
      bench.start(target, { hostname }),
      bench.start(target, { hostname: plantedHostname }),
    ]);
  });

  it(
    'the running sasldb holds exactly the users file, keyed to the hostname: ' + 'no extra, missing or renamed user',
    async () => {
      expect(difference(await sasldbUsers(server), names, hostname)).toEqual({ extra: [], missing: [] });
    },
  );

  it('control: a user planted in the sasldb memcached reads is reported by name, and could log in', async () => {
    // Before planting, the control server is as clean as the one above.
    expect(difference(await sasldbUsers(planted), names, plantedHostname)).toEqual({ extra: [], missing: [] });
    expect((await tryAuthenticatedRoundTrip(planted.ip, EXTRA_USER.name, EXTRA_USER.password)).roundTrip).toBe(false);
    const plant = await execIn(planted.container, ['sh', '-c', addSasldbUserScript(await sasldbPath(planted))]);
    expect(plant.exitCode, plant.output).toBe(0);
    expect(difference(await sasldbUsers(planted), names, plantedHostname)).toEqual({
      extra: [`${EXTRA_USER.name}@${plantedHostname}`],
      missing: [],
    });
    // The file read above is the one memcached authenticates against: the planted user gets in.
    expect(await tryAuthenticatedRoundTrip(planted.ip, EXTRA_USER.name, EXTRA_USER.password)).toEqual({
      authStatus: Status.ok,
      roundTrip: true,
    });
  });

  it('the comparison names a missing or renamed user', () => {
    const [first = '', ...rest] = names;
    const actual = [...rest.map((n) => `${n}@${hostname}`), `${first}x@${hostname}`];
    expect(difference(actual, names, hostname)).toEqual({
      extra: [`${first}x@${hostname}`],
      missing: [`${first}@${hostname}`],
    });
  });
});
