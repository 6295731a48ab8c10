import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/paths.js';
import { isolatedServers } from '../helpers/fixture.js';
import {
  execIn,
  runToExit,
  seccompProfileFile,
  startServer,
  type RunningServer,
  type ServerOptions,
  weakenedSeccompProfile,
} from '../helpers/server.js';
import { issueTlsSecret, startSurface, surfaceTarget } from '../helpers/surface.js';
import { SECCOMP_ALLOW_ALL } from '../helpers/weakenings.js';
import { targetRows, type TestTarget } from '../helpers/targets.js';

/**
 * The seccomp profile is active, shown by behaviour: a probe (test/seccomp/probe.c, built static here) makes
 * calls memcached never needs, with arguments the kernel itself refuses for a reason of its own, so a call
 * seccomp lets through answers that reason (EINVAL, ENOENT, ESRCH, ...) and only seccomp answers EPERM.
 */
const PROBE_CALLS = ['unshare', 'mount', 'ptrace', 'keyctl', 'bpf', 'socket-packet', 'personality', 'io_uring_setup'];
/** What Docker's default profile refuses of those too (unshare, mount, bpf without CAP_SYS_ADMIN; keyctl always). */
const DOCKER_DEFAULT_REFUSES = ['unshare', 'mount', 'keyctl', 'bpf'];
const PROBE_DIR = '/seccomp-probe';
/**
 * The engine's default capabilities, not the locked-down run: without NET_RAW the kernel itself would refuse
 * the AF_PACKET socket with EPERM, and the controls could no longer tell seccomp's refusal from it.
 */
const DEFAULT_CAPABILITIES = { lockedDown: false } as const;

/** The probe's calls that seccomp refused (answered EPERM); fails loudly when a call has no verdict. */
function refusedCalls(output: string): string[] {
  const verdicts = new Map(
    output
      .trim()
      .split('\n')
      .map((line) => line.trim().split(' ') as [string, string]),
  );
  const missing = PROBE_CALLS.filter((call) => !verdicts.has(call));
  if (missing.length > 0) throw new Error(`the probe gave no verdict for ${missing.join(', ')}: ${output.trim()}`);
  return PROBE_CALLS.filter((call) => verdicts.get(call) === 'EPERM');
}

let probeDir: string;

beforeAll(() => {
  probeDir = mkdtempSync(join(tmpdir(), 'mh-seccomp-probe-'));
  chmodSync(probeDir, 0o755);
  const source = projectPath('test', 'seccomp', 'probe.c');
  execFileSync('gcc', ['-static', '-O2', '-o', join(probeDir, 'probe'), source], { stdio: 'pipe' });
});

afterAll(() => {
  if (probeDir) rmSync(probeDir, { recursive: true, force: true });
});

describe.each(targetRows())('%s', (_profile, target) => {
  const bench = isolatedServers('seccomp');
  let server: RunningServer;
  const probeMount = (): string[] => [`${probeDir}:${PROBE_DIR}:ro`];
  /** The probe as a container's only process (as the image's user), under the options' seccomp setting. */
  const probeRun = async (image: string | TestTarget, options: ServerOptions = {}): Promise<string> => {
    const entrypoint = [`${PROBE_DIR}/probe`];
    const run = await runToExit(image, bench.network.name, {
      ...DEFAULT_CAPABILITIES,
      ...options,
      entrypoint,
      binds: probeMount(),
    });
    expect(run.exitCode, run.output).toBe(0);
    return run.output;
  };

  beforeAll(async () => {
    // A server exactly as every other file of the suite starts one: containerSpec adds the profile.
    server = await bench.start(target, { ...DEFAULT_CAPABILITIES, binds: probeMount() });
  });

  /** The probe run inside a serving server, as the suite's own commands run there. */
  const probeIn = async (serving: RunningServer): Promise<string[]> => {
    const { output, exitCode } = await execIn(serving.container, [`${PROBE_DIR}/probe`]);
    expect(exitCode, output).toBe(0);
    return refusedCalls(output);
  };

  it('a serving server runs under the profile: every probe call is refused with EPERM', async () => {
    expect(await probeIn(server)).toEqual(PROBE_CALLS);
  });

  it('a serving TLS server runs under its -tls profile: every probe call is refused with EPERM', async () => {
    expect(seccompProfileFile(surfaceTarget(target, 'tls'))).toMatch(/-tls\.json$/);
    const secret = bench.keep(issueTlsSecret());
    const options = { ...DEFAULT_CAPABILITIES, secret, binds: probeMount() };
    const tls = bench.keep(await startSurface(target, 'tls', bench.network.name, options));
    expect(await probeIn(tls)).toEqual(PROBE_CALLS);
  });

  it('control: unconfined, every call of the same probe gets past seccomp (the kernel answers)', async () => {
    expect(refusedCalls(await probeRun(target, { securityOpt: ['seccomp=unconfined'] }))).toEqual([]);
  });

  it("control: Docker's default lets ptrace, an AF_PACKET socket, personality and io_uring through", async () => {
    // The image id alone: no target, so no profile of ours; the engine's default applies.
    expect(refusedCalls(await probeRun(target.image))).toEqual(DOCKER_DEFAULT_REFUSES);
  });

  it(`mutant: ${SECCOMP_ALLOW_ALL.name}, a server under its profile allowing all, fails that check`, async () => {
    // The mutation check's run-time variant (test/helpers/weakenings.ts), here as this file's own control.
    const securityOpt = [`seccomp=${weakenedSeccompProfile(target, SECCOMP_ALLOW_ALL)}`];
    const options = { ...DEFAULT_CAPABILITIES, binds: probeMount(), securityOpt };
    const weakened = await startServer(target, bench.network.name, options);
    try {
      expect(await probeIn(weakened)).toEqual([]);
    } finally {
      await weakened.stop();
    }
  });
});
