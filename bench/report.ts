import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Bumped when the results' shape changes; the docs/figures.md table is rendered only from this shape. */
export const RESULTS_SCHEMA = 5;

export interface Pair {
  /** The hardened image (or the product). */
  readonly measured: number;
  /** Its reference from the same run. */
  readonly reference: number;
}

export interface Throughput {
  /** Medians over the rounds. */
  readonly hardenedOpsPerSec: number;
  readonly plainOpsPerSec: number;
  /** hardened / plain: the median of the rounds' ratios, and the lowest and highest of them. */
  readonly ratio: number;
  readonly ratioLow: number;
  readonly ratioHigh: number;
  /** Cores the generator used, the highest of its runs: near one per generator thread means it set the pace. */
  readonly generatorCpuShare: number;
}

/** The hardened image under its seccomp profile against the same image under Docker's default profile. */
export interface SeccompThroughput {
  /** Medians over the rounds. */
  readonly profileOpsPerSec: number;
  readonly defaultOpsPerSec: number;
  /** profile / default: the median of the rounds' ratios, and the lowest and highest of them. */
  readonly ratio: number;
  readonly ratioLow: number;
  readonly ratioHigh: number;
}

export interface BenchResults {
  readonly schema: typeof RESULTS_SCHEMA;
  readonly profile: string;
  readonly measuredAt: string;
  readonly cpus: number;
  /** `bin/memcached-hardened --help` vs a bare `node -e ''`, medians, seconds. */
  readonly help: Pair;
  /** CLI --no-cache build vs `docker build --no-cache` of the same rendered context, seconds. */
  readonly coldBuild: Pair;
  /**
   * CLI rebuild with nothing changed (baked, same users) vs `docker build` of the same context, cached;
   * medians, seconds.
   */
  readonly noChangeRebuild: Pair & {
    readonly sameImage: boolean;
    readonly layersRebuilt: number;
    readonly runs: number;
  };
  /** The same with runtime credentials (no sasldb to compare). */
  readonly noChangeRuntimeRebuild: Pair & { readonly sameImage: boolean; readonly runs: number };
  /** CLI rebuild with one password changed; reference: the no-change rebuild. Layers rebuilt, here and
   * above: layers of the result whose content the engine held in no image before that build. */
  readonly credentialRebuild: Pair & { readonly layersRebuilt: number; readonly onlyTheLastLayer: boolean };
  readonly image: { readonly sizeBytes: number; readonly baseSizeBytes: number };
  /** Start to first authenticated set/get, ms: hardened vs plain memcached from the same image. */
  readonly ready: {
    readonly p50Ms: number;
    readonly p95Ms: number;
    readonly plainP50Ms: number;
    readonly plainP95Ms: number;
    readonly starts: number;
  };
  readonly memcslap: { readonly get: Throughput; readonly set: Throughput; readonly load: string };
  readonly nodeLoad: Throughput & {
    readonly hardenedBatchP50Ms: number;
    readonly hardenedBatchP99Ms: number;
    readonly plainBatchP50Ms: number;
    readonly plainBatchP99Ms: number;
    readonly errors: number;
    readonly load: string;
  };
  readonly handshake: { readonly p50Ms: number; readonly p99Ms: number };
  /** What the seccomp profile costs: the hardened servers above run under it (`profile`, a project file). */
  readonly seccomp: {
    readonly profile: string;
    /** Start to first authenticated set/get, ms, under the profile and under Docker's default; withinNoise:
     * the medians differ by no more than the larger interquartile range of the two. */
    readonly ready: {
      readonly p50Ms: number;
      readonly p95Ms: number;
      readonly defaultP50Ms: number;
      readonly defaultP95Ms: number;
      readonly withinNoise: boolean;
    };
    readonly get: SeccompThroughput;
    readonly set: SeccompThroughput;
  };
  readonly suite?: { readonly seconds: number; readonly passed: boolean };
  /** Two bootstraps of the base in the same run: their image ids, and the id of the base the engine held. */
  readonly base?: {
    readonly firstSeconds: number;
    readonly secondSeconds: number;
    readonly firstId: string;
    readonly secondId: string;
    readonly enginesBaseId: string | undefined;
  };
}

const ratio = (pair: Pair, digits = 2) => `${(pair.measured / pair.reference).toFixed(digits)}×`;
const ops = (value: number) => `${Math.round(value)} ops/s`;
/** The median ratio of the rounds, with their range: on a small shared machine one round proves little. */
const ratioOfRounds = (t: Throughput) =>
  `${t.ratio.toFixed(3)}× (rounds ${t.ratioLow.toFixed(2)}–${t.ratioHigh.toFixed(2)})`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

const shortId = (id: string) => id.slice(7, 19);

function baseRow(base: NonNullable<BenchResults['base']>): string[] {
  const engines =
    base.enginesBaseId === undefined
      ? ''
      : `; the engine's base ${
          base.enginesBaseId === base.secondId ? 'has the same id' : `is ${shortId(base.enginesBaseId)}`
        }`;
  return [
    'Base bootstrapped twice (debootstrap, update suites)',
    `${base.secondSeconds.toFixed(0)} s, image ${shortId(base.secondId)}`,
    `first bootstrap ${base.firstSeconds.toFixed(0)} s, image ${shortId(base.firstId)}${engines}`,
    base.firstId === base.secondId ? 'same id' : 'DIFFERENT ids',
    'same id',
  ];
}

/** The figures of the running servers: start-to-ready, throughput, the handshake, the seccomp profile's cost. */
export type RunTimeFigures = Pick<BenchResults, 'ready' | 'memcslap' | 'nodeLoad' | 'handshake' | 'seccomp'>;

function runTimeRows(r: RunTimeFigures): string[][] {
  const slap = (name: string, t: Throughput) => [
    `Throughput, memcslap ${name} (native)`,
    `${ops(t.hardenedOpsPerSec)}, generator ${t.generatorCpuShare.toFixed(2)} cores`,
    `plain ${ops(t.plainOpsPerSec)}`,
    ratioOfRounds(t),
    '≥ 0.95×',
  ];
  const seccompSlap = (name: string, t: SeccompThroughput) => [
    `Throughput under \`${r.seccomp.profile}\`, memcslap ${name}`,
    ops(t.profileOpsPerSec),
    `Docker's default profile ${ops(t.defaultOpsPerSec)}`,
    `${t.ratio.toFixed(3)}× (rounds ${t.ratioLow.toFixed(2)}–${t.ratioHigh.toFixed(2)})`,
    '≥ 0.97×',
  ];
  const n = r.nodeLoad;
  const ready = r.seccomp.ready;
  return [
    [
      'Start to first authenticated set/get, p50 (p95)',
      `${r.ready.p50Ms.toFixed(1)} (${r.ready.p95Ms.toFixed(1)}) ms`,
      `plain ${r.ready.plainP50Ms.toFixed(1)} (${r.ready.plainP95Ms.toFixed(1)}) ms`,
      `${(r.ready.p50Ms / r.ready.plainP50Ms).toFixed(2)}×`,
      '≤ 1.25×',
    ],
    slap('get', r.memcslap.get),
    slap('set', r.memcslap.set),
    [
      'Throughput, Node generator (pipelined mix)',
      `${ops(n.hardenedOpsPerSec)}, batch p50 / p99 ${n.hardenedBatchP50Ms.toFixed(2)} / ` +
        `${n.hardenedBatchP99Ms.toFixed(2)} ms, generator ${n.generatorCpuShare.toFixed(2)} cores`,
      `plain ${ops(n.plainOpsPerSec)}, p50 / p99 ${n.plainBatchP50Ms.toFixed(2)} / ${n.plainBatchP99Ms.toFixed(2)} ms`,
      ratioOfRounds(n),
      '≥ 0.95×',
    ],
    [
      `Start to ready under \`${r.seccomp.profile}\`, p50 (p95)`,
      `${ready.p50Ms.toFixed(1)} (${ready.p95Ms.toFixed(1)}) ms`,
      `Docker's default profile ${ready.defaultP50Ms.toFixed(1)} (${ready.defaultP95Ms.toFixed(1)}) ms`,
      `${(ready.p50Ms / ready.defaultP50Ms).toFixed(2)}×, ${ready.withinNoise ? 'within noise' : 'OUTSIDE the noise'}`,
      'within noise',
    ],
    seccompSlap('get', r.seccomp.get),
    seccompSlap('set', r.seccomp.set),
    [
      'Connect + SASL + first get, p50 / p99',
      `${r.handshake.p50Ms.toFixed(2)} / ${r.handshake.p99Ms.toFixed(2)} ms`,
      '—',
      '—',
      '—',
    ],
  ];
}

/** What loaded the servers, for the note under a table. */
const loadNote = (r: RunTimeFigures) => `memcslap: ${r.memcslap.load}. Node generator: ${r.nodeLoad.load}.`;

/** `--run-time`'s table: the run-time rows of the bench table alone. */
export function renderRunTimeTable(profile: string, r: RunTimeFigures): string {
  return [
    `| Figure (${profile}, run-time figures only) | Measured | Reference (same run) | Ratio | Goal |`,
    '| --- | --- | --- | --- | --- |',
    ...runTimeRows(r).map((row) => `| ${row.join(' | ')} |`),
    '',
    loadNote(r),
  ].join('\n');
}

/** The bench table of docs/figures.md, every figure next to its same-run reference. */
export function renderTable(r: BenchResults): string {
  const rows = [
    [
      '`--help` (compiled CLI)',
      `${r.help.measured.toFixed(2)} s`,
      `bare \`node -e ''\` ${r.help.reference.toFixed(2)} s`,
      ratio(r.help),
      '< 0.5 s',
    ],
    [
      'First build, no cache (base present)',
      `${r.coldBuild.measured.toFixed(1)} s`,
      `docker build --no-cache ${r.coldBuild.reference.toFixed(1)} s`,
      ratio(r.coldBuild),
      '—',
    ],
    [
      'No-change rebuild, baked (same users file)',
      `${r.noChangeRebuild.measured.toFixed(3)} s, ` +
        `${r.noChangeRebuild.sameImage ? 'same image id' : 'NEW image id'}, ` +
        `${r.noChangeRebuild.layersRebuilt} layer(s) rebuilt`,
      `docker build, cached ${r.noChangeRebuild.reference.toFixed(3)} s`,
      ratio(r.noChangeRebuild),
      '≤ 1.5×',
    ],
    [
      'No-change rebuild, runtime credentials',
      `${r.noChangeRuntimeRebuild.measured.toFixed(3)} s, ` +
        (r.noChangeRuntimeRebuild.sameImage ? 'same image id' : 'NEW image id'),
      `docker build, cached ${r.noChangeRuntimeRebuild.reference.toFixed(3)} s`,
      ratio(r.noChangeRuntimeRebuild),
      '≤ 1.5×',
    ],
    [
      'Credentials-only rebuild',
      `${r.credentialRebuild.measured.toFixed(2)} s, ${r.credentialRebuild.layersRebuilt} layer(s) rebuilt` +
        (r.credentialRebuild.onlyTheLastLayer ? ' (the sasldb COPY)' : ''),
      `no-change rebuild ${r.credentialRebuild.reference.toFixed(2)} s`,
      ratio(r.credentialRebuild),
      '1 layer',
    ],
    [
      'Image size',
      mb(r.image.sizeBytes),
      `base ${mb(r.image.baseSizeBytes)}`,
      `+${mb(r.image.sizeBytes - r.image.baseSizeBytes)}`,
      '≤ +10 MB',
    ],
    ...runTimeRows(r),
    ...(r.base ? [baseRow(r.base)] : []),
    ...(r.suite
      ? [
          [
            'Integration suite (one profile, image given)',
            `${r.suite.seconds.toFixed(1)} s`,
            r.suite.passed ? 'passed' : 'FAILED',
            '—',
            '—',
          ],
        ]
      : []),
  ];
  return [
    `| Figure (${r.profile}, ${r.measuredAt.slice(0, 10)}, ${r.cpus} cores) ` +
      '| Measured | Reference (same run) | Ratio | Goal |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    'Rebuilds are what a user runs: `bin/memcached-hardened build` with the same users file ' +
      `(median of ${r.noChangeRebuild.runs} runs after one to settle), timed as a whole process, against the ` +
      `engine CLI on the same rendered context. ${loadNote(r)} Generator CPU shares are in cores of this ` +
      `${r.cpus}-core machine, which the server shares: a generator near the cores the server leaves it, ` +
      'not the server, set the pace.',
  ].join('\n');
}

/** One server variant of --reconcile: its median throughput, and its ratio to the reference's. */
export interface VariantRow {
  readonly name: string;
  readonly opsPerSec: number;
  /** variant / reference of each round: their median, lowest and highest. */
  readonly ratio: number;
  readonly low: number;
  readonly high: number;
  /** The server's CPU time per operation (median, µs), and variant / reference of it per round. */
  readonly cpuUsPerOp: number;
  readonly cpuRatio: number;
  readonly cpuLow: number;
  readonly cpuHigh: number;
}

/** --reconcile's table: each variant's throughput and its ratio to the first row's (the reference). */
export function renderVariants(rows: readonly VariantRow[], load: string): string {
  return [
    `| Variant (${load}) | memcslap, median | Ratio to the reference, median (rounds) | Server CPU per op | ` +
      'CPU ratio |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((row) => {
      const range = `${row.low.toFixed(2)}–${row.high.toFixed(2)}`;
      const cpu = `${row.cpuRatio.toFixed(3)}× (${row.cpuLow.toFixed(2)}–${row.cpuHigh.toFixed(2)})`;
      const throughput = `${ops(row.opsPerSec)} | ${row.ratio.toFixed(3)}× (${range})`;
      return `| ${row.name} | ${throughput} | ${row.cpuUsPerOp.toFixed(2)} µs | ${cpu} |`;
    }),
  ].join('\n');
}

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

/** The page (docs/figures.md) with its bench section replaced by `table`; unchanged if it has none. */
export function withBenchTable(readme: string, table: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) return readme;
  return `${readme.slice(0, start + START.length)}\n${table}\n${readme.slice(end)}`;
}

/** The newest results of the current shape in `dir` (file names start with the ISO time), if any. */
export function latestResults(dir: string, profile?: string): BenchResults | undefined {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json') && (profile === undefined || f.endsWith(`-${profile}.json`)))
    .sort()
    .reverse();
  for (const file of files) {
    const results = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { schema?: number };
    if (results.schema === RESULTS_SCHEMA) return results as BenchResults;
  }
  return undefined;
}
