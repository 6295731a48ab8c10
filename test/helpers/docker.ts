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
