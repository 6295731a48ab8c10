import type { BuildConfig } from './config.js';
import { createHash } from 'node:crypto';
import { contextDigest, DOCKERFILE_NAME, renderFiles, writeContext, type ContextFile } from './context.js';
import type { Engine, EngineMessage, ImageFacts } from './engine/index.js';
import { failure } from './errors.js';
import { ensureBaseImage, type BaseSource, type Progress } from './base.js';
import type { Profile } from './profiles.js';
import { BUILD_REALM, profileValues } from './render.js';
import { sourceInfo, toolVersion, type SourceInfo } from './source.js';
import { LineTail } from './tail.js';
import { TLS_LABEL } from './tls.js';
import { type SaslUser } from './credentials.js';
import { generateSasldb, reusableSasldb } from './sasldb.js';
import { compareCodeUnits } from './text-order.js';

/** Stage names in Dockerfile.template for each target. */
const STAGE = { server: 'server', client: 'tools' } as const;
const LOG_TAIL_LINES = 15;

/** Names everything a build is made from, so a rebuild from the same inputs can keep the image it made. */
export const INPUTS_LABEL = 'memcached-hardened.inputs';

export interface BuildResult {
  readonly imageId: string;
  readonly tags: readonly string[];
  readonly profile: string;
  readonly target: BuildConfig['target'];
  readonly base: string;
  readonly baseSource: BaseSource;
  readonly sizeBytes: number;
}

/** OCI labels; nothing secret goes here, and nothing read from the clock, so unchanged sources stay cached. */
export function imageLabels(
  profile: Profile,
  target: BuildConfig['target'],
  source: SourceInfo,
  version: string,
): Record<string, string> {
  return {
    'org.opencontainers.image.title': target === 'server' ? 'memcached-hardened' : 'memcached-hardened-client',
    'org.opencontainers.image.description':
      target === 'server'
        ? 'memcached with SASL, UDP off, private bind and client allowlist, non-root'
        : 'libmemcached-tools for checking memcached-hardened',
    'org.opencontainers.image.version': version,
    ...(source.date ? { 'org.opencontainers.image.created': source.date.toISOString() } : {}),
    'org.opencontainers.image.revision': source.revision,
    'org.opencontainers.image.base.name': profile.base.image,
    'memcached-hardened.profile': profile.name,
    'memcached-hardened.target': target,
  };
}

/** Turns engine build messages into progress lines and keeps the log tail for error reports. */
export function buildLogger(progress: Progress): {
  onMessage: (m: EngineMessage) => void;
  tail: () => string[];
  imageId: () => string | undefined;
} {
  const tail = new LineTail(LOG_TAIL_LINES);
  let imageId: string | undefined;
  return {
    onMessage(message) {
      if (message.aux?.ID) imageId = message.aux.ID;
      const text = message.stream ?? message.status ?? message.errorDetail?.message ?? message.error;
      if (text === undefined) return;
      for (const line of text.split('\n').map((l) => l.trimEnd())) {
        if (line === '') continue;
        tail.push(line);
        progress(`[build] ${line}`);
      }
    },
    tail: () => tail.lines(),
    imageId: () => imageId,
  };
}

/** What one engine build is made from, the sasldb aside. */
export interface BuildInputs {
  readonly baseId: string;
  readonly stage: string;
  readonly files: readonly ContextFile[];
  readonly labels: Readonly<Record<string, string>>;
  readonly buildArgs: Readonly<Record<string, string>>;
}

const byKey = (record: Readonly<Record<string, string>>) =>
  Object.entries(record).sort(([a], [b]) => compareCodeUnits(a, b));

/**
 * A digest of the build inputs. The engine's cache would answer a build from the same inputs with the
 * same image, so an image labelled with this digest is that answer. The sasldb is left out: it is
 * password-derived, and the label is readable by anyone who can inspect the image.
 */
export function inputsDigest(inputs: BuildInputs): string {
  const described = JSON.stringify({
    baseId: inputs.baseId,
    stage: inputs.stage,
    context: contextDigest(inputs.files),
    labels: byKey(inputs.labels),
    buildArgs: byKey(inputs.buildArgs),
  });
  return `sha256:${createHash('sha256').update(described).digest('hex')}`;
}

/**
 * One engine build of a stage from the rendered files; returns the image id. Engine errors come with the
 * build log's tail.
 */
async function buildStage(
  engine: Engine,
  files: readonly ContextFile[],
  sasldb: Buffer | undefined,
  stage: string,
  labels: Record<string, string>,
  config: BuildConfig,
  progress: Progress,
): Promise<string> {
  const context = await writeContext(files, sasldb);
  const log = buildLogger(progress);
  progress(`[build] stage ${stage} on ${engine.endpoint}`);
  try {
    await engine.build(
      context.pack(),
      {
        dockerfile: DOCKERFILE_NAME,
        target: stage,
        labels,
        buildArgs: buildArgs(config),
        noCache: config.noCache,
      },
      log.onMessage,
    );
  } catch (error) {
    const message = (error as Error).message.trim();
    const tail = log.tail().filter((line) => line !== message);
    throw failure(`build failed: ${message}${tail.length ? `\n--- last build output ---\n${tail.join('\n')}` : ''}`);
  } finally {
    await context.dispose();
  }
  const imageId = log.imageId();
  if (!imageId) throw failure(`build of stage ${stage} finished but the engine reported no image id`);
  return imageId;
}

const buildArgs = (config: BuildConfig): Record<string, string> =>
  config.aptMirror ? { APT_MIRROR: config.aptMirror } : {};

/** A fresh sasldb for the users, generated in the tools image (built first, unlabelled so it stays cached). */
async function freshSasldb(
  engine: Engine,
  files: readonly ContextFile[],
  users: readonly SaslUser[],
  config: BuildConfig,
  progress: Progress,
): Promise<Buffer> {
  const tools = await buildStage(engine, files, undefined, STAGE.client, {}, config, progress);
  progress(`[sasldb] generating the sasldb for ${users.length} user(s)`);
  return generateSasldb(engine, tools, users, BUILD_REALM);
}

/**
 * Builds the image: base ready, the sasldb (reused or generated), the target stage, and only then the
 * tag, so a failure anywhere leaves nothing tagged. When the tag already holds the image these very
 * inputs make (and, baked, exactly these users, as its sasldb shows), that image is kept without asking the
 * engine to build.
 *
 * One proof of the users: the sasldb under the tag, read in memory (about 0.17 s here). It holds on any
 * machine and its bytes are what a rebuild reuses anyway. A local HMAC label spared that read, but only on
 * the machine that kept the key: it was dropped as a second answer to the same question.
 */
export async function buildImage(
  engine: Engine,
  config: BuildConfig,
  profile: Profile,
  users: readonly SaslUser[] | undefined,
  progress: Progress,
): Promise<BuildResult> {
  const bakesUsers = config.target === 'server' && config.credentials === 'baked';
  if (bakesUsers && (users === undefined || users.length === 0))
    throw new Error('a server build with baked credentials needs users');
  const values = profileValues(profile, {
    allowFrom: config.allowFrom,
    credentials: config.credentials,
    tls: config.tls,
  });
  // git answers while the files render (it never rejects: outside a checkout the revision is unknown).
  const sourceAsked = sourceInfo();
  const files = renderFiles(values);
  const [source, base, current] = await Promise.all([
    sourceAsked,
    ensureBaseImage(engine, profile, progress),
    engine.inspectImage(config.tag),
  ]);
  const labels = {
    ...imageLabels(profile, config.target, source, toolVersion()),
    ...(config.target === 'server' ? { 'memcached-hardened.credentials': config.credentials } : {}),
    ...(config.tls ? { [TLS_LABEL]: 'true' } : {}),
  };
  const stage = STAGE[config.target];
  const inputs = inputsDigest({ baseId: base.id, stage, files, labels, buildArgs: buildArgs(config) });
  const result = (facts: { id: string; size: number }): BuildResult => ({
    imageId: facts.id,
    tags: [config.tag],
    profile: profile.name,
    target: config.target,
    base: profile.base.image,
    baseSource: base.source,
    sizeBytes: facts.size,
  });
  const kept = (image: ImageFacts): BuildResult => {
    const what = bakesUsers ? 'inputs and users (its sasldb)' : 'inputs';
    progress(
      `[build] ${config.tag} (${image.id.slice(7, 19)}) was built from exactly these ${what}: kept, nothing to build`,
    );
    return result(image);
  };
  const sameInputs = !config.noCache && current?.labels[INPUTS_LABEL] === inputs;
  if (sameInputs && !bakesUsers) return kept(current);
  // The sasldb already under the tag is reused when it holds exactly these users, so an unchanged
  // rebuild stays cached to the last layer (a fresh one differs in Berkeley DB's random file id).
  const previous = bakesUsers ? await reusableSasldb(engine, current, users ?? [], BUILD_REALM) : undefined;
  if (sameInputs && previous) return kept(current);
  if (previous)
    progress(`[sasldb] ${config.tag} already holds exactly these ${users?.length} user(s): its sasldb is reused`);
  const sasldb = bakesUsers
    ? (previous ?? (await freshSasldb(engine, files, users ?? [], config, progress)))
    : undefined;
  const builtLabels = { ...labels, [INPUTS_LABEL]: inputs };
  const imageId = await buildStage(engine, files, sasldb, stage, builtLabels, config, progress);
  await engine.tag(imageId, config.tag);
  const facts = await engine.inspectImage(imageId);
  if (!facts) throw failure(`built image ${imageId} vanished`);
  progress(`[build] tagged ${config.tag} (${imageId.slice(7, 19)}, ${(facts.size / 1e6).toFixed(1)} MB)`);
  return result(facts);
}
