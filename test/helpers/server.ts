import Docker from 'dockerode';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { BinaryClient, Op } from './binary-client.js';
import { attachedNetworks, docker, suiteLabels } from './docker.js';
import type { TestTarget } from './targets.js';

export interface ServerOptions {
  readonly hostname?: string;
  readonly env?: Record<string, string>;
  readonly capAdd?: string[];
  readonly capDrop?: string[];
  readonly securityOpt?: string[];
  readonly readOnly?: boolean;
  readonly tmpfs?: Record<string, string>;
  /** Replaces the entrypoint: for controls that start memcached differently from the image. */
  readonly entrypoint?: string[];
  readonly command?: string[];
  readonly user?: string;
}

/** testcontainers' GenericContainer plus the read-only root file system it has no method for. */
class ServerContainer extends GenericContainer {
  withReadOnlyRootFs(): this {
    this.hostConfig.ReadonlyRootfs = true;
    return this;
  }
}

export interface RunningServer {
  readonly container: StartedTestContainer;
  readonly ip: string;
  readonly network: string;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/** Waits until memcached answers a binary `version` request from the host. */
export async function waitUntilServing(ip: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    try {
      const client = await BinaryClient.connect(ip, 11211, 1000);
      const response = await client.request(Op.version, '', '', undefined, 1000);
      client.close();
      if (response) return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`memcached at ${ip} did not answer within ${timeoutMs} ms: ${lastError}`);
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

function configure(image: string, network: string, options: ServerOptions): ServerContainer {
  let container = new ServerContainer(image).withNetworkMode(network).withLabels(suiteLabels());
  if (options.hostname) container = container.withHostname(options.hostname);
  if (options.env) container = container.withEnvironment(options.env);
  if (options.capAdd) container = container.withAddedCapabilities(...(options.capAdd as never[]));
  if (options.capDrop) container = container.withDroppedCapabilities(...(options.capDrop as never[]));
  if (options.securityOpt) container = container.withSecurityOpt(...options.securityOpt);
  if (options.tmpfs) container = container.withTmpFs(options.tmpfs);
  if (options.readOnly) container = container.withReadOnlyRootFs();
  if (options.entrypoint) container = container.withEntrypoint(options.entrypoint);
  if (options.command) container = container.withCommand(options.command);
  if (options.user) container = container.withUser(options.user);
  return container;
}

/** Starts the server image on one isolated network and waits until memcached answers. */
export async function startServer(target: TestTarget, network: string, options: ServerOptions = {}): Promise<RunningServer> {
  const started = await configure(target.image, network, options)
    .withWaitStrategy(options.entrypoint ? Wait.forLogMessage(/.*/) : Wait.forLogMessage(/listening on/))
    .withStartupTimeout(30_000)
    .start();
  const ip = started.getIpAddress(network);
  await waitUntilServing(ip);
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

export interface ExitedContainer {
  readonly exitCode: number;
  readonly output: string;
}

/** Runs a container to its end (a client command, or a server expected to refuse to start). */
export async function runToExit(image: string, network: string, options: ServerOptions & { timeoutMs?: number } = {}): Promise<ExitedContainer> {
  const container: Docker.Container = await docker.createContainer({
    Image: image,
    Cmd: options.command,
    Entrypoint: options.entrypoint,
    Hostname: options.hostname,
    User: options.user,
    Env: Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: suiteLabels(),
    HostConfig: {
      NetworkMode: network,
      CapAdd: options.capAdd,
      CapDrop: options.capDrop,
      SecurityOpt: options.securityOpt,
      ReadonlyRootfs: options.readOnly,
      Tmpfs: options.tmpfs,
    },
  });
  try {
    await container.start();
    const waited = container.wait() as Promise<{ StatusCode: number }>;
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${image} ${options.command?.join(' ') ?? ''} did not exit`)), options.timeoutMs ?? 30_000),
    );
    const { StatusCode } = await Promise.race([waited, timeout]);
    return { exitCode: StatusCode, output: await containerLogs(container.id) };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/** The tutorial's check: memcstat from the client image on the same network. Returns what it printed. */
export async function memcstat(target: TestTarget, network: string, server: string, user?: string, password?: string): Promise<ExitedContainer> {
  // --binary: libmemcached 1.1 needs it spelled out for SASL; 1.0.18 switches by itself.
  const command = ['memcstat', '--binary', `--servers=${server}`];
  if (user !== undefined) command.push(`--username=${user}`, `--password=${password ?? ''}`);
  return runToExit(target.clientImage, network, { command });
}

/** True when memcstat's output shows the server's stats (its exit code alone proves nothing). */
export function memcstatShowsStats(output: string, server: string): boolean {
  return output.includes(`Server: ${server} (11211)`) && /^\s*pid: \d+$/m.test(output) && /^\s*version: \d/m.test(output);
}

/** Asserts the container is attached to exactly the given networks (no default bridge). */
export async function networksOf(container: StartedTestContainer): Promise<string[]> {
  return attachedNetworks(container.getId());
}
