import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '../helpers/poll.js';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface Registry {
  readonly address: string;
  readonly process: ChildProcess;
}

/** Debian's docker-registry serving on loopback, its data under `scratch`; `readOnly` makes it refuse every push. */
export async function startRegistry(scratch: string, name: string, readOnly: boolean): Promise<Registry> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const config = join(scratch, `${name}.yml`);
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(scratch, `${name}-data`)}`,
      '  maintenance:',
      '    readonly:',
      `      enabled: ${readOnly}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = spawn(REGISTRY_BINARY, ['serve', config], { stdio: 'ignore' });
  const address = `127.0.0.1:${port}`;
  await pollUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`);
      return (await fetch(`http://${address}/v2/`).then(
        (r) => r.ok,
        () => false,
      ))
        ? true
        : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200, what: `docker-registry answers on ${address}` },
  );
  return { address, process: child };
}

/** The registry's tags for a repository ([] when it has none). */
export async function tags(registry: Registry, repository: string): Promise<string[]> {
  const response = await fetch(`http://${registry.address}/v2/${repository}/tags/list`);
  if (response.status === 404) return [];
  return ((await response.json()) as { tags: string[] | null }).tags ?? [];
}
