import type { KeyObject } from 'node:crypto';
import { badInput } from '../errors.js';
import { imageName, parseImageReference, tagOf } from '../image-reference.js';
import type { RegistryCredentials } from '../registry-credentials.js';
import { cosignLayers, cosignTag, DSSE_MEDIA_TYPE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE } from './cosign.js';
import {
  openEnvelope,
  PREDICATE_SBOM,
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
export const REQUIRED_PREDICATES = [PREDICATE_SBOM, PREDICATE_SLSA, PREDICATE_TEST_RESULT] as const;

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

/** What the three predicates say, read defensively (they are verified, but still data). */
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
  const provenance = of(PREDICATE_SLSA) as
    | {
        buildDefinition?: {
          externalParameters?: { profile?: string };
          resolvedDependencies?: Array<{ name?: string; digest?: Record<string, string> }>;
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
    baseImage: base
      ? `${base.name}@${Object.entries(base.digest ?? {}).map(([a, h]) => `${a}:${h}`)[0] ?? '?'}`
      : undefined,
  };
}

/**
 * Checks a release as a consumer would: the reference's manifest digest, a cosign signature by `key`
 * naming this repository and digest, and every attestation under the `.att` tag signed by `key` and about
 * this digest, with the SBOM, the provenance and a PASSED verification report among them.
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
        ]
      : []),
    ...(a.sbomPackages !== undefined ? [`SBOM: ${a.sbomPackages} packages`] : []),
    ...(a.sourceCommit !== undefined
      ? [`provenance: source ${a.sourceCommit}, base ${a.baseImage}, built by memcached-hardened ${a.builderVersion}`]
      : []),
    v.ok ? 'OK: signature and every attestation hold' : `FAILED: ${v.problems.join('; ')}`,
  ];
}
