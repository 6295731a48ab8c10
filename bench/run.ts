import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { BinaryClient, Status, tryAuthenticatedRoundTrip } from '../lib/binary-client.js';
import { renderContext } from '../src/context.js';
import { buildImage } from '../src/build.js';
import { parseBuildArgs } from '../src/config.js';
import { connectEngine, type Engine } from '../src/engine/index.js';
import { projectPath } from '../src/paths.js';
import { bootstrapBase } from '../src/bootstrap.js';
import { DEFAULT_PROFILE, loadProfile, type Profile } from '../src/profiles.js';
import { profileValues, type TemplateValues } from '../src/render.js';
import { serializeUsers, type SaslUser } from '../src/credentials.js';
import { BAKED_SASLDB_PATH, BUILD_REALM, MEMCACHED_GUARD } from '../src/render.js';
import { runSuite } from '../src/verify.js';
import { generatePassword } from '../src/sasldb.js';
import { handshakeTimes, runLoad, type LoadResult } from './load.js';
import { buildGenerator, runMemcslap, type SlapResult, type SlapTest } from './memcslap.js';
import {
  latestResults,
  renderRunTimeTable,
  renderTable,
  renderVariants,
  RESULTS_SCHEMA,
  withBenchTable,
  type BenchResults,
  type RunTimeFigures,
  type SeccompThroughput,
  type Throughput,
  type VariantRow,
} from './report.js';
import { pollUntil } from '../test/helpers/poll.js';
import { newLayers, quantile, round, roundOrder, roundRatios, withinNoise } from './stats.js';

const USAGE = `Usage: npm run bench -- [--profile NAME] [--starts N] [--rounds N] [--no-suite] [--no-base] [--json]
       npm run bench -- --readme [--profile NAME]
       npm run bench -- --run-time [--profile NAME] [--starts N] [--rounds N] [--json]
       npm run bench -- --reconcile [--profile NAME] [--rounds N] [--json]

Measures what a user does, each figure next to a reference from the same run: the compiled CLI's --help,
a first build and a rebuild with nothing changed (the CLI as a process vs the docker CLI on the same
rendered context), a credentials-only rebuild and the layers it rebuilt, image size, start-to-ready and
throughput (hardened vs plain memcached from the same image; Debian's memcslap and the Node generator,
each with its CPU share), the SASL handshake, the suite's run time, and two bootstraps of the base (as
root: debootstrap; --no-base leaves them out) that must give one image id. Results are appended to
bench/results/ and the table in docs/figures.md is regenerated from them; --readme only regenerates the table.
The hardened servers run under the image's seccomp profile, compared with the same image under Docker's
default profile; --run-time measures only the figures of the running servers (start-to-ready, throughput,
the handshake, the seccomp profile's cost) of an image built with cached layers, and prints them: it writes
nothing. --reconcile takes a throughput gap apart: plain memcached with one part of the hardened
start added (seccomp profile, guard, -v, maxconns_fast, SASL) and the image as shipped with one thing
changed (Docker's default profile, -v off, -m 512, its health check kept), under memcslap set 4 x 25000 at
-m 64, each against plain memcached round by round, in throughput and in the server's CPU time per
operation, the servers on the last CPU and the generator on the others; it prints a table and writes nothing.`;

const BENCH_LABEL = 'memcached-hardened.bench';
const REBUILD_RUNS = 7;
/** memcached's memory in the throughput runs: memcslap's working set (50000 keys per thread) fits in it. */
const SERVER_MEMORY_MB = 512;
const RESULTS_DIR = projectPath('bench/results');
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const quiet = () => undefined;
const median = (samples: readonly number[]) => quantile(samples, 0.5);

interface Exited {
  readonly code: number | null;
  readonly stdout: string;
  readonly seconds: number;
}

/** Runs a process to its end, feeding `stdin`; times it from spawn to exit. */
function run(
  command: string,
  args: readonly string[],
  options: { stdin?: string | Readable; env?: NodeJS.ProcessEnv } = {},
): Promise<Exited> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(command, args, {
      cwd: projectPath(),
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let tail = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (tail = (tail + d.toString('utf8')).slice(-2000)));
    if (typeof options.stdin === 'string') child.stdin.end(options.stdin);
    else if (options.stdin) options.stdin.pipe(child.stdin);
    else child.stdin.end();
    child.on('close', (code) => {
      if (code !== 0) log(`${command} ${args.slice(0, 3).join(' ')} exited ${code}: ${tail.trim().split('\n').pop()}`);
      resolve({ code, stdout, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

async function must(exited: Promise<Exited>, what: string): Promise<Exited> {
  const result = await exited;
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code})`);
  return result;
}

/** `bin/memcached-hardened build`, as a user runs it; baked users reach it on stdin, never in a file. */
async function cliBuild(
  profile: string,
  tag: string,
  users: readonly SaslUser[] | undefined,
  sbomDir: string,
  extra: string[] = [],
): Promise<{ seconds: number; imageId: string }> {
  const args = [
    'build',
    '--profile',
    profile,
    '--tag',
    tag,
    ...(users ? ['--users-file', '-'] : []),
    '--sbom-dir',
    sbomDir,
    '--json',
    ...extra,
  ];
  const result = await must(
    run(projectPath('bin/memcached-hardened'), args, users ? { stdin: serializeUsers(users) } : {}),
    'the CLI build',
  );
  const imageId = (JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as { imageId?: string }).imageId;
  if (!imageId) throw new Error('the CLI build printed no image id');
  return { seconds: result.seconds, imageId };
}

/** `docker build` of the server stage from the same rendered context, streamed (the sasldb never touches the disk). */
async function dockerCliBuild(
  values: TemplateValues,
  sasldb: Buffer | undefined,
  tag: string,
  noCache: boolean,
): Promise<number> {
  const context = await renderContext(values, sasldb);
  try {
    const args = ['build', '-q', '--target', 'server', '-t', tag, ...(noCache ? ['--no-cache'] : []), '-'];
    return (await must(run('docker', args, { stdin: context.pack() }), 'the docker CLI build')).seconds;
  } finally {
    await context.dispose();
  }
}

/** The sasldb a baked image holds, for the docker CLI's copy of the same context. */
async function sasldbOf(engine: Engine, imageId: string): Promise<Buffer> {
  const sasldb = await engine.readFile(imageId, BAKED_SASLDB_PATH);
  if (!sasldb) throw new Error(`${imageId} has no sasldb`);
  return sasldb;
}

async function layersOf(docker: Docker, image: string): Promise<string[]> {
  return (await docker.getImage(image).inspect()).RootFS.Layers ?? [];
}

/**
 * Every layer the engine holds, intermediate images included: what a build adds to it is what it built.
 * (Comparing with one earlier image instead would count layers the cache took from another chain.)
 */
async function layersInEngine(docker: Docker): Promise<Set<string>> {
  const images = await docker.listImages({ all: true });
  return new Set((await Promise.all(images.map((image) => layersOf(docker, image.Id).catch(() => [])))).flat());
}

type Sides<T> = { readonly hardened: T; readonly plain: T };

/** The servers the bench compares, in the order the first round starts them. */
type Side = 'hardened' | 'seccompDefault' | 'plain';
const SIDES: readonly Side[] = ['hardened', 'seccompDefault', 'plain'];

function throughput(rounds: ReadonlyArray<Sides<{ opsPerSec: number; generatorCpuShare: number }>>): Throughput {
  const ratios = roundRatios(rounds.map((r) => ({ measured: r.hardened.opsPerSec, reference: r.plain.opsPerSec })));
  return {
    hardenedOpsPerSec: Math.round(median(rounds.map((r) => r.hardened.opsPerSec))),
    plainOpsPerSec: Math.round(median(rounds.map((r) => r.plain.opsPerSec))),
    ratio: round(ratios.ratio, 3),
    ratioLow: round(ratios.low, 3),
    ratioHigh: round(ratios.high, 3),
    generatorCpuShare: round(
      Math.max(...rounds.flatMap((r) => [r.hardened.generatorCpuShare, r.plain.generatorCpuShare])),
      2,
    ),
  };
}

/** The hardened image under its profile against itself under Docker's default profile. */
function seccompThroughput(rounds: ReadonlyArray<Record<Side, SlapResult>>): SeccompThroughput {
  const ratios = roundRatios(
    rounds.map((r) => ({ measured: r.hardened.opsPerSec, reference: r.seccompDefault.opsPerSec })),
  );
  return {
    profileOpsPerSec: Math.round(median(rounds.map((r) => r.hardened.opsPerSec))),
    defaultOpsPerSec: Math.round(median(rounds.map((r) => r.seccompDefault.opsPerSec))),
    ratio: round(ratios.ratio, 3),
    ratioLow: round(ratios.low, 3),
    ratioHigh: round(ratios.high, 3),
  };
}

/** One way of starting the benchmarked image: what the container gets on top of it. */
interface ServerVariant {
  readonly name: string;
  /** Clients authenticate (SASL on). */
  readonly authenticated: boolean;
  readonly entrypoint?: string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly hostname?: string;
  /** The seccomp profile's JSON; none: Docker's default profile. */
  readonly seccomp?: string;
  /** Keeps the image's health check (every 10 s, as shipped); the bench's servers run without it otherwise. */
  readonly healthCheck?: boolean;
}

const seccompProfilePath = (profile: string) => projectPath('seccomp', `${profile}.json`);

/** The image as shipped (its entrypoint, SASL, guard, -v, maxconns_fast), with `memoryMb` of memory. */
function hardenedVariant(
  name: string,
  memoryMb: number,
  seccomp: string | undefined,
  env: Record<string, string> = {},
): ServerVariant {
  return { name, authenticated: true, env: { MEMCACHED_MEMORY_MB: String(memoryMb), ...env }, seccomp };
}

/** memcached from the same image started directly, without SASL, guard or logging: plus `extra` options. */
function plainVariant(
  name: string,
  memoryMb: number,
  extra: string[] = [],
  more: Partial<ServerVariant> = {},
): ServerVariant {
  const entrypoint = ['memcached', '-U', '0', '-p', '11211', '-l', '0.0.0.0', '-m', String(memoryMb), ...extra];
  return { name, authenticated: false, entrypoint, ...more };
}

/** The user memcslap authenticates as, where the variant has SASL on. */
function credentialsFor(variant: ServerVariant, user: SaslUser): { user?: string; password?: string } {
  return variant.authenticated ? { user: user.name, password: user.password } : {};
}

interface StartedVariant {
  readonly ms: number;
  readonly ip: string;
  readonly container: Docker.Container;
}

/** Starts `variant` of `image` and times it from start to its first (authenticated) set and get. */
async function startVariant(
  docker: Docker,
  image: string,
  variant: ServerVariant,
  at: { network: string; labels: Record<string, string>; user: SaslUser; cpus?: string },
): Promise<StartedVariant> {
  const seccomp = variant.seccomp === undefined ? [] : [`seccomp=${variant.seccomp}`];
  const container = await docker.createContainer({
    Image: image,
    Labels: at.labels,
    Entrypoint: variant.entrypoint,
    Env: Object.entries(variant.env ?? {}).map(([key, value]) => `${key}=${value}`),
    Hostname: variant.hostname,
    // No health check: its command, every 10 s, would land in one measurement and not in another.
    ...(variant.healthCheck ? {} : { Healthcheck: { Test: ['NONE'] } }),
    HostConfig: { NetworkMode: at.network, SecurityOpt: seccomp, ...(at.cpus ? { CpusetCpus: at.cpus } : {}) },
  });
  const t0 = performance.now();
  await container.start();
  const networks = (await container.inspect()).NetworkSettings.Networks;
  const ip = Object.values(networks)[0]!.IPAddress;
  const name = variant.authenticated ? at.user.name : undefined;
  const served = async () => (await tryAuthenticatedRoundTrip(ip, name, at.user.password)).roundTrip || undefined;
  // Polled every 5 ms: the figure is start-to-ready, so the poll must not add to it.
  await pollUntil(served, { timeoutMs: 20_000, intervalMs: 5, what: `${variant.name} serves` }).catch(async () => {
    await container.remove({ force: true }).catch(() => undefined);
    throw new Error(`${variant.name}: the container never became ready`);
  });
  return { ms: performance.now() - t0, ip, container };
}

/** Both sides of one round, hardened first in even rounds and plain first in odd ones, so order favours neither. */
async function bothSides<T>(round: number, measure: (side: keyof Sides<T>) => Promise<T>): Promise<Sides<T>> {
  if (round % 2 === 0) {
    const hardened = await measure('hardened');
    return { hardened, plain: await measure('plain') };
  }
  const plain = await measure('plain');
  return { hardened: await measure('hardened'), plain };
}

function writeReadme(results: BenchResults): string {
  const table = renderTable(results);
  const path = projectPath('docs', 'figures.md');
  writeFileSync(path, withBenchTable(readFileSync(path, 'utf8'), table));
  return table;
}

/**
 * Bootstraps the profile's base twice under bench tags, each as a build that lacks the base would: the
 * reproducibility claim is that both give one image id (and the engine's own base, from the same archive
 * state, that id too).
 */
async function bootstrapTwice(
  engine: Engine,
  profile: Profile,
  benchId: string,
): Promise<NonNullable<BenchResults['base']>> {
  const runs: Array<{ seconds: number; id: string }> = [];
  const tags = [1, 2].map((n) => `memcached-hardened-bench/base-${benchId}-${n}:${profile.name}`);
  try {
    for (const tag of tags) {
      const started = performance.now();
      await bootstrapBase(
        engine,
        profile,
        (line) => (line.startsWith('[base] ') ? log(line.slice(7)) : undefined),
        tag,
      );
      const image = await engine.inspectImage(tag);
      if (!image) throw new Error(`the bootstrap left no ${tag}`);
      runs.push({ seconds: round((performance.now() - started) / 1000, 1), id: image.id });
    }
  } finally {
    for (const tag of tags) await engine.removeImage(tag).catch(() => undefined);
  }
  const [first, second] = runs as [(typeof runs)[0], (typeof runs)[0]];
  return {
    firstSeconds: first.seconds,
    secondSeconds: second.seconds,
    firstId: first.id,
    secondId: second.id,
    enginesBaseId: (await engine.inspectImage(profile.base.image))?.id,
  };
}

/** An image to measure, with what its servers need: the engine, a network, the bench's labels, its user. */
interface BenchImage {
  readonly docker: Docker;
  readonly engine: Engine;
  readonly image: string;
  readonly profile: string;
  readonly network: string;
  readonly labels: Record<string, string>;
  readonly user: SaslUser;
}

/**
 * Starts the image's servers (hardened under its seccomp profile, the same under Docker's default profile,
 * plain memcached) `starts` times each, then loads them for `rounds` rounds; removes them before it returns.
 */
async function measureRunTime(at: BenchImage & { starts: number; rounds: number }): Promise<RunTimeFigures> {
  const { docker, engine, network, labels, user } = at;
  // --- start-to-ready ------------------------------------------------------------------------------------
  // The hardened image as shipped runs under its seccomp profile; the same image under Docker's default
  // profile is the reference for what the profile costs, plain memcached the reference for the rest.
  const seccompProfile = readFileSync(seccompProfilePath(at.profile), 'utf8');
  const sides: Record<Side, ServerVariant> = {
    hardened: hardenedVariant('hardened', SERVER_MEMORY_MB, seccompProfile),
    seccompDefault: hardenedVariant("hardened, Docker's default seccomp", SERVER_MEMORY_MB, undefined),
    plain: plainVariant('plain', SERVER_MEMORY_MB),
  };
  const start = (side: Side) => startVariant(docker, at.image, sides[side], { network, labels, user });
  log(`start-to-ready, ${at.starts} starts each (hardened, hardened under Docker's default seccomp, plain, rotating)`);
  const ready: Record<Side, number[]> = { hardened: [], seccompDefault: [], plain: [] };
  for (let i = 0; i < at.starts; i++) {
    for (const side of roundOrder(SIDES, i)) {
      const started = await start(side);
      ready[side].push(started.ms);
      await started.container.remove({ force: true });
    }
  }

  // --- throughput and handshake ---------------------------------------------------------------------------
  log('building the native generator (debian-12 tools image with memcslap)');
  const generator = await buildGenerator(engine, quiet);
  const servers: Record<Side, StartedVariant> = {
    hardened: await start('hardened'),
    seccompDefault: await start('seccompDefault'),
    plain: await start('plain'),
  };
  const { hardened, plain } = servers;
  // Runs of a second or more, five rounds: shorter ones moved by ±15% between runs on this 2-core machine.
  const slapLoad = { threads: 8, perThread: 50_000 };
  const slap = (test: SlapTest, side: Side): Promise<SlapResult> =>
    runMemcslap(engine, {
      generator,
      network,
      ip: servers[side].ip,
      test,
      ...slapLoad,
      labels,
      ...credentialsFor(sides[side], user),
    });
  const nodeLoad = { connections: 8, depth: 16, seconds: 4 };
  const slapRounds: Record<SlapTest, Array<Record<Side, SlapResult>>> = { get: [], set: [] };
  const nodeRounds: Array<Sides<LoadResult>> = [];
  for (let r = 0; r < at.rounds; r++) {
    log(
      `throughput round ${r + 1}/${at.rounds}: memcslap get and set on the three servers (rotating), ` +
        'then the Node generator (hardened and plain, alternating)',
    );
    for (const test of ['get', 'set'] as const) {
      const results: Partial<Record<Side, SlapResult>> = {};
      for (const side of roundOrder(SIDES, r)) results[side] = await slap(test, side);
      slapRounds[test].push(results as Record<Side, SlapResult>);
    }
    nodeRounds.push(
      await bothSides(r, (side) =>
        side === 'hardened'
          ? runLoad(hardened.ip, { ...nodeLoad, user: user.name, password: user.password })
          : runLoad(plain.ip, nodeLoad),
      ),
    );
  }
  const handshakes = await handshakeTimes(hardened.ip, user.name, user.password, 200);
  const unauthenticated = await BinaryClient.connect(hardened.ip);
  const refused = (await unauthenticated.get('bench-0'))?.status === Status.authError;
  unauthenticated.close();
  if (!refused) throw new Error('the benchmarked server served an unauthenticated get');
  await Promise.all(Object.values(servers).map((server) => server.container.remove({ force: true })));

  const nodeThroughput = throughput(nodeRounds);
  const batch = (side: 'hardened' | 'plain', q: 'batchP50Ms' | 'batchP99Ms') =>
    round(median(nodeRounds.map((r) => r[side][q])), 2);
  return {
    ready: {
      p50Ms: round(quantile(ready.hardened, 0.5), 1),
      p95Ms: round(quantile(ready.hardened, 0.95), 1),
      plainP50Ms: round(quantile(ready.plain, 0.5), 1),
      plainP95Ms: round(quantile(ready.plain, 0.95), 1),
      starts: at.starts,
    },
    memcslap: {
      get: throughput(slapRounds.get),
      set: throughput(slapRounds.set),
      load:
        `--binary, ${slapLoad.threads} threads x ${slapLoad.perThread} operations, one connection each, ` +
        `${SERVER_MEMORY_MB} MB of memory on every server (every get hits), ${at.rounds} rounds with the three ` +
        "servers' order rotating, medians",
    },
    seccomp: {
      profile: `seccomp/${at.profile}.json`,
      ready: {
        p50Ms: round(quantile(ready.hardened, 0.5), 1),
        p95Ms: round(quantile(ready.hardened, 0.95), 1),
        defaultP50Ms: round(quantile(ready.seccompDefault, 0.5), 1),
        defaultP95Ms: round(quantile(ready.seccompDefault, 0.95), 1),
        withinNoise: withinNoise(ready.hardened, ready.seccompDefault),
      },
      get: seccompThroughput(slapRounds.get),
      set: seccompThroughput(slapRounds.set),
    },
    nodeLoad: {
      ...nodeThroughput,
      hardenedBatchP50Ms: batch('hardened', 'batchP50Ms'),
      hardenedBatchP99Ms: batch('hardened', 'batchP99Ms'),
      plainBatchP50Ms: batch('plain', 'batchP50Ms'),
      plainBatchP99Ms: batch('plain', 'batchP99Ms'),
      errors: nodeRounds.reduce((sum, r) => sum + r.hardened.errors + r.plain.errors, 0),
      load:
        `${nodeLoad.connections} connections x ${nodeLoad.depth} pipelined ops, 90% get / 10% set, ` +
        `100-byte values, ${nodeLoad.seconds} s x ${at.rounds} rounds with each side first in every other, ` +
        `medians (latency per batch of ${nodeLoad.depth})`,
    },
    handshake: { p50Ms: round(quantile(handshakes, 0.5), 2), p99Ms: round(quantile(handshakes, 0.99), 2) },
  };
}

async function bench(
  profileName: string,
  options: { starts: number; rounds: number; suite: boolean; base: boolean },
): Promise<BenchResults> {
  const profile = loadProfile(profileName);
  const engine = connectEngine();
  await engine.ping();
  const docker = new Docker();
  const benchId = Date.now().toString(36);
  const labels = { [BENCH_LABEL]: benchId };
  const scratch = mkdtempSync(join(tmpdir(), 'mh-bench-'));
  const sbomDir = join(scratch, 'sbom');
  const tag = `memcached-hardened-bench:${profileName}`;
  const cliTag = `${tag}-cli`;
  const runtimeTag = `${tag}-runtime`;
  const users: SaslUser[] = [{ name: 'bench', password: generatePassword() }];
  const network = await docker.createNetwork({ Name: `mh-bench-${benchId}`, Internal: true, Labels: labels });
  try {
    log('compiling the CLI, as npm run build does');
    await must(run('npm', ['run', '-s', 'compile']), 'npm run compile');

    log('--help of the compiled CLI vs a bare node start, 9 runs each');
    const helpRuns: number[] = [];
    const nodeRuns: number[] = [];
    for (let i = 0; i < 9; i++) {
      helpRuns.push((await must(run(projectPath('bin/memcached-hardened'), ['--help']), '--help')).seconds);
      nodeRuns.push((await must(run(process.execPath, ['-e', '']), 'node')).seconds);
    }

    log('first build without cache: the CLI, then the docker CLI on the same rendered context');
    const cold = await cliBuild(profileName, tag, users, sbomDir, ['--no-cache']);
    const bakedValues = profileValues(profile);
    const bakedSasldb = await sasldbOf(engine, cold.imageId);
    const cliCold = await dockerCliBuild(bakedValues, bakedSasldb, cliTag, true);

    // Each kind of rebuild, alternating with the docker CLI's cached build of the same rendered context.
    const rebuilds = async (
      cli: () => Promise<{ seconds: number; imageId: string }>,
      docker: () => Promise<number>,
    ) => {
      await cli();
      await docker();
      const builds: Array<{ seconds: number; imageId: string }> = [];
      const references: number[] = [];
      for (let i = 0; i < REBUILD_RUNS; i++) {
        builds.push(await cli());
        references.push(await docker());
      }
      return { builds, references, sameImage: builds.every((b) => b.imageId === builds[0]!.imageId) };
    };
    log(
      'rebuilds with nothing changed (baked users): one to settle, ' +
        `then ${REBUILD_RUNS} alternating CLI and docker CLI runs`,
    );
    const beforeNoChange = await layersInEngine(docker);
    const baked = await rebuilds(
      () => cliBuild(profileName, tag, users, sbomDir),
      () => dockerCliBuild(bakedValues, bakedSasldb, cliTag, false),
    );
    const noChange = baked.builds;
    const noChangeLayers = Math.max(
      ...(await Promise.all(
        noChange.map(async (b) => newLayers(beforeNoChange, await layersOf(docker, b.imageId)).length),
      )),
    );

    log(`rebuilds with nothing changed (runtime credentials): ${REBUILD_RUNS} alternating runs`);
    const runtimeValues = profileValues(profile, { credentials: 'runtime' });
    const runtime = await rebuilds(
      () => cliBuild(profileName, runtimeTag, undefined, sbomDir, ['--runtime-credentials']),
      () => dockerCliBuild(runtimeValues, undefined, cliTag, false),
    );

    log('credentials-only rebuild: one password changed');
    const rotated: SaslUser[] = [{ name: 'bench', password: generatePassword() }];
    const beforeRotation = await layersInEngine(docker);
    const credential = await cliBuild(profileName, tag, rotated, sbomDir);
    const rotatedLayers = await layersOf(docker, credential.imageId);
    const built = newLayers(beforeRotation, rotatedLayers);
    const credentialLayers = built.length;
    const onlyLast = credentialLayers === 1 && built[0] === rotatedLayers.at(-1);
    const image = await docker.getImage(credential.imageId).inspect();
    const base = await docker.getImage(profile.base.image).inspect();
    const user = rotated[0]!;

    const { starts, rounds } = options;
    const at = { docker, engine, image: credential.imageId, profile: profileName, network: network.id, labels, user };
    const runTime = await measureRunTime({ ...at, starts, rounds });

    // --- the suite ------------------------------------------------------------------------------------------
    let suite: BenchResults['suite'];
    if (options.suite) {
      log('the integration suite against the built image');
      // The suite reads the users from a file: a 0600 one in the bench's scratch folder, removed below.
      const usersFile = join(scratch, 'users');
      writeFileSync(usersFile, serializeUsers(rotated), { mode: 0o600 });
      const suiteStarted = performance.now();
      const verdict = await runSuite({ imageId: credential.imageId, profile: profileName, usersFile });
      suite = { seconds: round((performance.now() - suiteStarted) / 1000, 1), passed: verdict.passed };
    }

    // --- the base, bootstrapped twice --------------------------------------------------------------------------
    let bootstraps: BenchResults['base'];
    if (options.base) {
      log('bootstrapping the base twice (debootstrap, then the update suites)');
      bootstraps = await bootstrapTwice(engine, profile, benchId);
    }

    return {
      schema: RESULTS_SCHEMA,
      profile: profileName,
      measuredAt: new Date().toISOString(),
      cpus: cpus().length,
      help: { measured: round(median(helpRuns), 3), reference: round(median(nodeRuns), 3) },
      coldBuild: { measured: round(cold.seconds, 2), reference: round(cliCold, 2) },
      noChangeRebuild: {
        measured: round(median(noChange.map((b) => b.seconds)), 3),
        reference: round(median(baked.references), 3),
        sameImage: baked.sameImage,
        layersRebuilt: noChangeLayers,
        runs: noChange.length,
      },
      noChangeRuntimeRebuild: {
        measured: round(median(runtime.builds.map((b) => b.seconds)), 3),
        reference: round(median(runtime.references), 3),
        sameImage: runtime.sameImage,
        runs: runtime.builds.length,
      },
      credentialRebuild: {
        measured: round(credential.seconds, 2),
        reference: round(median(noChange.map((b) => b.seconds)), 3),
        layersRebuilt: credentialLayers,
        onlyTheLastLayer: onlyLast,
      },
      image: { sizeBytes: image.Size, baseSizeBytes: base.Size },
      ...runTime,
      ...(suite ? { suite } : {}),
      ...(bootstraps ? { base: bootstraps } : {}),
    };
  } finally {
    await removeBenchResources(docker, benchId, network, [tag, runtimeTag, cliTag]);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Ends what one bench run made: its labelled containers (running or not), its network, then its images. */
async function removeBenchResources(
  docker: Docker,
  benchId: string,
  network: Docker.Network,
  images: readonly string[],
): Promise<void> {
  const filters = JSON.stringify({ label: [`${BENCH_LABEL}=${benchId}`] });
  const leftovers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    leftovers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  await network.remove().catch(() => undefined);
  for (const image of images)
    await docker
      .getImage(image)
      .remove({ force: true })
      .catch(() => undefined);
}

/** CPU time the container's processes used since it started, from the engine's statistics. */
async function containerCpuNanos(container: Docker.Container): Promise<number> {
  // one-shot: no second sample (the engine would wait a second for it); only the running total is read.
  const options = { stream: false, 'one-shot': true } as { stream: false };
  const stats = (await container.stats(options)) as { cpu_stats: { cpu_usage: { total_usage: number } } };
  return stats.cpu_stats.cpu_usage.total_usage;
}

/** Builds the image (cached layers) with one bench user, on a network of its own, and hands both to `measure`. */
async function withBenchImage<T>(profileName: string, measure: (at: BenchImage) => Promise<T>): Promise<T> {
  const engine = connectEngine();
  await engine.ping();
  const docker = new Docker();
  const benchId = Date.now().toString(36);
  const labels = { [BENCH_LABEL]: benchId };
  const user: SaslUser = { name: 'bench', password: generatePassword() };
  const tag = `memcached-hardened-bench:${profileName}-run-time`;
  const network = await docker.createNetwork({ Name: `mh-bench-${benchId}`, Internal: true, Labels: labels });
  try {
    log('building the image (cached layers)');
    const build = parseBuildArgs(['--profile', profileName, '--tag', tag])!;
    const built = await buildImage(engine, build, loadProfile(profileName), [user], quiet);
    const image = built.imageId;
    return await measure({ docker, engine, image, profile: profileName, network: network.id, labels, user });
  } finally {
    await removeBenchResources(docker, benchId, network, [tag]);
  }
}

/**
 * The variants a hardened/plain gap is taken apart with, the first the reference: plain memcached from the
 * image with one thing of the hardened start added each, and the image as shipped with one thing changed.
 * All at the image's default memory (-m 64) but the last.
 */
function reconcileVariants(profile: string): ServerVariant[] {
  const seccomp = readFileSync(seccompProfilePath(profile), 'utf8');
  const memory = 64;
  // Cyrus keys a PLAIN login to the host name: the baked sasldb is keyed to BUILD_REALM, so is the host.
  const sasl = `cp ${BAKED_SASLDB_PATH} /run/memcached/memcached-sasldb2 && exec "$@"`;
  const withSasl = plainVariant('plain + -S (SASL)', memory, ['-S'], { authenticated: true, hostname: BUILD_REALM });
  const guard = { LD_PRELOAD: MEMCACHED_GUARD, MEMCACHED_MAX_CONNECTIONS_PER_CLIENT: '128' };
  return [
    plainVariant('plain (reference)', memory),
    plainVariant('plain + seccomp profile', memory, [], { seccomp }),
    plainVariant('plain + guard (LD_PRELOAD)', memory, [], { env: guard }),
    plainVariant('plain + -v', memory, ['-v']),
    plainVariant('plain + -o maxconns_fast', memory, ['-o', 'maxconns_fast']),
    { ...withSasl, entrypoint: ['sh', '-c', sasl, 'sh', ...withSasl.entrypoint!] },
    hardenedVariant("hardened, Docker's default seccomp", memory, undefined),
    hardenedVariant('hardened, seccomp profile', memory, seccomp),
    hardenedVariant('hardened, seccomp profile, MEMCACHED_VERBOSITY=0', memory, seccomp, { MEMCACHED_VERBOSITY: '0' }),
    hardenedVariant('hardened, seccomp profile, -m 512', 512, seccomp),
    { ...hardenedVariant('hardened, seccomp profile, its health check', memory, seccomp), healthCheck: true },
  ];
}

/**
 * With 2 CPUs or more, the servers on the last one and the generator on the others: the server's CPU then
 * sets the pace, and neither takes time from the other (unpinned, rounds moved by ±30% on 2 shared cores).
 */
function pinnedCpus(): { server?: string; generator?: string } {
  const count = cpus().length;
  if (count < 2) return {};
  return { server: String(count - 1), generator: count === 2 ? '0' : `0-${count - 2}` };
}

/**
 * --reconcile: every reconcile variant of one image under one memcslap load (the independent run's:
 * set, 4 threads x 25000), each round in a rotated order; each variant's ratio to the reference per round.
 */
async function reconcile(profileName: string, rounds: number): Promise<VariantRow[]> {
  return withBenchImage(profileName, async ({ docker, engine, image, network, labels, user }) => {
    const generator = await buildGenerator(engine, quiet);
    const variants = reconcileVariants(profileName);
    const pinned = pinnedCpus();
    const servers = [];
    for (const variant of variants) {
      const at = { network, labels, user, cpus: pinned.server };
      servers.push({ variant, ...(await startVariant(docker, image, variant, at)) });
    }
    const load = { test: 'set' as const, threads: 4, perThread: 25_000 };
    const measured: number[][] = variants.map(() => []);
    const cpuPerOp: number[][] = variants.map(() => []);
    // The server's own CPU time per operation: what it costs, whatever else the shared machine runs meanwhile.
    const cpuSeen = await Promise.all(servers.map((server) => containerCpuNanos(server.container)));
    for (let r = 0; r < rounds; r++) {
      const what = `memcslap ${load.test} ${load.threads} x ${load.perThread}`;
      log(`round ${r + 1}/${rounds}: ${what} on ${variants.length} servers, rotating`);
      for (const i of roundOrder([...variants.keys()], r)) {
        const server = servers[i]!;
        const target = {
          generator,
          network,
          ip: server.ip,
          labels,
          cpus: pinned.generator,
          ...credentialsFor(server.variant, user),
        };
        const slapped = await runMemcslap(engine, { ...target, ...load });
        const cpu = await containerCpuNanos(server.container);
        measured[i]!.push(slapped.opsPerSec);
        cpuPerOp[i]!.push((cpu - cpuSeen[i]!) / 1000 / (load.threads * load.perThread));
        cpuSeen[i] = cpu;
      }
    }
    const against = (samples: number[][], i: number) =>
      samples[i]!.map((value, r) => ({ measured: value, reference: samples[0]![r]! }));
    return variants.map((variant, i) => {
      const cpu = roundRatios(against(cpuPerOp, i));
      return {
        name: variant.name,
        opsPerSec: Math.round(median(measured[i]!)),
        ...roundRatios(against(measured, i)),
        cpuUsPerOp: round(median(cpuPerOp[i]!), 2),
        cpuRatio: cpu.ratio,
        cpuLow: cpu.low,
        cpuHigh: cpu.high,
      };
    });
  });
}

/** A count option: `fallback` when absent, at least `minimum`; anything but a whole number is an error. */
function count(name: string, value: string | undefined, fallback: number, minimum: number): number {
  const parsed = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(parsed)) throw new Error(`--${name} must be a whole number (got '${value}')`);
  return Math.max(minimum, parsed);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string' },
      starts: { type: 'string' },
      rounds: { type: 'string' },
      'no-suite': { type: 'boolean' },
      'no-base': { type: 'boolean' },
      readme: { type: 'boolean' },
      reconcile: { type: 'boolean' },
      'run-time': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const profile = values.profile ?? DEFAULT_PROFILE;
  if (values['run-time']) {
    const starts = count('starts', values.starts, 9, 3);
    const rounds = count('rounds', values.rounds, 5, 1);
    const figures = await withBenchImage(profile, (at) => measureRunTime({ ...at, starts, rounds }));
    console.log(values.json ? JSON.stringify(figures) : renderRunTimeTable(profile, figures));
    return figures.nodeLoad.errors === 0 ? 0 : 1;
  }
  if (values.reconcile) {
    const rounds = count('rounds', values.rounds, 9, 2);
    const rows = await reconcile(profile, rounds);
    if (values.json) console.log(JSON.stringify(rows));
    else console.log(renderVariants(rows, `${profile}, memcslap set 4 x 25000, ${rounds} rounds rotating`));
    return 0;
  }
  if (values.readme) {
    const latest = latestResults(RESULTS_DIR, profile);
    if (!latest) throw new Error(`no results for ${profile} in ${RESULTS_DIR}`);
    console.log(writeReadme(latest));
    return 0;
  }
  const results = await bench(profile, {
    starts: count('starts', values.starts, 9, 3),
    rounds: count('rounds', values.rounds, 5, 1),
    suite: !values['no-suite'],
    base: !values['no-base'],
  });
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${results.measuredAt.replace(/[:.]/g, '-')}-${profile}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const table = writeReadme(latestResults(RESULTS_DIR, profile)!);
  if (values.json) console.log(JSON.stringify(results));
  else console.log(`${table}\nresults: ${file}`);
  const baseReproduced = results.base === undefined || results.base.firstId === results.base.secondId;
  return (results.suite?.passed ?? true) && results.nodeLoad.errors === 0 && baseReproduced ? 0 : 1;
}

process.exitCode = await main().catch((error: Error) => {
  console.error(`bench: ${error.message}`);
  return 1;
});
