import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startSuite } from '../../src/verify.js';
import { serializeUsers } from '../../src/credentials.js';
import { listLeftovers } from '../helpers/docker.js';
import { pollUntil } from '../helpers/poll.js';

const [target] = inject('targets');
const scratch = mkdtempSync(join(tmpdir(), 'mh-cleanup-'));

/** Starts a nested suite run (the fixture) against the first target's image. */
function startFixtureRun(mode: 'hold' | 'fail') {
  if (!target) throw new Error('no target');
  const usersFile = join(scratch, 'users');
  writeFileSync(usersFile, serializeUsers(target.users), { mode: 0o600 });
  const readyFile = join(scratch, `ready-${mode}`);
  const run = startSuite({
    imageId: target.image,
    profile: target.profile,
    usersFile,
    config: 'test/fixtures/interrupt/vitest.config.ts',
    env: { FIXTURE_READY_FILE: readyFile, FIXTURE_MODE: mode },
  });
  const exited = run.done.then((verdict) => verdict.exitCode);
  const ready = () =>
    pollUntil(
      async () => {
        if (run.child.exitCode !== null) throw new Error(`the fixture run exited with ${run.child.exitCode}`);
        return existsSync(readyFile) ? readFileSync(readyFile, 'utf8') : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 200, what: 'the fixture run is ready', diagnose: async () => run.output() },
    );
  return { child: run.child, exited, ready, output: run.output };
}

/** The run's resources once its reaper had up to 30 s to work (it starts when the run's process ends). */
async function settledLeftovers(runId: string) {
  const gone = async () => {
    const left = await listLeftovers({ run: runId });
    return left.containers.length + left.networks.length + left.volumes.length === 0 ? left : undefined;
  };
  // Still there after the wait: return what is left, for the assertion to show.
  return pollUntil(gone, { timeoutMs: 30_000, intervalMs: 500, what: `run ${runId} left nothing behind` }).catch(() =>
    listLeftovers({ run: runId }),
  );
}

describe('cleanup (Ryuk is off: the suite is its own reaper)', () => {
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('a run interrupted with SIGINT leaves no container, network or volume behind', async () => {
    const run = startFixtureRun('hold');
    const runId = await run.ready();
    const during = await listLeftovers({ run: runId });
    // Control: while the run holds them, the query does see its container and network.
    expect(during.containers.length).toBeGreaterThan(0);
    expect(during.networks.length).toBeGreaterThan(0);
    run.child.kill('SIGINT');
    const code = await Promise.race([run.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 90_000))]);
    expect(code, run.output()).not.toBe('hung');
    expect(await settledLeftovers(runId)).toEqual({ containers: [], networks: [], volumes: [] });
  }, 300_000);

  it('a run whose test fails leaves nothing behind either', async () => {
    const run = startFixtureRun('fail');
    const runId = await run.ready();
    const code = await run.exited;
    expect(code, run.output()).not.toBe(0);
    expect(run.output()).toContain('failing on purpose');
    expect(await settledLeftovers(runId)).toEqual({ containers: [], networks: [], volumes: [] });
  }, 300_000);
});
