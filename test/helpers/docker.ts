import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { docker, OWNER_LABEL, SUITE_LABEL } from './resources.js';

export { docker, listLeftovers, removeLeftovers, SUITE_LABEL, type Leftovers } from './resources.js';

/** The run id, provided by the global setup. */
export function runId(): string {
  const id = inject('runId');
  if (!id) throw new Error('no run id: run the integration tests through vitest (its global setup provides one)');
  return id;
}

export function suiteLabels(): Record<string, string> {
  return { [SUITE_LABEL]: runId(), [OWNER_LABEL]: inject('ownerPid') };
}

export interface IsolatedNetwork {
  readonly name: string;
  readonly id: string;
  /** With `fixedAddresses`: the network's IPv4 /24 ("10.203.17.0/24"). */
  readonly subnet?: string;
  /** With `fixedAddresses`: host number 2-127 of the subnet, for a container's fixed address. */
  fixedAddress(host: number): string;
  /** With `ipv6`: the network's unique-local /64 and the host's (gateway's) address on it. */
  readonly ipv6Subnet?: string;
  readonly ipv6Gateway?: string;
  /** With `ipv6`: host number 2-127 of the /64, for a container's fixed IPv6 address. */
  fixedAddress6(host: number): string;
  remove(): Promise<void>;
}

export interface IsolatedNetworkOptions {
  readonly fixedAddresses?: boolean;
  /** A /24 of a documentation range (RFC 5737): a public address to the containers, routed nowhere. */
  readonly publicAddresses?: boolean;
  /** Dual stack: also a random unique-local /64 (fixed addresses ::2-::7f, the engine assigns ::1:0 up). */
  readonly ipv6?: boolean;
}

const DOCUMENTATION_PREFIXES = ['192.0.2', '198.51.100', '203.0.113'];

/** True when a /24 overlaps one of this host's IPv4 routes (the engine checks only its own networks, and
 * a host's uplink may itself sit in a documentation range): a network there would shadow the route. */
function shadowsHostRoute(prefix: string): boolean {
  const number = (hex: string) => Buffer.from(hex, 'hex').readUInt32LE(0);
  const candidate = prefix.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0) * 256;
  return readFileSync('/proc/net/route', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length >= 8 && fields[7] !== '00000000')
    .some((fields) => {
      const mask = (number(fields[7]!) & 0xffffff00) >>> 0;
      return ((candidate ^ number(fields[1]!)) & mask) === 0;
    });
}

/** A /24 from `pick` that no route of this host overlaps; a few picks are tried before giving up. */
function unroutedPrefix(pick: () => string, what: string): string {
  for (let attempt = 1; attempt <= 20; attempt++) {
    const prefix = pick();
    if (!shadowsHostRoute(prefix)) return prefix;
  }
  throw new Error(`no /24 for ${what}: every one tried shadows a route of this host`);
}

/** A random private /24 of the range the suite's networks use, never one over a route of this host
 * (the engine's default pools, 172.17-31 and 192.168, are left to networks that name no subnet). */
export function privateTestPrefix(what = 'a test network'): string {
  return unroutedPrefix(() => `10.${200 + randomInt(50)}.${randomInt(256)}`, what);
}

/**
 * Runs `create` on a /24 from `pick`; where the engine says the /24 overlaps one of its networks (another
 * run's, made since the pick), on another one, a few times. The one place the suite retries a taken /24.
 */
export async function onAnotherSubnetIfTaken<T>(
  pick: () => string,
  create: (prefix: string) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create(pick());
    } catch (error) {
      if (attempt >= 5 || !/overlap/i.test(String(error))) throw error;
    }
  }
}

/**
 * An internal network: no route out, only the containers the test attaches (and the host's bridge end).
 * `fixedAddresses` gives it a /24 of its own: the test hands out .2-.127, the engine assigns from .128 up.
 */
export async function createIsolatedNetwork(
  purpose: string,
  options: IsolatedNetworkOptions = {},
): Promise<IsolatedNetwork> {
  const name = `mh-${purpose}-${runId()}-${Math.random().toString(36).slice(2, 8)}`;
  const hex = randomBytes(7).toString('hex');
  const prefix6 = options.ipv6
    ? `fd${hex.slice(0, 2)}:${hex.slice(2, 6)}:${hex.slice(6, 10)}:${hex.slice(10, 14)}`
    : undefined;
  const create = (prefix?: string) => {
    const config = [
      ...(prefix ? [{ Subnet: `${prefix}.0/24`, IPRange: `${prefix}.128/25`, Gateway: `${prefix}.1` }] : []),
      ...(prefix6 ? [{ Subnet: `${prefix6}::/64`, IPRange: `${prefix6}::1:0/112`, Gateway: `${prefix6}::1` }] : []),
    ];
    return docker.createNetwork({
      Name: name,
      Driver: 'bridge',
      Internal: true,
      Labels: suiteLabels(),
      CheckDuplicate: true,
      ...(prefix6 ? { EnableIPv6: true } : {}),
      ...(config.length > 0 ? { IPAM: { Driver: 'default', Config: config } } : {}),
    });
  };
  const documentation = () => DOCUMENTATION_PREFIXES[randomInt(DOCUMENTATION_PREFIXES.length)]!;
  const pick = options.publicAddresses
    ? () => unroutedPrefix(documentation, `network ${name}`)
    : options.fixedAddresses
      ? () => privateTestPrefix(`network ${name}`)
      : undefined;
  const [prefix, created] = pick
    ? await onAnotherSubnetIfTaken(pick, async (chosen) => [chosen, await create(chosen)] as const)
    : [undefined, await create()];
  return {
    name,
    id: created.id,
    subnet: prefix ? `${prefix}.0/24` : undefined,
    fixedAddress: (host) => {
      if (!prefix || !Number.isInteger(host) || host < 2 || host > 127)
        throw new Error(`network ${name} has no fixed address ${host}`);
      return `${prefix}.${host}`;
    },
    ipv6Subnet: prefix6 ? `${prefix6}::/64` : undefined,
    ipv6Gateway: prefix6 ? `${prefix6}::1` : undefined,
    fixedAddress6: (host) => {
      if (!prefix6 || !Number.isInteger(host) || host < 2 || host > 127)
        throw new Error(`network ${name} has no fixed IPv6 address ${host}`);
      return `${prefix6}::${host.toString(16)}`;
    },
    remove: async () => {
      await created.remove().catch(() => undefined);
    },
  };
}

/** A container's global IPv6 address on a dual-stack network. */
export async function ipv6Of(containerId: string, network: string): Promise<string> {
  const address = (await docker.getContainer(containerId).inspect()).NetworkSettings.Networks[network]
    ?.GlobalIPv6Address;
  if (!address) throw new Error(`container ${containerId} has no IPv6 address on ${network}`);
  return address;
}

/** The networks a container is attached to, by name. */
export async function attachedNetworks(containerId: string): Promise<string[]> {
  const info = await docker.getContainer(containerId).inspect();
  return Object.keys(info.NetworkSettings.Networks ?? {});
}

/** A container's hostname, as the engine set it. */
export async function hostnameOf(containerId: string): Promise<string> {
  return (await docker.getContainer(containerId).inspect()).Config.Hostname;
}
