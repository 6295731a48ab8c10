import Docker from 'dockerode';

// Labels and reaping of the suite's resources. No vitest import: the reaper process uses this too.

/** Every container, network and volume the suite creates carries this label, valued with the run id. */
export const SUITE_LABEL = 'memcached-hardened.test-run';
/** ...and this one, valued with the pid of the vitest process that owns the run. */
export const OWNER_LABEL = 'memcached-hardened.test-owner-pid';

export const docker = new Docker();

export interface Leftovers {
  readonly containers: string[];
  readonly networks: string[];
  readonly volumes: string[];
}

/** True while the process with this pid (a decimal string) exists. */
export function processAlive(pid: string | undefined): boolean {
  if (!pid || !/^\d+$/.test(pid)) return false;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resources of the suite still in the engine: of one run, or (`orphans`) of every run whose vitest
 * process is gone, so that concurrent runs never reap each other.
 */
export async function listLeftovers(scope: { run: string } | 'orphans'): Promise<Leftovers> {
  const filters = JSON.stringify({ label: [scope === 'orphans' ? SUITE_LABEL : `${SUITE_LABEL}=${scope.run}`] });
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
  ]);
  const keep = (labels: Record<string, string> | undefined) =>
    scope !== 'orphans' || !processAlive(labels?.[OWNER_LABEL]);
  return {
    containers: containers.filter((c) => keep(c.Labels)).map((c) => c.Id),
    networks: networks.filter((n) => keep(n.Labels)).map((n) => n.Id),
    volumes: (volumes.Volumes ?? []).filter((v) => keep(v.Labels ?? undefined)).map((v) => v.Name),
  };
}

/** Removes the suite's containers, then its networks and volumes (Ryuk is off: this is our reaper). */
export async function removeLeftovers(scope: { run: string } | 'orphans'): Promise<Leftovers> {
  const found = await listLeftovers(scope);
  await Promise.all(
    found.containers.map((c) =>
      docker
        .getContainer(c)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
  await Promise.all(
    found.networks.map((n) =>
      docker
        .getNetwork(n)
        .remove()
        .catch(() => undefined),
    ),
  );
  await Promise.all(
    found.volumes.map((v) =>
      docker
        .getVolume(v)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  return found;
}
