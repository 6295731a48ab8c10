import type { KeyObject } from 'node:crypto';
import { badInput } from '../errors.js';
import { imageName, parseImageReference, tagOf } from '../image-reference.js';
import type { RegistryCredentials } from '../registry-credentials.js';
import { cosignLayers, cosignTag, DSSE_MEDIA_TYPE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE } from './cosign.js';
import {
  openEnvelope,
  PREDICATE_OPENVEX,
  PREDICATE_SBOM,
  PREDICATE_SECCOMP,
  PREDICATE_SLSA,
  PREDICATE_TEST_RESULT,
  readSimpleSigningPayload,
  statementNames,
  verifyBytes,
  type DsseEnvelope,
  type Statement,
} from './payloads.js';
import { RegistryClient } from './registry.js';

/** The attestations a release carries; verify-release requires each. */
export const REQUIRED_PREDICATES = [
  PREDICATE_SBOM,
  PREDICATE_SLSA,
  PREDICATE_TEST_RESULT,
  PREDICATE_OPENVEX,
  PREDICATE_SECCOMP,
] as const;

export interface AttestedFacts {
  readonly checksPassed?: number;
  readonly checksFailed?: number;
  readonly checksSkipped?: number;
  readonly testResult?: string;
  readonly suiteCommit?: string;
  readonly profile?: string;
  readonly credentials?: string;
  readonly sbomPackages?: number;
  readonly sourceCommit?: string;
  readonly builderVersion?: string;
  readonly baseImage?: string;
  /** The mutation check as the report tells it: 'not run', or its verdict and figures in one line. */
  readonly mutationCheck?: string;
  /** OpenVEX statements in all, and by status. */
  readonly vexStatements?: number;
  readonly vexByStatus?: Readonly<Record<string, number>>;
  /** The seccomp profile's file, default action and how many system calls it allows (conditionally or not). */
  readonly seccompFile?: string;
  readonly seccompDefaultAction?: string;
  readonly seccompAllowedSyscalls?: number;
}

interface SeccompRule {
  names?: unknown;
  action?: unknown;
}

/** The distinct system calls a rule with SCMP_ACT_ALLOW names (socket, allowed per family, counts once). */
export function allowedSyscalls(profile: { syscalls?: SeccompRule[] } | undefined): number | undefined {
  if (!Array.isArray(profile?.syscalls)) return undefined;
  const names = profile.syscalls
    .filter((rule) => rule?.action === 'SCMP_ACT_ALLOW' && Array.isArray(rule.names))
    .flatMap((rule) => rule.names as unknown[]);
  return new Set(names.filter((n) => typeof n === 'string')).size;
}

/** The mutation-check annotation in one line. */
function describeMutationCheck(value: unknown): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  const m = value as {
    result?: string;
    mutantsCaught?: unknown[];
    mutantsNotCaught?: unknown[];
    commit?: string;
    judgedImage?: string;
    sameBuildInputs?: boolean;
  };
  const caught = m.mutantsCaught?.length ?? 0;
  const all = caught + (m.mutantsNotCaught?.length ?? 0);
  const inputs = m.sameBuildInputs ? 'the same build inputs as this image' : 'OTHER build inputs than this image';
  return (
    `${m.result}, ${caught} of ${all} mutants caught, at ${m.commit}, on its own build ${m.judgedImage} ` +
    `(${inputs})`
  );
}

export interface ReleaseVerification {
  readonly reference: string;
  readonly digest: string;
  readonly ok: boolean;
  readonly signature: { readonly verified: boolean; readonly layers: number };
  readonly attestations: ReadonlyArray<{
    readonly predicateType: string;
    readonly verified: boolean;
    readonly problem?: string;
  }>;
  readonly attested: AttestedFacts;
  /** Why it does not hold, one line each; empty when ok. */
  readonly problems: readonly string[];
}

/** What the predicates say, read defensively (they are verified, but still data). */
export function attestedFacts(statements: readonly Statement[]): AttestedFacts {
  const of = (type: string) =>
    statements.find((s) => s.predicateType === type)?.predicate as Record<string, unknown> | undefined;
  const report = of(PREDICATE_TEST_RESULT) as
    | {
        result?: string;
        passedTests?: unknown[];
        failedTests?: unknown[];
        skippedTests?: unknown[];
        configuration?: Array<{ digest?: { gitCommit?: string }; annotations?: Record<string, unknown> }>;
      }
    | undefined;
  const sbom = of(PREDICATE_SBOM) as { components?: unknown[] } | undefined;
  const vex = of(PREDICATE_OPENVEX) as { statements?: Array<{ status?: unknown }> } | undefined;
  const seccomp = of(PREDICATE_SECCOMP) as
    { file?: string; profile?: { defaultAction?: string; syscalls?: SeccompRule[] } } | undefined;
  const vexByStatus: Record<string, number> = {};
  for (const s of Array.isArray(vex?.statements) ? vex.statements : []) {
    const status = String(s?.status);
    vexByStatus[status] = (vexByStatus[status] ?? 0) + 1;
  }
  const provenance = of(PREDICATE_SLSA) as
    | {
        buildDefinition?: {
          externalParameters?: { profile?: string };
          resolvedDependencies?: Array<{
            name?: string;
            digest?: Record<string, string>;
            annotations?: { source?: string };
          }>;
        };
        runDetails?: { builder?: { version?: Record<string, string> } };
      }
    | undefined;
  const deps = provenance?.buildDefinition?.resolvedDependencies ?? [];
  const source = deps.find((d) => d.name === 'source');
  const base = deps.find((d) => d.name !== 'source');
  const suite = report?.configuration?.[0];
  return {
    testResult: report?.result,
    checksPassed: report?.passedTests?.length,
    checksFailed: report?.failedTests?.length,
    checksSkipped: report?.skippedTests?.length,
    suiteCommit: suite?.digest?.gitCommit,
    profile:
      (suite?.annotations?.profile as string | undefined) ?? provenance?.buildDefinition?.externalParameters?.profile,
    credentials: suite?.annotations?.credentials as string | undefined,
    sbomPackages: sbom?.components?.length,
    sourceCommit: source?.digest?.gitCommit,
    builderVersion: provenance?.runDetails?.builder?.version?.['memcached-hardened'],
    // An image id, not a manifest digest: written `name (image id …)`, never `name@…`, which would claim one.
    baseImage: base
      ? `${base.name} (image id ${Object.entries(base.digest ?? {}).map(([a, h]) => `${a}:${h}`)[0] ?? '?'}` +
        `${base.annotations?.source ? `, ${base.annotations.source}` : ''})`
      : undefined,
    mutationCheck: describeMutationCheck(suite?.annotations?.mutationCheck),
    vexStatements: Array.isArray(vex?.statements) ? vex.statements.length : undefined,
    vexByStatus: vex ? vexByStatus : undefined,
    seccompFile: seccomp?.file,
    seccompDefaultAction: seccomp?.profile?.defaultAction,
    seccompAllowedSyscalls: allowedSyscalls(seccomp?.profile),
  };
}

/**
 * Checks a release as a consumer would: the reference's manifest digest, a cosign signature by `key`
 * naming this repository and digest, and every attestation under the `.att` tag signed by `key` and about
 * this digest, with every REQUIRED_PREDICATES type among them (SBOM, provenance, a PASSED verification
 * report, OpenVEX, seccomp profile).
 */
export async function verifyRelease(
  reference: string,
  key: KeyObject,
  credentials?: RegistryCredentials,
): Promise<ReleaseVerification> {
  let parsed;
  try {
    parsed = parseImageReference(reference);
  } catch (error) {
    throw badInput((error as Error).message);
  }
  if (!parsed.registry)
    throw badInput(`'${reference}' names no registry: use REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:…`);
  const repository = imageName(parsed);
  const client = new RegistryClient(parsed.registry, parsed.repository, credentials);
  const manifest = await client.getManifest(parsed.digest ?? tagOf(parsed));
  if (!manifest) throw badInput(`${reference}: no such manifest in the registry`);
  const digest = manifest.digest;
  const problems: string[] = [];

  const sigLayers = (await cosignLayers(client, cosignTag(digest, 'sig'))).filter(
    (l) => l.mediaType === SIMPLE_SIGNING_MEDIA_TYPE,
  );
  let signed = false;
  for (const layer of sigLayers) {
    const payload = await client.getBlob(layer.digest);
    const signature = Buffer.from(layer.annotations?.[SIGNATURE_ANNOTATION] ?? '', 'base64');
    const claims = readSimpleSigningPayload(payload);
    if (verifyBytes(key, payload, signature) && claims?.digest === digest && claims.repository === repository)
      signed = true;
  }
  if (!signed)
    problems.push(
      sigLayers.length === 0
        ? `no cosign signature (${cosignTag(digest, 'sig')})`
        : 'no signature by this key names this repository and digest',
    );

  const statements: Statement[] = [];
  const attestations: Array<{ predicateType: string; verified: boolean; problem?: string }> = [];
  for (const layer of await cosignLayers(client, cosignTag(digest, 'att'))) {
    const predicateType = layer.annotations?.predicateType ?? '(none)';
    let problem: string | undefined;
    if (layer.mediaType !== DSSE_MEDIA_TYPE) problem = `not a DSSE envelope (${layer.mediaType})`;
    else {
      let envelope: DsseEnvelope | undefined;
      try {
        envelope = JSON.parse((await client.getBlob(layer.digest)).toString('utf8')) as DsseEnvelope;
      } catch {
        problem = 'the envelope is not JSON';
      }
      const opened = envelope ? openEnvelope(key, envelope) : (problem ?? 'unreadable');
      if (typeof opened === 'string') problem = opened;
      else if (!statementNames(opened, digest)) problem = 'its subject is another digest';
      else if (opened.predicateType !== predicateType)
        problem = `annotated ${predicateType} but attests ${opened.predicateType}`;
      else statements.push(opened);
    }
    attestations.push({ predicateType, verified: problem === undefined, ...(problem ? { problem } : {}) });
    if (problem) problems.push(`attestation ${predicateType}: ${problem}`);
  }
  for (const type of REQUIRED_PREDICATES) {
    if (!statements.some((s) => s.predicateType === type)) problems.push(`no verified attestation of ${type}`);
  }
  const attested = attestedFacts(statements);
  if (statements.some((s) => s.predicateType === PREDICATE_TEST_RESULT) && attested.testResult !== 'PASSED') {
    problems.push(`the verification report says ${attested.testResult ?? 'nothing'}`);
  }
  return {
    reference,
    digest,
    ok: problems.length === 0,
    signature: { verified: signed, layers: sigLayers.length },
    attestations,
    attested,
    problems,
  };
}

/** The human-readable lines of a verification. */
export function describeVerification(v: ReleaseVerification): string[] {
  const a = v.attested;
  return [
    `${v.reference} → ${v.digest}`,
    `signature: ${v.signature.verified ? 'verified' : 'NOT verified'} ` +
      `(${v.signature.layers} in ${cosignTag(v.digest, 'sig')})`,
    ...v.attestations.map(
      (x) => `attestation ${x.predicateType}: ${x.verified ? 'verified' : `NOT verified (${x.problem})`}`,
    ),
    ...(a.testResult !== undefined
      ? [
          `verification report: ${a.testResult}, ${a.checksPassed ?? 0} checks passed, ` +
            `${a.checksFailed ?? 0} failed, ` +
            `${a.checksSkipped ?? 0} skipped; profile ${a.profile}, ${a.credentials} credentials, ` +
            `suite at ${a.suiteCommit}`,
          `mutation check: ${a.mutationCheck ?? 'not said'}`,
        ]
      : []),
    ...(a.sbomPackages !== undefined ? [`SBOM: ${a.sbomPackages} packages`] : []),
    ...(a.vexStatements !== undefined
      ? [
          `OpenVEX: ${a.vexStatements} statements (` +
            `${Object.entries(a.vexByStatus ?? {})
              .map(([status, n]) => `${n} ${status}`)
              .join(', ')})`,
        ]
      : []),
    ...(a.seccompFile !== undefined
      ? [
          `seccomp profile ${a.seccompFile}: default ${a.seccompDefaultAction}, ` +
            `${a.seccompAllowedSyscalls ?? 0} system calls allowed`,
        ]
      : []),
    ...(a.sourceCommit !== undefined
      ? [`provenance: source ${a.sourceCommit}, base ${a.baseImage}, built by memcached-hardened ${a.builderVersion}`]
      : []),
    v.ok ? 'OK: signature and every attestation hold' : `FAILED: ${v.problems.join('; ')}`,
  ];
}
