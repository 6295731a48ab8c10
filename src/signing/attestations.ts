import type { SuiteCheck } from '../verify.js';
import {
  PREDICATE_OPENVEX,
  PREDICATE_SBOM,
  PREDICATE_SECCOMP,
  PREDICATE_SLSA,
  PREDICATE_TEST_RESULT,
  sha256,
  statement,
  type Statement,
} from './payloads.js';

/**
 * The five predicates a release attests, as pure functions of what the release knows: the CycloneDX SBOM,
 * SLSA provenance v1, the verification report (in-toto's test-result predicate), the OpenVEX document of
 * the suite's run and the seccomp profile the image is meant to run under.
 */

/** Identifies this tool as the builder and the build type (URNs: no host of ours to name). */
export const BUILDER_ID = 'urn:memcached-hardened:builder';
export const BUILD_TYPE = 'urn:memcached-hardened:build:v1';
export const SUITE_ID = 'urn:memcached-hardened:verification-suite';

/** A URL with any user:password@ taken out: build arguments are attested, credentials never. */
export function withoutCredentials(value: string): string {
  try {
    const url = new URL(value);
    if (!url.username && !url.password) return value;
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return value;
  }
}

export interface ProvenanceFacts {
  readonly sourceCommit: string;
  readonly profile: string;
  readonly target: string;
  readonly credentials: 'baked' | 'runtime';
  readonly tls: boolean;
  readonly allowFrom: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
  /**
   * The base image's name and its image id (`sha256:…`, the digest of its image config) as the engine held
   * it: a bootstrapped base was never in a registry, so it has no manifest digest to name.
   */
  readonly baseImage: { readonly name: string; readonly id: string; readonly source: string };
  readonly builderVersion: string;
  /** The image id the suite judged. */
  readonly imageId: string;
  readonly startedOn: Date;
  readonly finishedOn: Date;
}

export function provenancePredicate(facts: ProvenanceFacts): object {
  const buildArgs = Object.fromEntries(Object.entries(facts.buildArgs).map(([k, v]) => [k, withoutCredentials(v)]));
  return {
    buildDefinition: {
      buildType: BUILD_TYPE,
      externalParameters: {
        profile: facts.profile,
        target: facts.target,
        credentials: facts.credentials,
        tls: facts.tls,
        allowFrom: [...facts.allowFrom],
        buildArgs,
      },
      internalParameters: { imageId: facts.imageId, baseSource: facts.baseImage.source },
      resolvedDependencies: [
        { name: 'source', digest: { gitCommit: facts.sourceCommit } },
        {
          name: facts.baseImage.name,
          digest: digestMap(facts.baseImage.id),
          annotations: {
            digestOf: 'image config (the engine image id), not a registry manifest',
            source: facts.baseImage.source,
          },
        },
      ],
    },
    runDetails: {
      builder: { id: BUILDER_ID, version: { 'memcached-hardened': facts.builderVersion } },
      metadata: { startedOn: facts.startedOn.toISOString(), finishedOn: facts.finishedOn.toISOString() },
    },
  };
}

function digestMap(id: string): Record<string, string> {
  const [algorithm, hex] = id.split(':');
  return algorithm && hex ? { [algorithm]: hex } : {};
}

export interface ReportFacts {
  readonly imageId: string;
  readonly profile: string;
  readonly credentials: 'baked' | 'runtime';
  readonly tls: boolean;
  /** The commit of the suite that ran ('unknown' outside a checkout). */
  readonly suiteCommit: string;
  readonly files: readonly string[];
  readonly checks: readonly SuiteCheck[];
  /** 'not run', or what src/signing/mutation-result.ts says of the mutation check's result. */
  readonly mutationCheck: string | Readonly<Record<string, unknown>>;
}

const checkName = (c: SuiteCheck) => `${c.file} > ${c.name}`;

/** in-toto test-result v0.1: PASSED only when checks ran and none failed. */
export function reportPredicate(facts: ReportFacts): object {
  const by = (status: string) => facts.checks.filter((c) => c.status === status).map(checkName);
  const failed = by('failed');
  const passed = by('passed');
  return {
    result: failed.length === 0 && passed.length > 0 ? 'PASSED' : 'FAILED',
    configuration: [
      {
        name: 'verification suite',
        uri: SUITE_ID,
        digest: { gitCommit: facts.suiteCommit },
        annotations: {
          imageId: facts.imageId,
          profile: facts.profile,
          credentials: facts.credentials,
          tls: facts.tls,
          files: [...facts.files],
          mutationCheck: facts.mutationCheck,
        },
      },
    ],
    passedTests: passed,
    warnedTests: [],
    failedTests: failed,
    // Not a verdict either way: what the suite reported as skipped or todo, so nothing is silently left out.
    skippedTests: facts.checks.filter((c) => c.status !== 'passed' && c.status !== 'failed').map(checkName),
  };
}

/** The seccomp profile as the image's build wrote it, and its name in the project (seccomp/<name>.json). */
export interface SeccompFacts {
  readonly file: string;
  readonly bytes: Buffer;
}

/** The profile itself (parsed: it is JSON), named, with the digest of the exact file. */
export function seccompPredicate(facts: SeccompFacts): object {
  const profile = JSON.parse(facts.bytes.toString('utf8')) as unknown;
  return { file: facts.file, digest: digestMap(sha256(facts.bytes)), profile };
}

/** What a release attaches as written: the SBOM and the OpenVEX document (parsed), the seccomp profile. */
export interface Attached {
  readonly sbom: unknown;
  readonly vex: unknown;
  readonly seccomp: SeccompFacts;
}

/** The five statements about one pushed manifest. */
export function releaseStatements(
  repository: string,
  digest: string,
  attached: Attached,
  provenance: ProvenanceFacts,
  report: ReportFacts,
): Statement[] {
  return [
    statement(repository, digest, PREDICATE_SBOM, attached.sbom),
    statement(repository, digest, PREDICATE_SLSA, provenancePredicate(provenance)),
    statement(repository, digest, PREDICATE_TEST_RESULT, reportPredicate(report)),
    statement(repository, digest, PREDICATE_OPENVEX, attached.vex),
    statement(repository, digest, PREDICATE_SECCOMP, seccompPredicate(attached.seccomp)),
  ];
}
