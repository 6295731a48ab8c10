import type { StartedTestContainer } from 'testcontainers';
import { beforeAll, describe, expect, it } from 'vitest';
import { clientsImage } from '../helpers/clients.js';
import { isolatedServers, type ClientHost } from '../helpers/fixture.js';
import { DUMP_SOCKET_TABLES, reachableSockets } from '../helpers/proc-net.js';
import { execIn, type RunningServer } from '../helpers/server.js';
import {
  buildSurfaceVariant,
  issueTlsSecret,
  startSurface,
  surfaceRows,
  type Surface,
  type TlsSecret,
} from '../helpers/surface.js';
import type { TestTarget } from '../helpers/targets.js';
import type { Variant } from '../helpers/variants.js';
import { SECOND_LISTENER } from '../helpers/weakenings.js';

/**
 * Docker's embedded DNS resolver: its sockets sit in every container on a user-defined network, owned by the
 * engine.
 */
const ENGINE_DNS = /^(tcp|udp) 127\.0\.0\.11:\d+$/;

/** Every socket of the server's network namespace that a peer could reach, loopback included, but the engine's DNS. */
async function socketInventory(server: RunningServer): Promise<string[]> {
  const dump = await execIn(server.container, ['sh', '-c', DUMP_SOCKET_TABLES], 'root');
  if (dump.exitCode !== 0) throw new Error(`could not read the socket tables: ${dump.output}`);
  return reachableSockets(dump.output).filter((socket) => !ENGINE_DNS.test(socket));
}

/**
 * What the image intends to listen on: memcached (or its TLS port) on the address, and with TLS its loopback
 * plaintext.
 */
function intendedSockets(server: RunningServer, surface: Surface): string[] {
  return [`tcp ${server.ip}:11211`, ...(surface === 'tls' ? ['tcp 127.0.0.1:11211'] : [])].sort();
}

/**
 * The open TCP ports nmap finds on `ip`, scanning all 65535 from `scanner`; refuses a scan that did not cover them
 * all.
 */
async function openTcpPorts(scanner: StartedTestContainer, ip: string): Promise<number[]> {
  const { output } = await execIn(scanner, [
    'nmap',
    '-sT',
    '-Pn',
    '-n',
    '-p-',
    '-T4',
    '--max-retries',
    '1',
    '--host-timeout',
    '90s',
    '-oG',
    '-',
    ip,
  ]);
  const line = output.split('\n').find((l) => l.startsWith(`Host: ${ip} `) && l.includes('Ports:'));
  if (!line) throw new Error(`nmap reported no ports for ${ip}:\n${output}`);
  const ports = (/Ports: ([^\t]*)/.exec(line)?.[1] ?? '')
    .split(', ')
    .filter(Boolean)
    .map((entry) => entry.split('/'));
  const ignored = Number(/Ignored State: \S+ \((\d+)\)/.exec(line)?.[1] ?? 0);
  if (ports.length + ignored !== 65535)
    throw new Error(`nmap covered ${ports.length + ignored} of 65535 ports: ${line}`);
  return ports.filter(([, state]) => state === 'open').map(([port]) => Number(port));
}

describe.each(surfaceRows())('%s', (_name, target, surface) => {
  const bench = isolatedServers('listeners');
  let scanner: ClientHost;
  let secret: TlsSecret | undefined;
  let variant: Variant;
  let server: RunningServer;
  let weakened: RunningServer;
  const start = async (of: TestTarget) => bench.keep(await startSurface(of, surface, bench.network.name, { secret }));

  beforeAll(async () => {
    secret = surface === 'tls' ? bench.keep(issueTlsSecret()) : undefined;
    // The control: the same image with one more listener, built on this surface's image.
    [scanner, variant] = await Promise.all([
      bench.clientHost(clientsImage()),
      buildSurfaceVariant(target, surface, SECOND_LISTENER).then(bench.keep),
    ]);
    [server, weakened] = await Promise.all([start(target), start(variant.target)]);
  });

  it(
    'every reachable socket in its namespace, loopback included, is an intended one; ' + 'one more listener is caught',
    async () => {
      expect(await socketInventory(server)).toEqual(intendedSockets(server, surface));
      expect(await socketInventory(weakened)).toEqual(
        [...intendedSockets(weakened, surface), 'tcp 0.0.0.0:11212'].sort(),
      );
    },
  );

  it('a scan of all 65535 TCP ports from the network finds only 11211; one more listener is caught', async () => {
    expect(await openTcpPorts(scanner.container, server.ip)).toEqual([11211]);
    expect(await openTcpPorts(scanner.container, weakened.ip)).toEqual([11211, 11212]);
  });
});
