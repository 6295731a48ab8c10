import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { BinaryClient, Op } from '../../lib/binary-client.js';
import { projectPath } from '../../src/paths.js';
import { loadProfile } from '../../src/profiles.js';
import { attachedNetworks, docker, suiteLabels } from './docker.js';
import { pollUntil } from './poll.js';
import { socketsOnPort, TCP_LISTEN } from './proc-net.js';
import type { TestTarget } from './targets.js';
import { seccompWeakeningFrom, type SeccompProfile, type SeccompWeakening } from './weakenings.js';

export interface ServerOptions {
  readonly hostname?: string;
  readonly env?: Record<string, string>;
  readonly capAdd?: readonly string[];
  readonly capDrop?: string[];
  readonly securityOpt?: string[];
  readonly readOnly?: boolean;
  readonly tmpfs?: Record<string, string>;
  readonly pidsLimit?: number;
  /**
   * false: the engine's defaults instead of the locked-down run (lockedDownHost), for a test whose check needs
   * them (say why where it is passed).
   */
  readonly lockedDown?: boolean;
  /** Replaces the entrypoint: for controls that start memcached differently from the image. */
  readonly entrypoint?: string[];
  readonly command?: string[];
  readonly user?: string;
  /** Extra bind mounts, `host:container:ro`. */
  readonly binds?: string[];
  /** Skip waiting for memcached to answer the host (for servers the host must not reach). */
  readonly unreachableFromHost?: boolean;
  /** The engine's health check for this container (e.g. the image's own test, polled faster). */
  readonly healthCheck?: Parameters<GenericContainer['withHealthCheck']>[0];
  /** A fixed IPv4 address on the network (one created with a subnet: `createIsolatedNetwork`'s `fixedAddresses`). */
  readonly ipv4Address?: string;
  /** A fixed IPv6 address on the network (a dual-stack one: `createIsolatedNetwork`'s `ipv6`). */
  readonly ipv6Address?: string;
  /** More networks, attached before the container starts (a multi-homed server). */
  readonly extraNetworks?: readonly string[];
}

/** The engine's endpoint settings for fixed addresses on `network`, if any are asked for. */
function fixedAddressing(network: string, options: ServerOptions): Docker.ContainerCreateOptions['NetworkingConfig'] {
  if (!options.ipv4Address && !options.ipv6Address) return undefined;
  return {
    EndpointsConfig: {
      [network]: { IPAMConfig: { IPv4Address: options.ipv4Address, IPv6Address: options.ipv6Address } },
    },
  };
}

/**
 * testcontainers' GenericContainer plus what it has no method for: a read-only root, fixed addresses, more
 * networks.
 */
class ServerContainer extends GenericContainer {
  private extraNetworks: readonly string[] = [];

  /** Takes the settings from containerSpec; testcontainers keeps the network mode and its own labels. */
  withSpec(spec: Docker.ContainerCreateOptions): this {
    const { HostConfig, ...create } = spec;
    Object.assign(
      this.createOpts,
      Object.fromEntries(Object.entries(create).filter(([, value]) => value !== undefined)),
    );
    Object.assign(
      this.hostConfig,
      Object.fromEntries(Object.entries(HostConfig ?? {}).filter(([, value]) => value !== undefined)),
    );
    return this;
  }

  withExtraNetworks(networks: readonly string[]): this {
    this.extraNetworks = networks;
    return this;
  }

  /** Attaches the extra networks between create and start: the entrypoint sees every address at once. */
  protected override async containerCreated(containerId: string): Promise<void> {
    for (const network of this.extraNetworks) await docker.getNetwork(network).connect({ Container: containerId });
  }
}

/** A Kubernetes-like pod name (deployment, replica-set hash, random suffix): a new one every call. */
export function podHostname(deployment = 'cache'): string {
  return `${deployment}-7d9f8b6c4-${Math.random().toString(36).slice(2, 7)}`;
}

export interface RunningServer {
  readonly container: StartedTestContainer;
  readonly ip: string;
  readonly network: string;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * How long a server may take to answer after its start: it answers in about a second on a quiet machine,
 * but CI runs four test files at once on two cores, and a restarted 1.4.25 took over 10 s there.
 */
export const READY_TIMEOUT_MS = 30_000;

/** Waits until memcached answers a binary `version` request from the host. */
export async function waitUntilServing(
  ip: string,
  timeoutMs = READY_TIMEOUT_MS,
  diagnose?: () => Promise<string>,
): Promise<void> {
  await pollUntil(
    async () => {
      const client = await BinaryClient.connect(ip, 11211, 1000);
      try {
        return (await client.request(Op.version, '', '', undefined, 1000)) ? true : undefined;
      } finally {
        client.close();
      }
    },
    { timeoutMs, what: `memcached at ${ip} answers`, diagnose },
  );
}

/** Waits until a socket in the container's namespace listens on 11211. */
async function waitUntilListening(container: StartedTestContainer, diagnose: () => Promise<string>): Promise<void> {
  await pollUntil(
    async () => {
      const { output } = await container.exec(['cat', '/proc/net/tcp', '/proc/net/tcp6']);
      return socketsOnPort(output).some((socket) => socket.state === TCP_LISTEN) ? true : undefined;
    },
    { timeoutMs: READY_TIMEOUT_MS, what: 'memcached listens inside the container', diagnose },
  );
}

export function containerLogs(id: string): Promise<string> {
  return docker
    .getContainer(id)
    .logs({ stdout: true, stderr: true, follow: false })
    .then((buffer) => demux(buffer as unknown as Buffer));
}

/** Docker's multiplexed log stream (8-byte frame headers) as plain text. */
function demux(buffer: Buffer): string {
  let out = '';
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    out += buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
  }
  return out;
}

/** The users secret a runtime-credentials server needs, as a read-only bind mount (none for controls). */
function secretMounts(target: TestTarget, options: ServerOptions): Array<{ source: string; target: string }> {
  if (target.credentials !== 'runtime' || options.entrypoint || !target.usersSecret) return [];
  return [{ source: target.usersSecret, target: RUNTIME_USERS_SECRET }];
}

const RUNTIME_USERS_SECRET = '/run/secrets/memcached_users';

/** True when the target names its TLS image (`surfaceTarget(target, 'tls')`). */
function isTlsImage(target: TestTarget): boolean {
  return target.tlsImage !== undefined && target.image === target.tlsImage;
}

/** The seccomp profile file of a target's image (seccomp/): its profile's, the -tls one for its TLS image. */
export function seccompProfileFile(target: TestTarget): string {
  return projectPath('seccomp', `${target.profile}${isTlsImage(target) ? '-tls' : ''}.json`);
}

/**
 * A target's servers run under its image's seccomp profile, unless the test passes a seccomp option of its
 * own; in a mutation-check run of a seccomp weakening (SECCOMP_WEAKENING_ENV), under that profile weakened.
 */
function seccompOption(target: TestTarget | undefined, options: ServerOptions): string[] {
  if (!target || options.securityOpt?.some((option) => option.startsWith('seccomp'))) return [];
  const weakening = seccompWeakeningFrom(process.env);
  if (!weakening) return [`seccomp=${readFileSync(seccompProfileFile(target), 'utf8')}`];
  return [`seccomp=${weakenedSeccompProfile(target, weakening)}`];
}

/** The target's image's seccomp profile with `weakening` applied, as the JSON a seccomp option takes. */
export function weakenedSeccompProfile(target: TestTarget, weakening: SeccompWeakening): string {
  const profile = JSON.parse(readFileSync(seccompProfileFile(target), 'utf8')) as SeccompProfile;
  return JSON.stringify(weakening.seccomp(profile));
}

/**
 * What the allowlist needs under --cap-drop ALL, the profile's (its iptables carries them as file
 * capabilities, and its exec fails without any of them).
 */
export function allowlistCapabilities(target: TestTarget): readonly string[] {
  return loadProfile(target.profile).allowlistCapabilities;
}

/** memcached's run folder as a tmpfs owned by the image's memcache user: what a read-only root needs. */
export const RUN_TMPFS: Readonly<Record<string, string>> = { '/run/memcached': 'uid=11211,gid=11211,mode=0700' };

/**
 * The locked-down run of docs/image.md, every target server's default: read-only root (the run folder on
 * tmpfs), no capabilities, no privilege gain, a pids limit. The image's seccomp profile is added below.
 * memcached runs 6 threads (1.4.25) or 10 (1.6.18) at -t 4; stunnel, the 16.04 TLS front, runs one more per
 * connection (up to -c).
 */
const LOCKED_DOWN = { pidsLimit: 64, tlsFrontPidsLimit: 64 + 1024 } as const;

/** The locked-down run's pids limit for the target's image: more where a TLS front runs a thread per client. */
export function lockedDownPidsLimit(target: TestTarget): number {
  const tlsFront = isTlsImage(target) && loadProfile(target.profile).tls.via === 'stunnel';
  return tlsFront ? LOCKED_DOWN.tlsFrontPidsLimit : LOCKED_DOWN.pidsLimit;
}

/**
 * The host settings of the locked-down run, each one the test's own where it names it. A test that adds
 * capabilities (the allowlist's, NET_ADMIN and on 16.04 NET_RAW) gets no no-new-privileges: that would void the
 * file capabilities the image's iptables runs with.
 */
function lockedDownHost(target: TestTarget, options: ServerOptions): Docker.HostConfig {
  const asked = options.securityOpt ?? [];
  const noNewPrivileges = options.capAdd?.length || asked.includes('no-new-privileges') ? [] : ['no-new-privileges'];
  return {
    ReadonlyRootfs: options.readOnly ?? true,
    Tmpfs: { ...RUN_TMPFS, ...options.tmpfs },
    CapDrop: options.capDrop ?? ['ALL'],
    SecurityOpt: [...asked, ...noNewPrivileges],
    PidsLimit: options.pidsLimit ?? lockedDownPidsLimit(target),
  };
}

/**
 * The engine's create options for a server (a target: its users secret is mounted) or a plain image: the
 * one place container settings are assembled, for testcontainers and for direct engine calls alike.
 */
export function containerSpec(
  imageOrTarget: string | TestTarget,
  network: string,
  options: ServerOptions = {},
): Docker.ContainerCreateOptions {
  const target = typeof imageOrTarget === 'string' ? undefined : imageOrTarget;
  const binds = [
    ...(target ? secretMounts(target, options).map((m) => `${m.source}:${m.target}:ro`) : []),
    ...(options.binds ?? []),
  ];
  const health = options.healthCheck;
  const host: Docker.HostConfig =
    target && options.lockedDown !== false
      ? lockedDownHost(target, options)
      : {
          ReadonlyRootfs: options.readOnly,
          Tmpfs: options.tmpfs,
          CapDrop: options.capDrop,
          SecurityOpt: options.securityOpt ?? [],
          PidsLimit: options.pidsLimit,
        };
  const nanoseconds = (ms: number | undefined) => (ms === undefined ? undefined : ms * 1e6);
  return {
    Image: target?.image ?? (imageOrTarget as string),
    Cmd: options.command,
    Entrypoint: options.entrypoint,
    Hostname: options.hostname,
    User: options.user,
    Env: Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: suiteLabels(),
    Healthcheck: health
      ? {
          Test: health.test,
          Interval: nanoseconds(health.interval),
          Timeout: nanoseconds(health.timeout),
          Retries: health.retries,
          StartPeriod: nanoseconds(health.startPeriod),
        }
      : undefined,
    HostConfig: {
      NetworkMode: network,
      Binds: binds,
      CapAdd: options.capAdd,
      ...host,
      SecurityOpt: [...(host.SecurityOpt ?? []), ...seccompOption(target, options)],
    },
    NetworkingConfig: fixedAddressing(network, options),
  };
}

function configure(target: TestTarget, network: string, options: ServerOptions): ServerContainer {
  const container = new ServerContainer(target.image)
    .withSpec(containerSpec(target, network, options))
    .withNetworkMode(network);
  return options.extraNetworks ? container.withExtraNetworks(options.extraNetworks) : container;
}

/** Starts the server image on one isolated network and waits until memcached answers. */
export async function startServer(
  target: TestTarget,
  network: string,
  options: ServerOptions = {},
): Promise<RunningServer> {
  let container = configure(target, network, options).withStartupTimeout(30_000);
  // The entrypoint announces itself just before exec'ing memcached; controls are waited for by probing.
  if (!options.entrypoint) container = container.withWaitStrategy(Wait.forLogMessage(/listening on/));
  const started = await container.start();
  // In another container's network namespace (`container:ID`), the server has that container's address.
  const ip = network.startsWith('container:')
    ? await firstIpv4(network.slice('container:'.length))
    : started.getIpAddress(network);
  if (!ip) {
    const logs = await containerLogs(started.getId()).catch(() => '');
    await started.stop({ remove: true }).catch(() => undefined);
    throw new Error(`${target.image} has no address on ${network} (exited?): ${logs.trim()}`);
  }
  const diagnose = () => containerLogs(started.getId());
  if (!options.unreachableFromHost) await waitUntilServing(ip, READY_TIMEOUT_MS, diagnose);
  // The entrypoint says "listening on" just before memcached binds: where the host cannot probe, look inside.
  else if (!options.entrypoint) await waitUntilListening(started, diagnose);
  return {
    container: started,
    ip,
    network,
    logs: () => containerLogs(started.getId()),
    stop: async () => {
      await started.stop({ remove: true, removeVolumes: true });
    },
  };
}

async function firstIpv4(containerId: string): Promise<string> {
  const networks = Object.values((await docker.getContainer(containerId).inspect()).NetworkSettings.Networks ?? {});
  return networks[0]?.IPAddress ?? '';
}

export interface ExitedContainer {
  readonly exitCode: number;
  readonly output: string;
}

/** Runs a container to its end: a client command, or a server (a target) expected to refuse to start. */
export async function runToExit(
  imageOrTarget: string | TestTarget,
  network: string,
  options: ServerOptions & { timeoutMs?: number } = {},
): Promise<ExitedContainer> {
  const image = typeof imageOrTarget === 'string' ? imageOrTarget : imageOrTarget.image;
  const container: Docker.Container = await docker.createContainer(containerSpec(imageOrTarget, network, options));
  try {
    await container.start();
    const waited = container.wait() as Promise<{ StatusCode: number }>;
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`${image} ${options.command?.join(' ') ?? ''} did not exit`)),
        options.timeoutMs ?? 30_000,
      ),
    );
    const { StatusCode } = await Promise.race([waited, timeout]);
    return { exitCode: StatusCode, output: await containerLogs(container.id) };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/** The tutorial's check: memcstat from the client image on the same network. Returns what it printed. */
export async function memcstat(
  target: TestTarget,
  network: string,
  server: string,
  user?: string,
  password?: string,
): Promise<ExitedContainer> {
  return runToExit(target.clientImage, network, { command: memcstatCommand(server, user, password) });
}

/** The same check from a client container already running (the tests' client hosts); what it printed. */
export async function memcstatIn(
  container: StartedTestContainer,
  server: string,
  user: { name: string; password: string },
): Promise<string> {
  return (await execIn(container, memcstatCommand(server, user.name, user.password))).output;
}

function memcstatCommand(server: string, user?: string, password?: string): string[] {
  // --binary: libmemcached 1.1 needs it spelled out for SASL; 1.0.18 switches by itself.
  const command = ['memcstat', '--binary', `--servers=${server}`];
  if (user !== undefined) command.push(`--username=${user}`, `--password=${password ?? ''}`);
  return command;
}

/** True when memcstat's output shows the server's stats (its exit code alone proves nothing). */
export function memcstatShowsStats(output: string, server: string): boolean {
  return (
    output.includes(`Server: ${server} (11211)`) && /^\s*pid: \d+$/m.test(output) && /^\s*version: \d/m.test(output)
  );
}

/** The networks a container is attached to, by name (to assert: only the test's isolated ones). */
export async function networksOf(container: StartedTestContainer): Promise<string[]> {
  return attachedNetworks(container.getId());
}

/**
 * A control server: the same image, memcached started directly with the given options (as the image's
 * non-root user), bypassing the entrypoint. Used to show that a probe does detect what it looks for.
 */
export function startControl(
  target: TestTarget,
  network: string,
  memcachedArgs: string[],
  options: ServerOptions = {},
): Promise<RunningServer> {
  return startServer(target, network, { ...options, entrypoint: ['memcached', ...memcachedArgs] });
}

/** Runs a command inside a running container; returns its output and exit code. */
export async function execIn(
  container: StartedTestContainer,
  command: string[],
  user?: string,
): Promise<{ output: string; exitCode: number }> {
  const result = await container.exec(command, user ? { user } : {});
  return { output: result.output, exitCode: result.exitCode };
}

/** True when the host can open a TCP connection to ip:11211 within 2 s. */
export async function hostConnects(ip: string): Promise<boolean> {
  try {
    (await BinaryClient.connect(ip, 11211, 2000)).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * A client container that stays up so tests can run probes from it (its IP is known in advance): the
 * target's client image, or another image (the clients image, say).
 */
export async function startClientHost(
  imageOrTarget: string | TestTarget,
  network: string,
): Promise<{ container: StartedTestContainer; ip: string; stop: () => Promise<void> }> {
  const started = await new GenericContainer(
    typeof imageOrTarget === 'string' ? imageOrTarget : imageOrTarget.clientImage,
  )
    .withNetworkMode(network)
    .withLabels(suiteLabels())
    .withEntrypoint(['sleep', 'infinity'])
    .start();
  return {
    container: started,
    ip: started.getIpAddress(network),
    stop: () => started.stop({ remove: true }).then(() => undefined),
  };
}

/** Bash's /dev/tcp from inside a client container: 'connected' or 'failed' within 3 s. */
export async function tcpProbe(client: StartedTestContainer, ip: string): Promise<'connected' | 'failed'> {
  const script = `timeout 3 bash -c 'exec 3<>/dev/tcp/${ip}/11211' && echo CONNECTED || echo FAILED`;
  const { output } = await execIn(client, ['bash', '-c', script]);
  if (output.includes('CONNECTED')) return 'connected';
  if (output.includes('FAILED')) return 'failed';
  throw new Error(`tcp probe gave no verdict: ${output}`);
}

/** memcached's UDP frame (request id 1, sequence 0, one datagram) around an ASCII `stats`. */
export const UDP_STATS_REQUEST = '\\x00\\x01\\x00\\x00\\x00\\x01\\x00\\x00stats\\r\\n';

/** Sends a UDP `stats` from inside a client container; returns what came back within 2 s. */
export async function udpStatsProbe(client: StartedTestContainer, ip: string, port = 11211): Promise<string> {
  const script =
    `exec 3<>/dev/udp/${ip}/${port}; printf '${UDP_STATS_REQUEST}' >&3; ` +
    "timeout 2 head -c 200 <&3 | tr -d '\\000' ; true";
  return (await execIn(client, ['bash', '-c', script])).output;
}
