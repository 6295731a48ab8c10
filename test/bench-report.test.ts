import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseChildCpuSeconds, parseMemcslap } from '../bench/memcslap.js';
import {
  latestResults,
  renderRunTimeTable,
  renderTable,
  renderVariants,
  RESULTS_SCHEMA,
  withBenchTable,
  type BenchResults,
} from '../bench/report.js';

// Made-up figures: these tests check the rendering, never what a build or a server achieves.
const throughput = {
  hardenedOpsPerSec: 100,
  plainOpsPerSec: 200,
  ratio: 0.5,
  ratioLow: 0.41,
  ratioHigh: 0.623,
  generatorCpuShare: 1.5,
};
const results: BenchResults = {
  schema: RESULTS_SCHEMA,
  profile: 'ubuntu-16.04',
  measuredAt: '2026-01-02T03:04:05.000Z',
  cpus: 2,
  help: { measured: 0.2, reference: 0.1 },
  coldBuild: { measured: 40, reference: 20 },
  noChangeRebuild: { measured: 0.3, reference: 0.2, sameImage: true, layersRebuilt: 0, runs: 5 },
  noChangeRuntimeRebuild: { measured: 0.12, reference: 0.1, sameImage: false, runs: 5 },
  credentialRebuild: { measured: 3, reference: 0.3, layersRebuilt: 1, onlyTheLastLayer: true },
  image: { sizeBytes: 106e6, baseSizeBytes: 101e6 },
  ready: { p50Ms: 300, p95Ms: 350, plainP50Ms: 250, plainP95Ms: 300, starts: 9 },
  memcslap: { get: throughput, set: throughput, load: 'L1' },
  nodeLoad: {
    ...throughput,
    hardenedBatchP50Ms: 1,
    hardenedBatchP99Ms: 2,
    plainBatchP50Ms: 1,
    plainBatchP99Ms: 2,
    errors: 0,
    load: 'L2',
  },
  handshake: { p50Ms: 0.5, p99Ms: 1.5 },
  seccomp: {
    profile: 'seccomp/ubuntu-16.04.json',
    ready: { p50Ms: 310, p95Ms: 360, defaultP50Ms: 300, defaultP95Ms: 340, withinNoise: true },
    get: { profileOpsPerSec: 97, defaultOpsPerSec: 100, ratio: 0.97, ratioLow: 0.921, ratioHigh: 1.014 },
    set: { profileOpsPerSec: 90, defaultOpsPerSec: 100, ratio: 0.9, ratioLow: 0.85, ratioHigh: 0.95 },
  },
};

describe('the bench report', () => {
  it('renders every figure next to its reference and ratio', () => {
    const table = renderTable(results);
    expect(table).toContain(
      '| No-change rebuild, baked (same users file) | 0.300 s, same image id, 0 layer(s) rebuilt ' +
        '| docker build, cached 0.200 s | 1.50× | ≤ 1.5× |',
    );
    expect(table).toContain(
      '| No-change rebuild, runtime credentials | 0.120 s, NEW image id ' +
        '| docker build, cached 0.100 s | 1.20× | ≤ 1.5× |',
    );
    expect(table).toContain('1 layer(s) rebuilt (the sasldb COPY)');
    expect(table).toContain(
      '| Throughput, memcslap get (native) | 100 ops/s, generator 1.50 cores | plain 200 ops/s ' +
        '| 0.500× (rounds 0.41–0.62) | ≥ 0.95× |',
    );
    expect(table).toContain(
      "| Start to ready under `seccomp/ubuntu-16.04.json`, p50 (p95) | 310.0 (360.0) ms | Docker's default profile " +
        '300.0 (340.0) ms | 1.03×, within noise | within noise |',
    );
    expect(table).toContain(
      "| Throughput under `seccomp/ubuntu-16.04.json`, memcslap get | 97 ops/s | Docker's default profile " +
        '100 ops/s | 0.970× (rounds 0.92–1.01) | ≥ 0.97× |',
    );
    expect(table).toContain("set | 90 ops/s | Docker's default profile 100 ops/s | 0.900× (rounds 0.85–0.95) |");
    const slower = { ...results.seccomp, ready: { ...results.seccomp.ready, withinNoise: false } };
    expect(renderTable({ ...results, seccomp: slower })).toContain('| 1.03×, OUTSIDE the noise | within noise |');
    expect(table).not.toContain('Integration suite');
    const runTime = renderRunTimeTable('ubuntu-16.04', results);
    expect(runTime).toContain('| Figure (ubuntu-16.04, run-time figures only) |');
    expect(runTime).toContain('| 1.03×, within noise | within noise |');
    expect(runTime).toContain('memcslap: L1. Node generator: L2.');
    expect(runTime).not.toContain('rebuild');
    expect(table).not.toContain('Base bootstrapped');
    const base = {
      firstSeconds: 61.2,
      secondSeconds: 59.6,
      firstId: `sha256:${'a'.repeat(64)}`,
      secondId: `sha256:${'a'.repeat(64)}`,
      enginesBaseId: `sha256:${'a'.repeat(64)}`,
    };
    expect(renderTable({ ...results, base })).toContain(
      '| Base bootstrapped twice (debootstrap, update suites) | 60 s, image aaaaaaaaaaaa ' +
        "| first bootstrap 61 s, image aaaaaaaaaaaa; the engine's base has the same id | same id | same id |",
    );
    expect(
      renderTable({ ...results, base: { ...base, secondId: `sha256:${'b'.repeat(64)}`, enginesBaseId: undefined } }),
    ).toContain('| 60 s, image bbbbbbbbbbbb | first bootstrap 61 s, image aaaaaaaaaaaa | DIFFERENT ids | same id |');
    expect(renderTable({ ...results, suite: { seconds: 70, passed: false } })).toContain(
      '| Integration suite (one profile, image given) | 70.0 s | FAILED |',
    );
  });

  it("renders --reconcile's variants, each against the reference round by round", () => {
    const cpu = (cpuUsPerOp: number, cpuRatio: number, cpuLow: number, cpuHigh: number) => ({
      cpuUsPerOp,
      cpuRatio,
      cpuLow,
      cpuHigh,
    });
    const rows = [
      { name: 'plain (reference)', opsPerSec: 1000.4, ratio: 1, low: 1, high: 1, ...cpu(10, 1, 1, 1) },
      { name: 'plain + -v', opsPerSec: 930, ratio: 0.93, low: 0.884, high: 0.951, ...cpu(11.5, 1.15, 1.1, 1.2) },
    ];
    expect(renderVariants(rows, 'set 4 x 25000').split('\n')).toEqual([
      '| Variant (set 4 x 25000) | memcslap, median | Ratio to the reference, median (rounds) | Server CPU per op | ' +
        'CPU ratio |',
      '| --- | --- | --- | --- | --- |',
      '| plain (reference) | 1000 ops/s | 1.000× (1.00–1.00) | 10.00 µs | 1.000× (1.00–1.00) |',
      '| plain + -v | 930 ops/s | 0.930× (0.88–0.95) | 11.50 µs | 1.150× (1.10–1.20) |',
    ]);
  });

  it('replaces only the section between the markers', () => {
    const readme = 'intro\n<!-- bench:start -->\nold\n<!-- bench:end -->\noutro\n';
    expect(withBenchTable(readme, 'new')).toBe('intro\n<!-- bench:start -->\nnew\n<!-- bench:end -->\noutro\n');
    expect(withBenchTable('no markers', 'new')).toBe('no markers');
  });

  it('reads the newest results of the current shape for a profile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mh-bench-report-'));
    try {
      writeFileSync(
        join(dir, '2026-01-01T00-00-00-000Z-ubuntu-16.04.json'),
        JSON.stringify({ ...results, measuredAt: 'first' }),
      );
      writeFileSync(
        join(dir, '2026-01-02T00-00-00-000Z-ubuntu-16.04.json'),
        JSON.stringify({ ...results, measuredAt: 'second' }),
      );
      writeFileSync(join(dir, '2026-01-03T00-00-00-000Z-ubuntu-16.04.json'), JSON.stringify({ schema: 1 }));
      writeFileSync(
        join(dir, '2026-01-04T00-00-00-000Z-debian-12.json'),
        JSON.stringify({ ...results, profile: 'debian-12' }),
      );
      expect(latestResults(dir, 'ubuntu-16.04')?.measuredAt).toBe('second');
      expect(latestResults(dir)?.profile).toBe('debian-12');
      expect(latestResults(dir, 'other')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('memcslap output', () => {
  const output = [
    'Time to generate      20000 test keys:                0.075 seconds.',
    'Time to set           20000 keys:                     0.896 seconds.',
    'Time to start             4 threads:                  0.000 seconds.',
    '--------------------------------------------------------------------',
    'Time to get           78332 keys by    4 threads:     2.351 seconds.',
    '--------------------------------------------------------------------',
    'Time total:                                           3.321 seconds.',
    '0m0.000000s 0m0.020000s',
    '1m0.250000s 0m2.040000s',
  ].join('\n');

  it('gives the timed test, the total, and the CPU time of the shell children', () => {
    expect(parseMemcslap(output, 'get', 78332)).toEqual({ keys: 78332, seconds: 2.351, totalSeconds: 3.321 });
    expect(parseChildCpuSeconds(output)).toBeCloseTo(62.29, 5);
    expect(() => parseMemcslap(output, 'set', 78332)).toThrow(/no set timing/);
    expect(() => parseMemcslap(output.replace('78332', '0'), 'get', 78332)).toThrow(/completed no get/);
  });

  it('refuses a run in which not every key counted (memcslap counts only the gets that hit)', () => {
    expect(() => parseMemcslap(output, 'get', 80000)).toThrow(
      "memcslap's get counted 78332 of 80000 keys: the server did not hold the working set",
    );
    expect(() => parseChildCpuSeconds('0m0.0s 0m0.0s')).toThrow(/times/);
  });
});
