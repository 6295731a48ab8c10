import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectPath } from '../src/paths.js';
import {
  provenancePredicate,
  releaseStatements,
  reportPredicate,
  withoutCredentials,
} from '../src/signing/attestations.js';
import { readAttached, suiteVex, vexIsAbout, vexProduct } from '../src/signing/evidence.js';
import {
  MUTATION_RESULT_KIND,
  mutationCheckAnnotation,
  parseMutationResult,
  readMutationRun,
  type MutationResult,
} from '../src/signing/mutation-result.js';
import {
  PREDICATE_OPENVEX,
  PREDICATE_SBOM,
  PREDICATE_SECCOMP,
  PREDICATE_SLSA,
  PREDICATE_TEST_RESULT,
} from '../src/signing/payloads.js';
import { allowedSyscalls, attestedFacts, REQUIRED_PREDICATES } from '../src/signing/verify-release.js';

const scratch = mkdtempSync(join(tmpdir(), 'mh-attestations-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const digest = `sha256:${'12'.repeat(32)}`;
const provenance = {
  sourceCommit: 'a'.repeat(40),
  profile: 'ubuntu-16.04',
  target: 'server',
  credentials: 'runtime' as const,
  tls: false,
  allowFrom: [],
  buildArgs: { APT_MIRROR: 'https://user:s3cret-token@mirror.invalid/ubuntu' },
  baseImage: { name: 'ubuntu:16.04', id: `sha256:${'34'.repeat(32)}`, source: 'bootstrapped' },
  builderVersion: '0.1.0',
  imageId: `sha256:${'56'.repeat(32)}`,
  startedOn: new Date(0),
  finishedOn: new Date(1000),
};
const report = {
  imageId: provenance.imageId,
  profile: 'ubuntu-16.04',
  credentials: 'runtime' as const,
  tls: false,
  suiteCommit: 'b'.repeat(40),
  files: ['test/integration/smoke.test.ts'],
  checks: [
    { file: 'test/integration/smoke.test.ts', name: 'starts', status: 'passed' },
    { file: 'test/integration/smoke.test.ts', name: 'answers', status: 'passed' },
    { file: 'test/integration/smoke.test.ts', name: 'later', status: 'skipped' },
  ],
  mutationCheck: 'not run',
};
const commit = 'c'.repeat(40);
const mutationResult: MutationResult = {
  kind: MUTATION_RESULT_KIND,
  commit,
  finishedOn: '2026-01-01T00:00:00.000Z',
  runs: [
    {
      profile: 'ubuntu-16.04',
      imageId: `sha256:${'78'.repeat(32)}`,
      inputs: `sha256:${'9a'.repeat(32)}`,
      realImagePassed: true,
      mutants: [
        { name: 'udp-on', weakness: 'UDP enabled', caught: true, outcome: 'caught by udp' },
        { name: 'listen-any', weakness: 'listens on 0.0.0.0', caught: false, outcome: 'NOT caught' },
      ],
    },
  ],
};
/** The project's own seccomp profile, as build writes it. */
const seccompBytes = readFileSync(projectPath('seccomp', 'ubuntu-16.04.json'));
const vex = {
  '@context': 'https://openvex.dev/ns/v0.2.0',
  statements: [
    { products: [{ '@id': vexProduct(provenance.imageId) }], status: 'not_affected' },
    { products: [{ '@id': vexProduct(provenance.imageId) }], status: 'not_affected' },
    { products: [{ '@id': vexProduct(provenance.imageId) }], status: 'affected' },
  ],
};

describe('attestation predicates', () => {
  it('provenance names source, base digest, builder and build args without credentials', () => {
    const predicate = provenancePredicate(provenance) as {
      buildDefinition: { resolvedDependencies: Array<{ name: string; digest: object; annotations?: object }> };
    };
    // The bootstrapped base has no manifest digest: its image id is named as what it is.
    expect(predicate.buildDefinition.resolvedDependencies[1]).toEqual({
      name: 'ubuntu:16.04',
      digest: { sha256: '34'.repeat(32) },
      annotations: { digestOf: 'image config (the engine image id), not a registry manifest', source: 'bootstrapped' },
    });
    const text = JSON.stringify(predicate);
    expect(text).not.toContain('s3cret-token');
    expect(text).not.toContain('user:');
    expect(text).toContain('https://mirror.invalid/ubuntu');
    expect(withoutCredentials('http://plain.invalid/x')).toBe('http://plain.invalid/x');
    expect(withoutCredentials('not a url')).toBe('not a url');
  });

  it('the report lists every check with its verdict; a failed one makes it FAILED', () => {
    const passed = reportPredicate(report) as {
      result: string;
      passedTests: string[];
      failedTests: string[];
      skippedTests: string[];
    };
    expect(passed.result).toBe('PASSED');
    expect(passed.passedTests).toEqual([
      'test/integration/smoke.test.ts > starts',
      'test/integration/smoke.test.ts > answers',
    ]);
    expect(passed.skippedTests).toEqual(['test/integration/smoke.test.ts > later']);
    const failed = reportPredicate({
      ...report,
      checks: [...report.checks, { file: 'f', name: 'n', status: 'failed' }],
    }) as { result: string };
    expect(failed.result).toBe('FAILED');
    expect((reportPredicate({ ...report, checks: [] }) as { result: string }).result).toBe('FAILED');
  });

  it('five statements about the digest, and verify-release reads back what they attest', () => {
    const statements = releaseStatements(
      'r/m',
      digest,
      {
        sbom: { bomFormat: 'CycloneDX', components: [{}, {}, {}] },
        vex,
        seccomp: { file: 'seccomp/ubuntu-16.04.json', bytes: seccompBytes },
      },
      provenance,
      { ...report, mutationCheck: mutationCheckAnnotation({ ...mutationResult, run: mutationResult.runs[0]! }, 'x') },
    );
    expect(statements.map((s) => s.predicateType)).toEqual([
      PREDICATE_SBOM,
      PREDICATE_SLSA,
      PREDICATE_TEST_RESULT,
      PREDICATE_OPENVEX,
      PREDICATE_SECCOMP,
    ]);
    expect([...REQUIRED_PREDICATES].sort()).toEqual(statements.map((s) => s.predicateType).sort());
    expect(statements.every((s) => s.subject[0]?.digest.sha256 === '12'.repeat(32))).toBe(true);
    expect(attestedFacts(statements)).toMatchObject({
      testResult: 'PASSED',
      checksPassed: 2,
      checksSkipped: 1,
      sbomPackages: 3,
      sourceCommit: 'a'.repeat(40),
      suiteCommit: 'b'.repeat(40),
      builderVersion: '0.1.0',
      baseImage: `ubuntu:16.04 (image id sha256:${'34'.repeat(32)}, bootstrapped)`,
      credentials: 'runtime',
      vexStatements: 3,
      vexByStatus: { not_affected: 2, affected: 1 },
      seccompFile: 'seccomp/ubuntu-16.04.json',
      seccompDefaultAction: 'SCMP_ACT_ERRNO',
      seccompAllowedSyscalls: allowedSyscalls(JSON.parse(seccompBytes.toString()) as never),
    });
    expect(attestedFacts(statements).mutationCheck).toBe(
      `FAILED, 1 of 2 mutants caught, at ${commit}, on its own build ${mutationResult.runs[0]!.imageId} ` +
        '(OTHER build inputs than this image)',
    );
    // The seccomp predicate carries the exact file: its digest is that of the bytes build wrote.
    const seccomp = statements[4]!.predicate as { digest: { sha256: string }; profile: unknown };
    expect(seccomp.profile).toEqual(JSON.parse(seccompBytes.toString()));
  });

  it('counts each allowed system call once (socket is allowed per family), denied rules not at all', () => {
    const profile = {
      syscalls: [
        { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
        { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1 }] },
        { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2 }] },
        { names: ['clone3'], action: 'SCMP_ACT_ERRNO' },
      ],
    };
    expect(allowedSyscalls(profile)).toBe(3);
    expect(allowedSyscalls({})).toBeUndefined();
  });
});

describe('the mutation check in the verification report', () => {
  const file = join(scratch, 'mutation.json');
  writeFileSync(file, JSON.stringify(mutationResult));

  it('is "not run" without a result, and says whether the judged image had the released build inputs', () => {
    expect(mutationCheckAnnotation(undefined, 'x')).toBe('not run');
    const read = readMutationRun(file, 'ubuntu-16.04', commit);
    const same = mutationCheckAnnotation(read, mutationResult.runs[0]!.inputs) as Record<string, unknown>;
    expect(same).toMatchObject({
      result: 'FAILED',
      sameBuildInputs: true,
      mutantsCaught: ['udp-on'],
      mutantsNotCaught: ['listen-any'],
      judgedImage: mutationResult.runs[0]!.imageId,
    });
    expect(mutationCheckAnnotation(read, `sha256:${'00'.repeat(32)}`)).toMatchObject({ sameBuildInputs: false });
    expect(mutationCheckAnnotation(read, undefined)).toMatchObject({ sameBuildInputs: false });
  });

  it('refuses a result of another commit, without the profile, or not a result, with one line', () => {
    expect(() => readMutationRun(file, 'ubuntu-16.04', 'd'.repeat(40))).toThrow(
      /^--mutation-result .*: it ran at commit c{40}, this release builds d{40}$/,
    );
    expect(() => readMutationRun(file, 'ubuntu-16.04', undefined)).toThrow(/this release builds no commit/);
    expect(() => readMutationRun(file, 'debian-12', commit)).toThrow(/no run of profile debian-12$/);
    expect(() => readMutationRun(join(scratch, 'absent'), 'ubuntu-16.04', commit)).toThrow(/cannot read it \(ENOENT\)/);
    expect(() => parseMutationResult('{', 'f')).toThrow(/^--mutation-result f: not JSON$/);
    expect(() => parseMutationResult('{"kind":"other"}', 'f')).toThrow(/not a mutation check result/);
    const broken = { ...mutationResult, runs: [{ ...mutationResult.runs[0], mutants: [{ name: 'x' }] }] };
    expect(() => parseMutationResult(JSON.stringify(broken), 'f')).toThrow(/malformed/);
  });
});

describe("the run's OpenVEX document", () => {
  it('is the newest one since the suite started that is about this image id', () => {
    const dir = mkdtempSync(join(scratch, 'reports-'));
    const imageId = provenance.imageId;
    const other = { ...vex, statements: [{ products: [{ '@id': vexProduct(`sha256:${'ee'.repeat(32)}`) }] }] };
    expect(vexIsAbout(vex, imageId)).toBe(true);
    expect(vexIsAbout(other, imageId)).toBe(false);
    expect(vexIsAbout({ statements: [] }, imageId)).toBe(false);
    const since = new Date(Date.now() - 60_000);
    expect(() => suiteVex(imageId, since, dir)).toThrow(/wrote no OpenVEX document about sha256:5656/);
    const write = (name: string, document: unknown, at: Date) => {
      writeFileSync(join(dir, name), JSON.stringify(document));
      utimesSync(join(dir, name), at, at);
    };
    // An older run's document about the same image is not this run's evidence.
    write('vex-old-ubuntu-16.04-runtime.json', { ...vex, '@id': 'old' }, new Date(since.getTime() - 1000));
    write('vex-new-ubuntu-16.04-runtime.json', other, new Date());
    expect(() => suiteVex(imageId, since, dir)).toThrow(/wrote no OpenVEX document/);
    write('vex-run-ubuntu-16.04-runtime.json', { ...vex, '@id': 'this run' }, new Date());
    expect(suiteVex(imageId, since, dir)).toMatchObject({ '@id': 'this run' });

    // With the build's SBOM and seccomp copy: what the release attaches, the profile named as in the project.
    const sbom = join(dir, 'image.cdx.json');
    const seccompProfile = join(dir, 'image.seccomp.json');
    writeFileSync(sbom, JSON.stringify({ bomFormat: 'CycloneDX' }));
    writeFileSync(seccompProfile, seccompBytes);
    const result = { imageId, profile: 'ubuntu-16.04' } as never;
    const attached = readAttached({ result, sbom, seccompProfile }, true, since, dir);
    expect(attached).toMatchObject({ sbom: { bomFormat: 'CycloneDX' }, vex: { '@id': 'this run' } });
    expect(attached.seccomp).toEqual({ file: 'seccomp/ubuntu-16.04-tls.json', bytes: seccompBytes });
    expect(() => readAttached({ result, seccompProfile }, false, since, dir)).toThrow(/^the SBOM of sha256:5656/);
    expect(() => readAttached({ result, sbom }, false, since, dir)).toThrow(/^the seccomp profile of sha256:5656/);
  });
});
