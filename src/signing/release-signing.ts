import type { KeyObject } from 'node:crypto';
import type { Progress } from '../base.js';
import type { ReleaseConfig, ReleaseSigning } from '../config.js';
import { failure } from '../errors.js';
import type { ImageReference } from '../image-reference.js';
import type { Built } from '../outputs.js';
import { projectPath } from '../paths.js';
import type { RegistryCredentials } from '../registry-credentials.js';
import { headCommit, toolVersion } from '../source.js';
import type { SuiteCheck } from '../verify.js';
import { releaseStatements, type Attached, type ReportFacts } from './attestations.js';
import { publishAttestations, publishSignature } from './cosign.js';
import { gpgSign } from './gpg.js';
import { RegistryClient } from './registry.js';

export interface SignRequest {
  readonly config: ReleaseConfig;
  readonly reference: ImageReference;
  /** registry/repo */
  readonly repository: string;
  readonly digest: string;
  readonly key: KeyObject;
  readonly auth?: RegistryCredentials;
  readonly built: Built;
  readonly checks: readonly SuiteCheck[];
  /** The SBOM, the run's VEX and the seccomp profile, read before the push. */
  readonly attached: Attached;
  readonly mutationCheck: ReportFacts['mutationCheck'];
  readonly suiteFiles: readonly string[];
  readonly sourceCommit: string;
  readonly baseImageId: string;
  readonly startedOn: Date;
  readonly finishedOn: Date;
  readonly gpg?: Extract<ReleaseSigning, { kind: 'key' }>['gpg'];
  readonly progress: Progress;
}

/** Where a release's signatures went. */
export interface ReleaseSignatures {
  /** REPO:sha256-<hex>.sig */
  readonly signature: string;
  /** REPO:sha256-<hex>.att */
  readonly attestations: string;
  readonly predicateTypes: readonly string[];
  /** The GPG simple signature's file in the lookaside folder, when one was asked for. */
  readonly gpgSignature?: string;
}

/** Signs and attests the pushed digest (and GPG-signs it when asked): the release's last step. */
export async function signRelease(request: SignRequest): Promise<ReleaseSignatures> {
  const { reference, repository, digest, key, config, built } = request;
  const client = new RegistryClient(reference.registry!, reference.repository, request.auth);
  const signature = await publishSignature(client, repository, digest, key);
  request.progress(`[sign] cosign signature of ${digest} stored as ${repository}:${signature.tag}`);
  const credentials = config.credentials;
  const statements = releaseStatements(
    repository,
    digest,
    request.attached,
    {
      sourceCommit: request.sourceCommit,
      profile: config.profile,
      target: config.target,
      credentials,
      tls: config.tls,
      allowFrom: config.allowFrom,
      buildArgs: config.aptMirror ? { APT_MIRROR: config.aptMirror } : {},
      baseImage: { name: built.result.base, id: request.baseImageId, source: built.result.baseSource },
      builderVersion: toolVersion(),
      imageId: built.result.imageId,
      startedOn: request.startedOn,
      finishedOn: request.finishedOn,
    },
    {
      imageId: built.result.imageId,
      profile: config.profile,
      credentials,
      tls: config.tls,
      suiteCommit: headCommit(projectPath()) ?? 'unknown',
      files: request.suiteFiles,
      checks: request.checks,
      mutationCheck: request.mutationCheck,
    },
  );
  const attestations = await publishAttestations(client, digest, statements, key);
  request.progress(`[sign] ${statements.length} attestations of ${digest} stored as ${repository}:${attestations.tag}`);
  let gpgSignature: string | undefined;
  if (request.gpg) {
    const manifest = await client.getManifest(digest);
    if (!manifest) throw failure(`the registry has no manifest ${digest} to GPG-sign`);
    gpgSignature = await gpgSign({
      manifest: manifest.bytes,
      digest,
      dockerReference: config.tag,
      repositoryPath: reference.repository,
      fingerprint: request.gpg.fingerprint,
      lookaside: request.gpg.lookaside,
      ...(request.gpg.passphraseFile ? { passphraseFile: request.gpg.passphraseFile } : {}),
    });
    request.progress(`[sign] GPG simple signature of ${config.tag} written to ${gpgSignature}`);
  }
  return {
    signature: `${repository}:${signature.tag}`,
    attestations: `${repository}:${attestations.tag}`,
    predicateTypes: attestations.predicateTypes,
    ...(gpgSignature ? { gpgSignature } : {}),
  };
}
