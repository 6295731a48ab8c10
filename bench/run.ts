import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { buildImage } from '../src/build.js';
import { parseBuildArgs } from '../src/config.js';
import { renderContext, SASLDB_ENTRY } from '../src/context.js';
import { connectEngine } from '../src/docker.js';
import { projectPath } from '../src/paths.js';
import { loadProfile, DEFAULT_PROFILE } from '../src/profiles.js';
import { BUILD_REALM, profileValues } from '../src/render.js';
import { serializeUsers, type SaslUser } from '../src/credentials.js';
import { generatePassword, generateSasldb } from '../src/sasldb.js';
import { BinaryClient, Status, tryAuthenticatedRoundTrip } from '../test/helpers/binary-client.js';
import { handshakeTimes, runLoad } from './load.js';
import { changedLayers, quantile, round } from './stats.js';

const USAGE = `Usage: npm run bench -- [--profile NAME] [--starts N] [--json]

Measures, each next to a reference from the same run: cold and warm builds (product vs the docker build
CLI on the same rendered context), a credentials-only rebuild, image size vs base, start-to-ready time and
throughput (hardened vs plain memcached from the same image), the SASL handshake, and the suite's run time.
Results go to bench/results/<time>.json; the README's table is refreshed.`;

const BENCH_LABEL = 'memcached-hardened.bench';
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const seconds = (ms: number) => round(ms / 1000, 2);

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const t0 = performance.now();
  const result = await work();
  return { ms: performance.now() - t0, result };
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    child.stderr.on('data', (d) => (tail = (tail + d).slice(-2000)));
    child.on('close', (code) => {
      if (code !== 0) log(`${command} ${args.slice(0, 3).join(' ')} exited ${code}: ${tail.trim().split('\n').pop()}`);
      resolve(code);
    });
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { profile: { type: 'string' }, starts: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const profileName = values.profile ?? DEFAULT_PROFILE;
  const starts = Math.max(7, Number(values.starts ?? 9));
  const profile = loadProfile(profileName);
  const engine = connectEngine();
  await engine.ping();
  const docker = new Docker();
  const benchId = Date.now().toString(36);
  const labels = { [BENCH_LABEL]: benchId };
  const scratch = mkdtempSync(join(tmpdir(), 'mh-bench-'));
  const users: SaslUser[] = [{ name: 'bench', password: generatePassword() }];
  const tag = `memcached-hardened-bench:${profileName}`;
  const buildConfig = (extra: string[] = []) => parseBuildArgs(['--profile', profileName, '--tag', tag, ...extra])!;
  const network = await docker.createNetwork({ Name: `mh-bench-${benchId}`, Internal: true, Labels: labels });
  try {
    // --- builds -----------------------------------------------------------------------------------------
    // Each tool's warm rebuild follows its own cold build, so neither inherits the other's cache.
    log('cold build through the product (--no-cache; base present), then a warm rebuild');
    const cold = await timed(() => buildImage(engine, buildConfig(['--no-cache']), profile, users, () => undefined));
    const warm = await timed(() => buildImage(engine, buildConfig(), profile, users, () => undefined));
    log('cold and warm builds through the docker CLI on the same rendered context');
    const sasldb = await generateSasldb(engine, (await buildImage(engine, buildConfig(['--target', 'client', '--tag', `${tag}-client`]), profile, undefined, () => undefined)).imageId, users, BUILD_REALM);
    const context = await renderContext(profileValues(profile), sasldb);
    writeFileSync(join(context.dir, SASLDB_ENTRY), sasldb, { mode: 0o600 });
    const cliTag = `${tag}-cli`;
    const cliCold = await timed(() => run('docker', ['build', '-q', '--no-cache', '--target', 'server', '-t', cliTag, context.dir]));
    const cliWarm = await timed(() => run('docker', ['build', '-q', '--target', 'server', '-t', cliTag, context.dir]));
    await context.dispose();
    if (cliCold.result !== 0 || cliWarm.result !== 0) throw new Error('the docker CLI reference build failed');
    log('credentials-only rebuild');
    // The reference is a no-change rebuild right before, so both share the same cache state.
    const before = await docker.getImage((await buildImage(engine, buildConfig(), profile, users, () => undefined)).imageId).inspect();
    const rotated: SaslUser[] = [{ name: 'bench', password: generatePassword() }];
    const credential = await timed(() => buildImage(engine, buildConfig(), profile, rotated, () => undefined));
    const after = await docker.getImage(credential.result.imageId).inspect();
    const base = await docker.getImage(profile.base.image).inspect();
    // The benchmark containers use the rotated credentials.
    const user = rotated[0]!;

    // --- start-to-ready -----------------------------------------------------------------------------------
    const start = async (plain: boolean) => {
      const container = await docker.createContainer({
        Image: credential.result.imageId,
        Labels: labels,
        ...(plain ? { Entrypoint: ['memcached', '-U', '0', '-p', '11211', '-l', '0.0.0.0'] } : {}),
        HostConfig: { NetworkMode: network.id },
      });
      const t0 = performance.now();
      await container.start();
      const ip = (await container.inspect()).NetworkSettings.Networks[network.id]?.IPAddress ?? Object.values((await container.inspect()).NetworkSettings.Networks)[0]!.IPAddress;
      for (;;) {
        try {
          const attempt = await tryAuthenticatedRoundTrip(ip, plain ? undefined : user.name, user.password);
          if (attempt.roundTrip) break;
        } catch {
          /* not listening yet */
        }
        if (performance.now() - t0 > 20_000) throw new Error('container never became ready');
        await new Promise((r) => setTimeout(r, 5));
      }
      return { ms: performance.now() - t0, ip, container };
    };
    log(`start-to-ready, ${starts} starts each (hardened and plain, alternating)`);
    const readyHardened: number[] = [];
    const readyPlain: number[] = [];
    for (let i = 0; i < starts; i++) {
      for (const plain of [false, true]) {
        const started = await start(plain);
        (plain ? readyPlain : readyHardened).push(started.ms);
        await started.container.remove({ force: true });
      }
    }

    // --- throughput and handshake ---------------------------------------------------------------------------
    log('throughput: hardened vs plain, same generator, alternating rounds');
    const hardened = await start(false);
    const plain = await start(true);
    const load = { connections: 8, depth: 16, seconds: 4 };
    const rounds = [];
    for (let r = 0; r < 3; r++) {
      rounds.push({
        hardened: await runLoad(hardened.ip, { ...load, user: user.name, password: user.password }),
        plain: await runLoad(plain.ip, load),
      });
    }
    // Medians over alternating rounds: this machine's noise is larger than the effect measured.
    const hardenedOps = quantile(rounds.map((r) => r.hardened.opsPerSec), 0.5);
    const plainOps = quantile(rounds.map((r) => r.plain.opsPerSec), 0.5);
    const handshakes = await handshakeTimes(hardened.ip, user.name, user.password, 200);
    const unauthenticated = await BinaryClient.connect(hardened.ip);
    const refused = (await unauthenticated.get('bench-0'))?.status === Status.authError;
    unauthenticated.close();
    if (!refused) throw new Error('the benchmarked server served an unauthenticated get');
    await Promise.all([hardened.container.remove({ force: true }), plain.container.remove({ force: true })]);

    // --- the suite ------------------------------------------------------------------------------------------
    log('the integration suite against the built image');
    const usersFile = join(scratch, 'users');
    writeFileSync(usersFile, serializeUsers(rotated), { mode: 0o600 });
    const suite = await timed(() =>
      run(process.execPath, [projectPath('node_modules/vitest/vitest.mjs'), 'run', '--project', 'integration'], {
        cwd: projectPath(),
        env: { ...process.env, MEMCACHED_IMAGE: credential.result.imageId, MEMCACHED_USERS_FILE: usersFile, MEMCACHED_PROFILE: profileName },
      }),
    );

    const results: BenchResults = {
      profile: profileName,
      measuredAt: new Date().toISOString(),
      build: {
        coldSeconds: seconds(cold.ms),
        dockerCliColdSeconds: seconds(cliCold.ms),
        coldRatio: round(cold.ms / cliCold.ms),
        warmSeconds: seconds(warm.ms),
        dockerCliWarmSeconds: seconds(cliWarm.ms),
        warmRatio: round(warm.ms / cliWarm.ms),
        credentialRebuildSeconds: seconds(credential.ms),
        credentialRebuildLayers: changedLayers(before.RootFS.Layers ?? [], after.RootFS.Layers ?? []),
        credentialRebuildRatioToCold: round(credential.ms / cold.ms, 3),
      },
      image: {
        sizeBytes: after.Size,
        baseSizeBytes: base.Size,
        addedBytes: after.Size - base.Size,
      },
      ready: {
        p50Ms: round(quantile(readyHardened, 0.5), 1),
        p95Ms: round(quantile(readyHardened, 0.95), 1),
        plainP50Ms: round(quantile(readyPlain, 0.5), 1),
        plainP95Ms: round(quantile(readyPlain, 0.95), 1),
        ratio: round(quantile(readyHardened, 0.5) / quantile(readyPlain, 0.5)),
        starts,
      },
      throughput: {
        hardenedOpsPerSec: Math.round(hardenedOps),
        plainOpsPerSec: Math.round(plainOps),
        ratio: round(hardenedOps / plainOps, 3),
        hardenedBatchP99Ms: round(Math.max(...rounds.map((r) => r.hardened.batchP99Ms)), 2),
        plainBatchP99Ms: round(Math.max(...rounds.map((r) => r.plain.batchP99Ms)), 2),
        errors: rounds.reduce((sum, r) => sum + r.hardened.errors + r.plain.errors, 0),
        generatorCpuShare: round(Math.max(...rounds.flatMap((r) => [r.hardened.generatorCpuShare, r.plain.generatorCpuShare])), 2),
        load: `${load.connections} connections x ${load.depth} pipelined ops, 90% get / 10% set, 100-byte values, ${load.seconds} s x 3 alternating rounds, medians`,
      },
      auth: {
        handshakeP50Ms: round(quantile(handshakes, 0.5), 2),
        handshakeP99Ms: round(quantile(handshakes, 0.99), 2),
      },
      suite: { seconds: seconds(suite.ms), passed: suite.result === 0 },
    };
    mkdirSync(projectPath('bench/results'), { recursive: true });
    const file = projectPath('bench/results', `${results.measuredAt.replace(/[:.]/g, '-')}-${profileName}.json`);
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    const table = renderTable(results);
    updateReadme(table);
    if (values.json) console.log(JSON.stringify(results));
    else console.log(`${table}\nresults: ${file}`);
    return results.suite.passed && results.throughput.errors === 0 ? 0 : 1;
  } finally {
    const leftovers = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${BENCH_LABEL}=${benchId}`] }) });
    await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
    await network.remove().catch(() => undefined);
    for (const image of [tag, `${tag}-cli`, `${tag}-client`]) await docker.getImage(image).remove({ force: true }).catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
}

interface BenchResults {
  profile: string;
  measuredAt: string;
  build: Record<string, number>;
  image: Record<string, number>;
  ready: Record<string, number>;
  throughput: Record<string, number | string>;
  auth: Record<string, number>;
  suite: { seconds: number; passed: boolean };
}

function renderTable(r: BenchResults): string {
  const { build: b, image: i, ready, throughput: t, auth: a, suite: s } = r;
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  const rows = [
    ['Cold build (base present)', `${b.coldSeconds} s`, `docker build CLI ${b.dockerCliColdSeconds} s`, `${b.coldRatio}×`, '—'],
    ['Warm rebuild (no change)', `${b.warmSeconds} s`, `docker build CLI ${b.dockerCliWarmSeconds} s`, `${b.warmRatio}×`, '≤ 1.1×'],
    ['Credentials-only rebuild', `${b.credentialRebuildSeconds} s, ${b.credentialRebuildLayers} layer(s)`, `cold ${b.coldSeconds} s`, `${b.credentialRebuildRatioToCold}×`, '≤ 0.1×'],
    ['Image size', mb(i.sizeBytes!), `base ${mb(i.baseSizeBytes!)}`, `+${mb(i.addedBytes!)}`, '≤ +10 MB'],
    ['Start to first authenticated set/get, p50 (p95)', `${ready.p50Ms} (${ready.p95Ms}) ms`, `plain ${ready.plainP50Ms} (${ready.plainP95Ms}) ms`, `${ready.ratio}×`, '≤ 1.25×'],
    ['Throughput', `${t.hardenedOpsPerSec} ops/s, batch p99 ${t.hardenedBatchP99Ms} ms`, `plain ${t.plainOpsPerSec} ops/s, p99 ${t.plainBatchP99Ms} ms`, `${t.ratio}×`, '≥ 0.95×'],
    ['Connect + SASL + first get, p50 / p99', `${a.handshakeP50Ms} / ${a.handshakeP99Ms} ms`, '—', '—', '—'],
    ['Integration suite (one profile, image given)', `${s.seconds} s`, s.passed ? 'passed' : 'FAILED', '—', '—'],
  ];
  const header = `| Figure (${r.profile}, ${r.measuredAt.slice(0, 10)}) | Measured | Reference (same run) | Ratio | Goal |\n| --- | --- | --- | --- | --- |`;
  return `${header}\n${rows.map((row) => `| ${row.join(' | ')} |`).join('\n')}\n\nLoad generator: ${t.load}; its CPU share of one core: ${t.generatorCpuShare} (near 1 means it, not the server, set the pace).`;
}

function updateReadme(table: string): void {
  const path = projectPath('README.md');
  const readme = readFileSync(path, 'utf8');
  const start = '<!-- bench:start -->';
  const end = '<!-- bench:end -->';
  if (!readme.includes(start) || !readme.includes(end)) return;
  writeFileSync(path, `${readme.slice(0, readme.indexOf(start) + start.length)}\n${table}\n${readme.slice(readme.indexOf(end))}`);
}

process.exitCode = await main().catch((error: Error) => {
  console.error(`bench: ${error.message}`);
  return 1;
});
