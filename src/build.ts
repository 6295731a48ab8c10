import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { BuildConfig } from './config.js';
import { DOCKERFILE_NAME, renderContext, type BuildContext } from './context.js';
import type { Engine, EngineMessage } from './docker.js';
import { failure } from './errors.js';
import { ensureBaseImage, type BaseSource, type Progress } from './base.js';
import { projectPath } from './paths.js';
import type { Profile } from './profiles.js';
import { BUILD_REALM, profileValues } from './render.js';
import { LineTail } from './tail.js';
import { type SaslUser } from './credentials.js';
import { generateSasldb } from './sasldb.js';

/** Stage names in Dockerfile.template for each target. */
const STAGE = { server: 'server', client: 'tools' } as const;
const LOG_TAIL_LINES = 15;

export interface BuildResult {
  readonly imageId: string;
  readonly tags: readonly string[];
  readonly profile: string;
  readonly target: BuildConfig['target'];
  readonly base: string;
  readonly baseSource: BaseSource;
  readonly sizeBytes: number;
}

export function toolVersion(): string {
  return (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }).version;
}

/** The project's git revision, or 'unknown' outside a checkout. */
export function sourceRevision(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: projectPath(), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

/** OCI labels; nothing secret goes here. */
export function imageLabels(profile: Profile, target: BuildConfig['target'], created: Date, revision: string, version: string): Record<string, string> {
  return {
    'org.opencontainers.image.title': target === 'server' ? 'memcached-hardened' : 'memcached-hardened-client',
    'org.opencontainers.image.description':
      target === 'server' ? 'memcached with SASL, UDP off, private bind and client allowlist, non-root' : 'libmemcached-tools for checking memcached-hardened',
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.created': created.toISOString(),
    'org.opencontainers.image.revision': revision,
    'org.opencontainers.image.base.name': profile.base.image,
    'memcached-hardened.profile': profile.name,
    'memcached-hardened.target': target,
  };
}

/** Turns engine build messages into progress lines and keeps the log tail for error reports. */
export function buildLogger(progress: Progress): { onMessage: (m: EngineMessage) => void; tail: () => string[]; imageId: () => string | undefined } {
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

/** One engine build of a stage; returns the image id. Engine errors come with the build log's tail. */
async function buildStage(
  engine: Engine,
  context: BuildContext,
  stage: string,
  labels: Record<string, string>,
  config: BuildConfig,
  progress: Progress,
): Promise<string> {
  const log = buildLogger(progress);
  progress(`[build] stage ${stage} on ${engine.endpoint}`);
  try {
    await engine.build(
      context.pack(),
      {
        dockerfile: DOCKERFILE_NAME,
        target: stage,
        labels,
        buildArgs: config.aptMirror ? { APT_MIRROR: config.aptMirror } : {},
        noCache: config.noCache,
      },
      log.onMessage,
    );
  } catch (error) {
    const message = (error as Error).message.trim();
    const tail = log.tail().filter((line) => line !== message);
    throw failure(`build failed: ${message}${tail.length ? `\n--- last build output ---\n${tail.join('\n')}` : ''}`);
  }
  const imageId = log.imageId();
  if (!imageId) throw failure(`build of stage ${stage} finished but the engine reported no image id`);
  return imageId;
}

/**
 * Builds the image: base ready, tools stage, sasldb generated from the users, server stage, and only
 * then the tag, so a failure anywhere leaves nothing tagged.
 */
export async function buildImage(
  engine: Engine,
  config: BuildConfig,
  profile: Profile,
  users: readonly SaslUser[] | undefined,
  progress: Progress,
): Promise<BuildResult> {
  const bakesUsers = config.target === 'server' && config.credentials === 'baked';
  if (bakesUsers && (users === undefined || users.length === 0)) throw new Error('a server build with baked credentials needs users');
  const baseSource = await ensureBaseImage(engine, profile, progress);
  const values = profileValues(profile, { allowFrom: config.allowFrom, credentials: config.credentials });
  const labels = { ...imageLabels(profile, config.target, new Date(), sourceRevision(), toolVersion()), ...(config.target === 'server' ? { 'memcached-hardened.credentials': config.credentials } : {}) };
  const toolsContext = await renderContext(values, undefined);
  let imageId: string;
  try {
    // Labels only on the image that is tagged: an unlabelled tools stage stays fully cached.
    imageId = await buildStage(engine, toolsContext, STAGE.client, config.target === 'client' ? labels : {}, config, progress);
  } finally {
    await toolsContext.dispose();
  }
  if (config.target === 'server') {
    let sasldb: Buffer | undefined;
    if (bakesUsers) {
      progress(`[sasldb] generating the sasldb for ${users?.length} user(s)`);
      sasldb = await generateSasldb(engine, imageId, users ?? [], BUILD_REALM);
    }
    const serverContext = await renderContext(values, sasldb);
    try {
      imageId = await buildStage(engine, serverContext, STAGE.server, labels, config, progress);
    } finally {
      await serverContext.dispose();
    }
  }
  await engine.tag(imageId, config.tag);
  const facts = await engine.inspectImage(imageId);
  if (!facts) throw failure(`built image ${imageId} vanished`);
  progress(`[build] tagged ${config.tag} (${imageId.slice(7, 19)}, ${(facts.size / 1e6).toFixed(1)} MB)`);
  return {
    imageId,
    tags: [config.tag],
    profile: profile.name,
    target: config.target,
    base: profile.base.image,
    baseSource,
    sizeBytes: facts.size,
  };
}
