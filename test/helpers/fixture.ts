import { afterAll, beforeAll } from 'vitest';
import { createIsolatedNetwork, docker, type IsolatedNetwork, type IsolatedNetworkOptions } from './docker.js';
import { startClientHost, startControl, startServer, type RunningServer, type ServerOptions } from './server.js';
import type { TestTarget } from './targets.js';

export type ClientHost = Awaited<ReturnType<typeof startClientHost>>;

/** What the bench ends with it: a container is stopped, anything else (an image, a secret) removed. */
export type Resource = { stop(): Promise<unknown>; container?: { getId(): string } } | { remove(): unknown };

/** Stops a container, and removes it where the stop did not (it had exited, or the stop failed). */
async function end(resource: Resource): Promise<void> {
  if (!('stop' in resource)) return;
  await resource.stop().catch(() => undefined);
  const id = resource.container?.getId();
  if (!id) return;
  await docker
    .getContainer(id)
    .remove({ force: true })
    .catch(() => undefined);
}

/** One isolated network and what runs on it, for one describe block; everything is ended in its afterAll. */
export interface ServerBench {
  /** The bench's network (from its beforeAll on). */
  readonly network: IsolatedNetwork;
  /** Another isolated network, removed with the bench's own. */
  addNetwork(purpose: string, options?: IsolatedNetworkOptions): Promise<IsolatedNetwork>;
  /** `startServer` on the bench's network (or `network`), stopped with the bench. */
  start(target: TestTarget, options?: ServerOptions, network?: string): Promise<RunningServer>;
  /** `startControl` (memcached started directly) on the bench's network (or `network`). */
  control(
    target: TestTarget,
    memcachedArgs: string[],
    options?: ServerOptions,
    network?: string,
  ): Promise<RunningServer>;
  /** `startClientHost` on the bench's network (or `network`). */
  clientHost(imageOrTarget: string | TestTarget, network?: string): Promise<ClientHost>;
  /** Ends `resource` with the bench (a server started some other way, a built variant, a secret). */
  keep<T extends Resource>(resource: T): T;
}

/**
 * Registers a beforeAll that creates an isolated network and an afterAll that stops every container the
 * bench started or keeps (even one a test stopped already), then removes images and secrets, then the
 * networks. Call it inside the describe block, before the block's own hooks: vitest runs before-hooks in
 * the order they were registered and after-hooks in reverse, so the block's setup finds the network and
 * its teardown runs while the containers are still there.
 */
export function isolatedServers(purpose: string, options: IsolatedNetworkOptions = {}): ServerBench {
  let network: IsolatedNetwork | undefined;
  const networks: IsolatedNetwork[] = [];
  const resources: Resource[] = [];
  const keep = <T extends Resource>(resource: T): T => {
    resources.push(resource);
    return resource;
  };
  const current = (): IsolatedNetwork => {
    if (!network) throw new Error(`the ${purpose} bench has no network: use it from a hook or a test`);
    return network;
  };
  const own = (name: string | undefined) => name ?? current().name;

  beforeAll(async () => {
    network = await createIsolatedNetwork(purpose, options);
    networks.push(network);
  });

  afterAll(async () => {
    // Some containers are gone already (stopped or killed by a check): that is no teardown failure.
    await Promise.all(resources.map(end));
    for (const r of resources) if (!('stop' in r)) await Promise.resolve(r.remove()).catch(() => undefined);
    await Promise.all(networks.map((n) => n.remove()));
  });

  return {
    get network() {
      return current();
    },
    addNetwork: async (more, moreOptions) => {
      const added = await createIsolatedNetwork(more, moreOptions);
      networks.push(added);
      return added;
    },
    start: async (target, serverOptions, on) => keep(await startServer(target, own(on), serverOptions)),
    control: async (target, args, serverOptions, on) => keep(await startControl(target, own(on), args, serverOptions)),
    clientHost: async (imageOrTarget, on) => keep(await startClientHost(imageOrTarget, own(on))),
    keep,
  };
}
