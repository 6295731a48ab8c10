import Docker from 'dockerode';
import { inject } from 'vitest';

/** Every container, network and volume the suite creates carries this label, valued with the run id. */
export const SUITE_LABEL = 'memcached-hardened.test-run';

export const docker = new Docker();

/** The run id, provided by the global setup. */
export function runId(): string {
  const id = inject('runId');
  if (!id) throw new Error('no run id: run the integration tests through vitest (its global setup provides one)');
  return id;
}

export function suiteLabels(): Record<string, string> {
  return { [SUITE_LABEL]: runId() };
}

export interface Leftovers {
  readonly containers: string[];
  readonly networks: string[];
  readonly volumes: string[];
}

/** Resources of the suite still in the engine: of one run, or of any run when `id` is undefined. */
export async function listLeftovers(id?: string): Promise<Leftovers> {
  const filters = JSON.stringify({ label: [id ? `${SUITE_LABEL}=${id}` : SUITE_LABEL] });
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
  ]);
  return {
    containers: containers.map((c) => c.Id),
    networks: networks.map((n) => n.Id),
    volumes: (volumes.Volumes ?? []).map((v) => v.Name),
  };
}

/** Removes the suite's containers, then its networks and volumes (Ryuk is off: this is our reaper). */
export async function removeLeftovers(id?: string): Promise<Leftovers> {
  const found = await listLeftovers(id);
  await Promise.all(found.containers.map((c) => docker.getContainer(c).remove({ force: true, v: true }).catch(() => undefined)));
  await Promise.all(found.networks.map((n) => docker.getNetwork(n).remove().catch(() => undefined)));
  await Promise.all(found.volumes.map((v) => docker.getVolume(v).remove({ force: true }).catch(() => undefined)));
  return found;
}

/** An internal network: no route out, only the containers the test attaches (and the host's bridge end). */
export async function createIsolatedNetwork(purpose: string): Promise<{ name: string; id: string; remove: () => Promise<void> }> {
  const name = `mh-${purpose}-${runId()}-${Math.random().toString(36).slice(2, 8)}`;
  const network = await docker.createNetwork({ Name: name, Driver: 'bridge', Internal: true, Labels: suiteLabels(), CheckDuplicate: true });
  return {
    name,
    id: network.id,
    remove: async () => {
      await network.remove().catch(() => undefined);
    },
  };
}

/** The networks a container is attached to, by name. */
export async function attachedNetworks(containerId: string): Promise<string[]> {
  const info = await docker.getContainer(containerId).inspect();
  return Object.keys(info.NetworkSettings.Networks ?? {});
}
