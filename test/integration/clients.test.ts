import { randomBytes } from 'node:crypto';
import { beforeAll, describe, it } from 'vitest';
import type { SaslUser } from '../../src/credentials.js';
import {
  CLIENTS,
  clientsImage,
  parseLibraryVersions,
  roundTripVerdict,
  runClient,
  storedValues,
  type ClientName,
} from '../helpers/clients.js';
import { recordTableCell } from '../helpers/figures.js';
import { isolatedServers, type ClientHost } from '../helpers/fixture.js';
import { podHostname, type RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

/** The end-of-run table (and docs/clients.md): client × profile × credentials mode. */
const TABLE =
  'Client compatibility (client × profile × mode; ok = round trip with the right password, ' +
  'nothing stored with a wrong one)';

describe.each(targetRows())('%s', (_name, target) => {
  const user = firstUser(target);
  const bench = isolatedServers('clients');
  let server: RunningServer;
  let host: ClientHost;
  let libraries: Map<string, string>;

  beforeAll(async () => {
    [server, host] = await Promise.all([
      bench.start(target, { hostname: podHostname() }),
      bench.clientHost(clientsImage()),
    ]);
    libraries = parseLibraryVersions(await runClient(host.container, ['versions']));
  });

  /** One client run with a fresh key: what it printed, and what the server holds under that key. */
  async function attempt(
    client: ClientName,
    credentials: SaslUser,
  ): Promise<{ value: string; verdict: string; stored: string | undefined }> {
    const key = `${client}-${randomBytes(6).toString('hex')}`;
    const value = `from-${client}-${randomBytes(6).toString('hex')}`;
    const verdict = roundTripVerdict(
      await runClient(host.container, [client, `${server.ip}:11211`, key, value], credentials),
    );
    return { value, verdict, stored: (await storedValues(server.ip, user, [key])).get(key) };
  }

  // Concurrent: each client is its own process in the shared client host, with its own keys.
  it.concurrent.for(CLIENTS)(
    '%s round-trips with the right password (value read back by the client and by the suite); ' +
      'a wrong one stores nothing',
    async (client, { expect }) => {
      const [right, wrong] = await Promise.all([
        attempt(client, user),
        attempt(client, { name: user.name, password: `${user.password}-wrong` }),
      ]);
      const rightOk = right.verdict === `ok ${right.value}` && right.stored === right.value;
      const wrongRefused = wrong.verdict.startsWith('failed: ') && wrong.stored === undefined;
      const rightFailure = rightOk ? '' : `right password: ${right.verdict}; `;
      const wrongFailure = wrongRefused ? '' : `wrong password: ${wrong.verdict}`;
      recordTableCell({
        table: TABLE,
        row: `${client} (${libraries.get(client) ?? 'version unknown'})`,
        column: `${target.profile} ${target.credentials}`,
        value: rightOk && wrongRefused ? 'ok' : `FAIL (${rightFailure}${wrongFailure})`,
      });
      // Judged by the values read back, never by an exit code (libmemcached 1.0.18's tools exit 0 on auth failure).
      expect(right.verdict).toBe(`ok ${right.value}`);
      expect(right.stored).toBe(right.value);
      expect(wrong.verdict).toMatch(/^failed: /);
      expect(wrong.stored).toBeUndefined();
    },
  );
});
