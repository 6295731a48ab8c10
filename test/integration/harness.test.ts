import { beforeAll, describe, expect, it } from 'vitest';
import { hostnameOf } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import { networksOf, podHostname, type RunningServer } from '../helpers/server.js';
import { targetRows } from '../helpers/targets.js';

/** Host numbers of fixed addresses in the bench's /24, as the fleet check uses them. */
const HOSTS = [11, 12, 13] as const;

// The suite's own set-up, not the image: the network and addresses the checks rely on (as `auth` and
// `fleet` start their servers). Out of the release's verification files, which judge an image.
describe.each(targetRows())('%s', (_name, target) => {
  const bench = isolatedServers('harness', { fixedAddresses: true });
  const hostnames = HOSTS.map(() => podHostname());
  let addresses: string[];
  let servers: RunningServer[];
  let control: RunningServer;

  beforeAll(async () => {
    addresses = HOSTS.map((n) => bench.network.fixedAddress(n));
    [control, ...servers] = await Promise.all([
      bench.control(target, ['-U', '0', '-p', '11211', '-l', '0.0.0.0']),
      ...addresses.map((ipv4Address, index) => bench.start(target, { hostname: hostnames[index], ipv4Address })),
    ]);
  });

  it('attaches a server and a control only to their isolated network', async () => {
    for (const server of [servers[0]!, control])
      expect(await networksOf(server.container)).toEqual([bench.network.name]);
  });

  it('runs three servers at their fixed addresses under distinct pod-like hostnames', async () => {
    expect(servers.map((server) => server.ip)).toEqual(addresses);
    expect(await Promise.all(servers.map((server) => hostnameOf(server.container.getId())))).toEqual(hostnames);
    expect(new Set(hostnames).size).toBe(HOSTS.length);
  });
});
