import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { BinaryClient, Status, tryAuthenticatedRoundTrip } from '../lib/binary-client.js';
import { renderContext } from '../src/context.js';
import { connectEngine, type Engine } from '../src/engine/index.js';
import { projectPath } from '../src/paths.js';
import { bootstrapBase } from '../src/bootstrap.js';
import { DEFAULT_PROFILE, loadProfile, type Profile } from '../src/profiles.js';
import { profileValues, type TemplateValues } from '../src/render.js';
import { serializeUsers, type SaslUser } from '../src/credentials.js';
import { BAKED_SASLDB_PATH } from '../src/render.js';
import { runSuite } from '../src/verify.js';
import { generatePassword } from '../src/sasldb.js';
import { handshakeTimes, runLoad, type LoadResult } from './load.js';
import { buildGenerator, runMemcslap, type SlapResult, type SlapTest } from './memcslap.js';
import { latestResults, renderTable, RESULTS_SCHEMA, withBenchTable, type BenchResults, type Throughput } from './report.js';
import { newLayers, quantile, round } from './stats.js';

const USAGE = `Usage: npm run bench -- [--profile NAME] [--starts N] [--rounds N] [--no-suite] [--no-base] [--json]
       npm run bench -- --readme [--profile NAME]

Measures what a user does, each figure next to a reference from the same run: the compiled CLI's --help,
a first build and a rebuild with nothing changed (the CLI as a process vs the docker CLI on the same
rendered context), a credentials-only rebuild and the layers it rebuilt, image size, start-to-ready and
throughput (hardened vs plain memcached from the same image; Debian's memcslap and the Node generator,
each with its CPU share), the SASL handshake, the suite's run time, and two bootstraps of the base (as
root: debootstrap; --no-base leaves them out) that must give one image id. Results are appended to
bench/results/ and the README's table is regenerated from them; --readme only regenerates the table.`;

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
function run(command: string, args: readonly string[], options: { stdin?: string | Readable; env?: NodeJS.ProcessEnv } = {}): Promise<Exited> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(command, args, { cwd: projectPath(), env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
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
async function cliBuild(profile: string, tag: string, users: readonly SaslUser[] | undefined, sbomDir: string, extra: string[] = []): Promise<{ seconds: number; imageId: string }> {
  const args = ['build', '--profile', profile, '--tag', tag, ...(users ? ['--users-file', '-'] : []), '--sbom-dir', sbomDir, '--json', ...extra];
  const result = await must(run(projectPath('bin/memcached-hardened'), args, users ? { stdin: serializeUsers(users) } : {}), 'the CLI build');
  const imageId = (JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as { imageId?: string }).imageId;
  if (!imageId) throw new Error('the CLI build printed no image id');
  return { seconds: result.seconds, imageId };
}

/** `docker build` of the server stage from the same rendered context, streamed (the sasldb never touches the disk). */
async function dockerCliBuild(values: TemplateValues, sasldb: Buffer | undefined, tag: string, noCache: boolean): Promise<number> {
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

function throughput(rounds: ReadonlyArray<Sides<{ opsPerSec: number; generatorCpuShare: number }>>): Throughput {
  // Each round's ratio, then their median and range: this machine's noise is larger than the effect
  // measured, and a ratio of two medians could pair a lucky round with an unlucky one.
  const ratios = rounds.map((r) => r.hardened.opsPerSec / r.plain.opsPerSec);
  return {
    hardenedOpsPerSec: Math.round(median(rounds.map((r) => r.hardened.opsPerSec))),
    plainOpsPerSec: Math.round(median(rounds.map((r) => r.plain.opsPerSec))),
    ratio: round(median(ratios), 3),
    ratioLow: round(Math.min(...ratios), 3),
    ratioHigh: round(Math.max(...ratios), 3),
    generatorCpuShare: round(Math.max(...rounds.flatMap((r) => [r.hardened.generatorCpuShare, r.plain.generatorCpuShare])), 2),
  };
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
  const path = projectPath('README.md');
  writeFileSync(path, withBenchTable(readFileSync(path, 'utf8'), table));
  return table;
}

/**
 * Bootstraps the profile's base twice under bench tags, each as a build that lacks the base would: the
 * reproducibility claim is that both give one image id (and the engine's own base, from the same archive
 * state, that id too).
 */
async function bootstrapTwice(engine: Engine, profile: Profile, benchId: string): Promise<NonNullable<BenchResults['base']>> {
  const runs: Array<{ seconds: number; id: string }> = [];
  const tags = [1, 2].map((n) => `memcached-hardened-bench/base-${benchId}-${n}:${profile.name}`);
  try {
    for (const tag of tags) {
      const started = performance.now();
      await bootstrapBase(engine, profile, (line) => (line.startsWith('[base] ') ? log(line.slice(7)) : undefined), tag);
      const image = await engine.inspectImage(tag);
      if (!image) throw new Error(`the bootstrap left no ${tag}`);
      runs.push({ seconds: round((performance.now() - started) / 1000, 1), id: image.id });
    }
  } finally {
    for (const tag of tags) await engine.removeImage(tag).catch(() => undefined);
  }
  const [first, second] = runs as [(typeof runs)[0], (typeof runs)[0]];
  return { firstSeconds: first.seconds, secondSeconds: second.seconds, firstId: first.id, secondId: second.id, enginesBaseId: (await engine.inspectImage(profile.base.image))?.id };
}

async function bench(profileName: string, options: { starts: number; rounds: number; suite: boolean; base: boolean }): Promise<BenchResults> {
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
    const rebuilds = async (cli: () => Promise<{ seconds: number; imageId: string }>, docker: () => Promise<number>) => {
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
    log(`rebuilds with nothing changed (baked users): one to settle, then ${REBUILD_RUNS} alternating CLI and docker CLI runs`);
    const beforeNoChange = await layersInEngine(docker);
    const baked = await rebuilds(
      () => cliBuild(profileName, tag, users, sbomDir),
      () => dockerCliBuild(bakedValues, bakedSasldb, cliTag, false),
    );
    const noChange = baked.builds;
    const noChangeLayers = Math.max(...(await Promise.all(noChange.map(async (b) => newLayers(beforeNoChange, await layersOf(docker, b.imageId)).length))));

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

    // --- start-to-ready -----------------------------------------------------------------------------------
    const start = async (plain: boolean) => {
      const container = await docker.createContainer({
        Image: credential.imageId,
        Labels: labels,
        // Plain: the same memcached without SASL, the reference for what hardening costs. Both get memory
        // enough for memcslap's working set, so every get hits on both (memcslap counts only hits).
        ...(plain ? { Entrypoint: ['memcached', '-U', '0', '-p', '11211', '-l', '0.0.0.0', '-m', String(SERVER_MEMORY_MB)] } : { Env: [`MEMCACHED_MEMORY_MB=${SERVER_MEMORY_MB}`] }),
        HostConfig: { NetworkMode: network.id },
      });
      const t0 = performance.now();
      await container.start();
      const networks = (await container.inspect()).NetworkSettings.Networks;
      const ip = Object.values(networks)[0]!.IPAddress;
      for (;;) {
        try {
          if ((await tryAuthenticatedRoundTrip(ip, plain ? undefined : user.name, user.password)).roundTrip) break;
        } catch {
          /* not listening yet */
        }
        if (performance.now() - t0 > 20_000) throw new Error('container never became ready');
        await new Promise((r) => setTimeout(r, 5));
      }
      return { ms: performance.now() - t0, ip, container };
    };
    log(`start-to-ready, ${options.starts} starts each (hardened and plain, alternating)`);
    const readyHardened: number[] = [];
    const readyPlain: number[] = [];
    for (let i = 0; i < options.starts; i++) {
      for (const plain of [false, true]) {
        const started = await start(plain);
        (plain ? readyPlain : readyHardened).push(started.ms);
        await started.container.remove({ force: true });
      }
    }

    // --- throughput and handshake ---------------------------------------------------------------------------
    log('building the native generator (debian-12 tools image with memcslap)');
    const generator = await buildGenerator(engine, quiet);
    const hardened = await start(false);
    const plain = await start(true);
    // Runs of a second or more, five rounds: shorter ones moved by ±15% between runs on this 2-core machine.
    const slapLoad = { threads: 8, perThread: 50_000 };
    const slap = (test: SlapTest, target: { ip: string }, credentials: boolean): Promise<SlapResult> =>
      runMemcslap(engine, { generator, network: network.id, ip: target.ip, test, ...slapLoad, labels, ...(credentials ? { user: user.name, password: user.password } : {}) });
    const nodeLoad = { connections: 8, depth: 16, seconds: 4 };
    const slapRounds: Record<SlapTest, Array<Sides<SlapResult>>> = { get: [], set: [] };
    const nodeRounds: Array<Sides<LoadResult>> = [];
    for (let r = 0; r < options.rounds; r++) {
      log(`throughput round ${r + 1}/${options.rounds}: memcslap get and set, then the Node generator; hardened and plain, each first in every other round`);
      for (const test of ['get', 'set'] as const) slapRounds[test].push(await bothSides(r, (side) => slap(test, side === 'hardened' ? hardened : plain, side === 'hardened')));
      nodeRounds.push(await bothSides(r, (side) => (side === 'hardened' ? runLoad(hardened.ip, { ...nodeLoad, user: user.name, password: user.password }) : runLoad(plain.ip, nodeLoad))));
    }
    const handshakes = await handshakeTimes(hardened.ip, user.name, user.password, 200);
    const unauthenticated = await BinaryClient.connect(hardened.ip);
    const refused = (await unauthenticated.get('bench-0'))?.status === Status.authError;
    unauthenticated.close();
    if (!refused) throw new Error('the benchmarked server served an unauthenticated get');
    await Promise.all([hardened.container.remove({ force: true }), plain.container.remove({ force: true })]);

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

    const nodeThroughput = throughput(nodeRounds);
    const batch = (side: 'hardened' | 'plain', q: 'batchP50Ms' | 'batchP99Ms') => round(median(nodeRounds.map((r) => r[side][q])), 2);
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
      credentialRebuild: { measured: round(credential.seconds, 2), reference: round(median(noChange.map((b) => b.seconds)), 3), layersRebuilt: credentialLayers, onlyTheLastLayer: onlyLast },
      image: { sizeBytes: image.Size, baseSizeBytes: base.Size },
      ready: {
        p50Ms: round(quantile(readyHardened, 0.5), 1),
        p95Ms: round(quantile(readyHardened, 0.95), 1),
        plainP50Ms: round(quantile(readyPlain, 0.5), 1),
        plainP95Ms: round(quantile(readyPlain, 0.95), 1),
        starts: options.starts,
      },
      memcslap: {
        get: throughput(slapRounds.get),
        set: throughput(slapRounds.set),
        load: `--binary, ${slapLoad.threads} threads x ${slapLoad.perThread} operations, one connection each, ${SERVER_MEMORY_MB} MB of memory on both servers (every get hits), ${options.rounds} rounds with each side first in every other, medians`,
      },
      nodeLoad: {
        ...nodeThroughput,
        hardenedBatchP50Ms: batch('hardened', 'batchP50Ms'),
        hardenedBatchP99Ms: batch('hardened', 'batchP99Ms'),
        plainBatchP50Ms: batch('plain', 'batchP50Ms'),
        plainBatchP99Ms: batch('plain', 'batchP99Ms'),
        errors: nodeRounds.reduce((sum, r) => sum + r.hardened.errors + r.plain.errors, 0),
        load: `${nodeLoad.connections} connections x ${nodeLoad.depth} pipelined ops, 90% get / 10% set, 100-byte values, ${nodeLoad.seconds} s x ${options.rounds} rounds with each side first in every other, medians (latency per batch of ${nodeLoad.depth})`,
      },
      handshake: { p50Ms: round(quantile(handshakes, 0.5), 2), p99Ms: round(quantile(handshakes, 0.99), 2) },
      ...(suite ? { suite } : {}),
      ...(bootstraps ? { base: bootstraps } : {}),
    };
  } finally {
    const leftovers = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${BENCH_LABEL}=${benchId}`] }) });
    await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
    await network.remove().catch(() => undefined);
    for (const image of [tag, runtimeTag, cliTag]) await docker.getImage(image).remove({ force: true }).catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
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
  if (values.readme) {
    const latest = latestResults(RESULTS_DIR, profile);
    if (!latest) throw new Error(`no results for ${profile} in ${RESULTS_DIR}`);
    console.log(writeReadme(latest));
    return 0;
  }
  const results = await bench(profile, {
    starts: Math.max(3, Number(values.starts ?? 9)),
    rounds: Math.max(1, Number(values.rounds ?? 5)),
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
