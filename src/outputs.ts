import { closeSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Progress } from './base.js';
import { buildImage, type BuildResult } from './build.js';
import type { BuildConfig } from './config.js';
import type { Engine } from './engine/index.js';
import { badInput } from './errors.js';
import { loadProfile, type Profile } from './profiles.js';
import { cycloneDx, describesImage, installedPackages } from './sbom.js';
import { parseUsersFile, serializeUsers, type SaslUser } from './credentials.js';
import { generatedUser } from './sasldb.js';
import { projectPath } from './paths.js';
import { tableVex } from './vex.js';
import { loadVulnerabilityTable } from './vulnerabilities.js';

/** npm runs scripts from the package root; the user's paths are relative to where they typed. */
function userPath(path: string): string {
  return isAbsolute(path) ? path : resolve(process.env.INIT_CWD ?? process.cwd(), path);
}

/** A tag as a file name. */
const fileName = (tag: string) => tag.replace(/[^A-Za-z0-9._-]/g, '_');

/** The users file, or stdin for `-`: a secret manager can pipe users in without writing them to disk. */
function readUsers(file: string): SaslUser[] {
  const source = file === '-' ? 'users on stdin' : file;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file === '-' ? 0 : userPath(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw badInput(`cannot read ${file === '-' ? source : `users file ${file}`}: ${code}`);
  }
  return parseUsersFile(bytes, source);
}

/** Generated credentials written to a new 0600 file (never overwriting one), and how to take them back. */
function saveGeneratedCredentials(
  users: readonly SaslUser[],
  config: BuildConfig,
): { path: string; discard: () => void } {
  const dir = userPath('memcached-credentials');
  // The first folder this made, if any: taking the file back takes it back too, so a failure leaves nothing.
  const made = mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const path = join(dir, `${fileName(config.tag)}-${stamp}.users`);
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, serializeUsers(users));
  } finally {
    closeSync(fd);
  }
  return {
    path,
    discard() {
      rmSync(path, { force: true });
      // rmdir refuses a folder that is not empty: one that another build has written into meanwhile stays.
      for (let folder = dir; made !== undefined && folder.startsWith(made); folder = dirname(folder)) {
        try {
          rmdirSync(folder);
        } catch {
          return;
        }
      }
    },
  };
}

function parsedJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Writes the image's CycloneDX SBOM beside the user's other build outputs and returns its path. The SBOM
 * already there for this very image id is kept: an unchanged rebuild runs no container for it.
 */
async function writeSbom(
  engine: Engine,
  imageId: string,
  config: BuildConfig,
  profile: Profile,
  progress: Progress,
): Promise<string> {
  const dir = userPath(config.sbomDir);
  const path = join(dir, `${fileName(config.tag)}.cdx.json`);
  if (describesImage(parsedJson(path), imageId)) {
    progress(`SBOM (CycloneDX) of this image already at ${path}`);
    return path;
  }
  const packages = await installedPackages(engine, imageId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path,
    `${JSON.stringify(cycloneDx(packages, { id: imageId, tag: config.tag }, profile, new Date()), null, 2)}\n`,
  );
  progress(`SBOM (CycloneDX) written to ${path}`);
  return path;
}

/**
 * Writes the image's OpenVEX document beside its SBOM and returns its path. No probe has run at build time:
 * the document is the profile's vulnerability table, and each statement says so (a verification run writes
 * the evidence-backed one).
 */
export function writeVex(imageId: string, config: BuildConfig, progress: Progress, now = new Date()): string {
  const path = join(userPath(config.sbomDir), `${fileName(config.tag)}.vex.json`);
  const vex = tableVex({
    table: loadVulnerabilityTable(config.profile),
    product: `pkg:oci/memcached-hardened@${encodeURIComponent(imageId)}`,
    documentId: `urn:memcached-hardened:vex:build:${imageId}`,
    author: 'memcached-hardened build',
    timestamp: now.toISOString(),
  });
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(vex, null, 2)}\n`);
  progress(`VEX (OpenVEX, the vulnerability table's claims; no probe ran) written to ${path}`);
  return path;
}

/**
 * Copies the image's seccomp profile (seccomp/<profile>[-tls].json, derived by scripts/seccomp-trace.ts)
 * beside its SBOM and returns its path.
 */
function writeSeccompProfile(config: BuildConfig, progress: Progress): string {
  const name = `${config.profile}${config.tls ? '-tls' : ''}`;
  let profile: string;
  try {
    profile = readFileSync(projectPath('seccomp', `${name}.json`), 'utf8');
  } catch {
    const derive = `npx tsx scripts/seccomp-trace.ts ${config.profile}`;
    throw new Error(`no seccomp profile seccomp/${name}.json: derive it with ${derive}`);
  }
  const path = join(userPath(config.sbomDir), `${fileName(config.tag)}.seccomp.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, profile);
  progress(`seccomp profile written to ${path}`);
  return path;
}

/** What one build left behind for the user. */
export interface Built {
  readonly result: BuildResult;
  readonly users?: readonly SaslUser[];
  readonly credentialsFile?: string;
  readonly sbom?: string;
  /** The OpenVEX document (writeVex). */
  readonly vex?: string;
  readonly seccompProfile?: string;
}

/** Reads or generates the users, builds, writes the SBOM. Generated credentials survive only a success. */
export async function buildWithOutputs(config: BuildConfig, engine: Engine, progress: Progress): Promise<Built> {
  const profile = loadProfile(config.profile);
  let users: SaslUser[] | undefined;
  if (config.target === 'server' && config.credentials === 'baked') {
    users = config.usersFile !== undefined ? readUsers(config.usersFile) : [generatedUser()];
  }
  const saved = users && config.usersFile === undefined ? saveGeneratedCredentials(users, config) : undefined;
  const credentialsFile = saved?.path;
  // Credentials for an image that does not exist would only mislead. An interrupted build leaves through
  // process.exit, which still emits 'exit'.
  let pending = saved;
  const discard = () => pending?.discard();
  process.on('exit', discard);
  try {
    const result = await buildImage(engine, config, profile, users, progress);
    const sbom =
      config.target === 'server' ? await writeSbom(engine, result.imageId, config, profile, progress) : undefined;
    const vex = config.target === 'server' ? writeVex(result.imageId, config, progress) : undefined;
    const seccompProfile = config.target === 'server' ? writeSeccompProfile(config, progress) : undefined;
    pending = undefined;
    if (credentialsFile) progress(`credentials for user '${users?.[0]?.name}' saved to ${credentialsFile} (mode 0600)`);
    return { result, users, credentialsFile, sbom, vex, seccompProfile };
  } finally {
    discard();
    process.off('exit', discard);
  }
}

/** The build as the one JSON line `--json` prints. */
export function summary(config: BuildConfig, built: Built): Record<string, unknown> {
  return {
    ...built.result,
    credentials: config.target === 'server' ? config.credentials : undefined,
    ...(built.credentialsFile ? { credentialsFile: built.credentialsFile } : {}),
    ...(built.sbom ? { sbom: built.sbom } : {}),
    ...(built.vex ? { vex: built.vex } : {}),
    ...(built.seccompProfile ? { seccompProfile: built.seccompProfile } : {}),
  };
}
