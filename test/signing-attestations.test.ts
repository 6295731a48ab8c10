import { describe, expect, it } from 'vitest';
import {
  provenancePredicate,
  releaseStatements,
  reportPredicate,
  withoutCredentials,
} from '../src/signing/attestations.js';
import { PREDICATE_SBOM, PREDICATE_SLSA, PREDICATE_TEST_RESULT } from '../src/signing/payloads.js';
import { attestedFacts } from '../src/signing/verify-release.js';

const digest = `sha256:${'12'.repeat(32)}`;
const provenance = {
  sourceCommit: 'a'.repeat(40),
  profile: 'ubuntu-16.04',
  target: 'server',
  credentials: 'runtime' as const,
  tls: false,
  allowFrom: [],
  buildArgs: { APT_MIRROR: 'https://user:s3cret-token@mirror.invalid/ubuntu' },
  baseImage: { name: 'ubuntu:16.04', id: `sha256:${'34'.repeat(32)}`, source: 'present' },
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
};

describe('attestation predicates', () => {
  it('provenance names source, base digest, builder and build args without credentials', () => {
    const text = JSON.stringify(provenancePredicate(provenance));
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

  it('three statements about the digest, and verify-release reads back what they attest', () => {
    const statements = releaseStatements(
      'r/m',
      digest,
      { bomFormat: 'CycloneDX', components: [{}, {}, {}] },
      provenance,
      report,
    );
    expect(statements.map((s) => s.predicateType)).toEqual([PREDICATE_SBOM, PREDICATE_SLSA, PREDICATE_TEST_RESULT]);
    expect(statements.every((s) => s.subject[0]?.digest.sha256 === '12'.repeat(32))).toBe(true);
    expect(attestedFacts(statements)).toMatchObject({
      testResult: 'PASSED',
      checksPassed: 2,
      checksSkipped: 1,
      sbomPackages: 3,
      sourceCommit: 'a'.repeat(40),
      suiteCommit: 'b'.repeat(40),
      builderVersion: '0.1.0',
      baseImage: `ubuntu:16.04@sha256:${'34'.repeat(32)}`,
      credentials: 'runtime',
    });
  });
});
