import { processAlive, removeLeftovers } from './resources.js';

// Ryuk's job, without a registry: started detached by the global setup, it waits for the vitest process
// to end (normally, by SIGINT, by a crash or SIGKILL) and then removes everything labelled with its run.
const [runId, ownerPid] = process.argv.slice(2);
if (!runId || !ownerPid) {
  console.error('usage: reaper RUN_ID OWNER_PID');
  process.exit(2);
}

while (processAlive(ownerPid)) await new Promise((resolve) => setTimeout(resolve, 250));
// Containers may still be starting when the owner died: sweep until two passes find nothing.
let quietPasses = 0;
for (let pass = 0; pass < 40 && quietPasses < 2; pass++) {
  const found = await removeLeftovers({ run: runId });
  quietPasses = found.containers.length + found.networks.length + found.volumes.length === 0 ? quietPasses + 1 : 0;
  await new Promise((resolve) => setTimeout(resolve, 250));
}
