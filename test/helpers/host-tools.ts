import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectPath } from '../../src/paths.js';

const run = promisify(execFile);

function onPath(binary: string): boolean {
  return binary.startsWith('/')
    ? existsSync(binary)
    : (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, binary)));
}

/**
 * Makes sure a host tool a test drives is installed: as root, scripts/host-prereqs.sh installs it from
 * the host's own apt sources; otherwise the test fails with the command to run.
 */
export async function ensureHostTool(binary: string, aptPackage: string): Promise<void> {
  if (onPath(binary)) return;
  if (process.getuid?.() !== 0)
    throw new Error(`${binary} is missing: apt-get install ${aptPackage} (or run scripts/host-prereqs.sh as root)`);
  await run('bash', [projectPath('scripts/host-prereqs.sh')], { timeout: 600_000 });
  if (!onPath(binary)) throw new Error(`${binary} is still missing after scripts/host-prereqs.sh`);
}
