import { beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/profiles.js';
import { clientsImage } from '../helpers/clients.js';
import { isolatedServers, type ClientHost } from '../helpers/fixture.js';
import { execIn, type RunningServer } from '../helpers/server.js';
import { buildSurfaceVariant, issueTlsSecret, startSurface, type TlsSecret } from '../helpers/surface.js';
import { targetRows } from '../helpers/targets.js';
import { parseNmapTlsScan, tlsPolicyViolations, type TlsScan } from '../helpers/tls-policy.js';
import type { Variant } from '../helpers/variants.js';
import { TLS_PERMISSIVE_CIPHERS } from '../helpers/weakenings.js';

describe.each(targetRows())('%s (TLS)', (_name, target) => {
  const intended = loadProfile(target.profile).tls.versions;
  const bench = isolatedServers('tls-policy');
  let scanner: ClientHost;
  let secret: TlsSecret;
  let permissive: Variant;
  const servers: RunningServer[] = [];
  /** Every version and suite the port accepts and its certificate, enumerated by nmap from the network. */
  const scan = async (server: RunningServer): Promise<TlsScan> => {
    const command = [
      'nmap',
      '-sT',
      '-Pn',
      '-n',
      '-p',
      '11211',
      '--script',
      'ssl-enum-ciphers,ssl-cert',
      '-oX',
      '-',
      server.ip,
    ];
    return parseNmapTlsScan((await execIn(scanner.container, command)).output);
  };

  beforeAll(async () => {
    secret = bench.keep(issueTlsSecret());
    [scanner, permissive] = await Promise.all([
      bench.clientHost(clientsImage()),
      buildSurfaceVariant(target, 'tls', TLS_PERMISSIVE_CIPHERS).then(bench.keep),
    ]);
    const network = bench.network.name;
    servers.push(
      ...(await Promise.all([
        startSurface(target, 'tls', network, { secret }).then(bench.keep),
        startSurface(permissive.target, 'tls', network, { secret }).then(bench.keep),
      ])),
    );
  });

  it(
    `accepts exactly ${intended.join(' and ')}, forward-secret AEAD suites only, a strong certificate; ` +
      'a permissive cipher list is caught',
    async () => {
      const [server, weakened] = servers;
      const real = await scan(server!);
      expect(tlsPolicyViolations(real, intended)).toEqual([]);
      // The scan saw what it judged: the intended versions, each with suites.
      expect(Object.values(real.versions).every((suites) => suites.length > 0)).toBe(true);
      const loose = tlsPolicyViolations(await scan(weakened!), intended);
      expect(loose.filter((violation) => / accepts TLS_/.test(violation))).not.toEqual([]);
    },
  );
});
