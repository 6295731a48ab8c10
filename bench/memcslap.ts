import { pack } from 'tar-fs';
import type { Readable } from 'node:stream';
import { buildImage, buildLogger } from '../src/build.js';
import { parseBuildArgs } from '../src/config.js';
import type { Engine } from '../src/engine/index.js';
import { projectPath } from '../src/paths.js';
import { loadProfile } from '../src/profiles.js';

/** Debian 12's libmemcached-tools has memcslap 1.1, which speaks SASL; the server images' own may not. */
const GENERATOR_PROFILE = 'debian-12';
export const GENERATOR_TAG = `memcached-hardened-bench-generator:${GENERATOR_PROFILE}`;

export type SlapTest = 'get' | 'set';

export interface SlapResult {
  readonly opsPerSec: number;
  /** Cores the generator used over its whole run (keys generated, loaded, then the test). */
  readonly generatorCpuShare: number;
}

/**
 * Parses memcslap's report: the timed test's key count and seconds, and the run's total. Every key of
 * the test must count: memcslap counts only the gets that hit, and a miss answers faster than a hit, so a
 * server whose memory cannot hold the working set would be measured on its hit rate.
 */
export function parseMemcslap(
  output: string,
  test: SlapTest,
  expectedKeys: number,
): { keys: number; seconds: number; totalSeconds: number } {
  const timed = new RegExp(`Time to ${test}\\s+(\\d+) keys by\\s+\\d+ threads:\\s+([\\d.]+) seconds`).exec(output);
  const total = /Time total:\s+([\d.]+) seconds/.exec(output);
  if (!timed || !total)
    throw new Error(`memcslap printed no ${test} timing: ${output.trim().split('\n').slice(-3).join(' | ')}`);
  const keys = Number(timed[1]);
  // memcslap exits 0 and counts nothing when the server refuses its authentication.
  if (keys === 0) throw new Error(`memcslap completed no ${test} (authentication refused?)`);
  if (keys !== expectedKeys)
    throw new Error(
      `memcslap's ${test} counted ${keys} of ${expectedKeys} keys: the server did not hold the working set`,
    );
  return { keys, seconds: Number(timed[2]), totalSeconds: Number(total[1]) };
}

/** CPU seconds (user + system) of the shell's children, from the second line of the `times` builtin. */
export function parseChildCpuSeconds(output: string): number {
  const lines = [...output.matchAll(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/gm)];
  const children = lines[1];
  if (!children) throw new Error('no `times` output for the generator');
  return Number(children[1]) * 60 + Number(children[2]) + Number(children[3]) * 60 + Number(children[4]);
}

/** Builds the generator image: the debian-12 tools image plus the password-from-stdin shim. */
export async function buildGenerator(engine: Engine, progress: (line: string) => void): Promise<string> {
  const profile = loadProfile(GENERATOR_PROFILE);
  const tools = await buildImage(
    engine,
    parseBuildArgs(['--profile', GENERATOR_PROFILE, '--target', 'client', '--tag', `${GENERATOR_TAG}-tools`])!,
    profile,
    undefined,
    progress,
  );
  const log = buildLogger(progress);
  await engine.build(
    pack(projectPath('bench/generator')) as unknown as Readable,
    {
      dockerfile: 'Dockerfile',
      target: 'generator',
      labels: {},
      buildArgs: { BASE_IMAGE: profile.base.image, TOOLS_IMAGE: tools.imageId },
      noCache: false,
    },
    log.onMessage,
  );
  const imageId = log.imageId();
  if (!imageId) throw new Error(`the generator build reported no image id: ${log.tail().join(' | ')}`);
  await engine.tag(imageId, GENERATOR_TAG);
  return imageId;
}

/**
 * One memcslap run against `ip` from a container on `network`: `threads` connections, `perThread`
 * operations each. The password reaches it on stdin, never in a command line.
 */
export async function runMemcslap(
  engine: Engine,
  options: {
    generator: string;
    network: string;
    ip: string;
    test: SlapTest;
    threads: number;
    perThread: number;
    user?: string;
    password?: string;
    labels: Record<string, string>;
    /** The CPUs the generator may use (cpuset); any, when absent. */
    cpus?: string;
  },
): Promise<SlapResult> {
  const auth = options.user !== undefined ? ` --username=${options.user} --password=-` : '';
  const result = await engine.run({
    image: options.generator,
    command: [
      'sh',
      '-c',
      `memcslap --binary --servers=${options.ip}${auth} --concurrency=${options.threads} ` +
        `--execute-number=${options.perThread} --test=${options.test}; times`,
    ],
    stdin: options.password !== undefined ? `${options.password}\n` : '',
    labels: options.labels,
    network: options.network,
    ...(options.cpus ? { cpus: options.cpus } : {}),
  });
  const output = result.stdout.toString('utf8');
  if (result.exitCode !== 0)
    throw new Error(`memcslap exited ${result.exitCode}: ${result.stderr.trim().split('\n').pop() ?? ''}`);
  const { keys, seconds, totalSeconds } = parseMemcslap(output, options.test, options.threads * options.perThread);
  return { opsPerSec: keys / seconds, generatorCpuShare: parseChildCpuSeconds(output) / totalSeconds };
}
