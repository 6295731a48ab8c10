#!/usr/bin/env node
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { buildImage, type BuildResult } from './build.js';
import { BUILD_USAGE, parseBuildArgs, type BuildConfig } from './config.js';
import { connectEngine, type Engine } from './docker.js';
import { badInput, EXIT_FAILURE, failure, UserError } from './errors.js';
import { registryAuth, releaseRegistry } from './release.js';
import { runSuite } from './verify.js';
import { loadProfile, type Profile } from './profiles.js';
import { cycloneDx, installedPackages } from './sbom.js';
import { parseUsersFile, serializeUsers, type SaslUser } from './credentials.js';
import { generatedUser } from './sasldb.js';

const USAGE = `Usage: memcached-hardened <command> [options]

Commands:
  build     build the hardened memcached image (npm run build -- --help)
  release   build, verify with the suite, push only if it passed (npm run release -- --help)

Run a command with --help for its options.`;

/** npm runs scripts from the package root; the user's paths are relative to where they typed. */
function userPath(path: string): string {
  return isAbsolute(path) ? path : resolve(process.env.INIT_CWD ?? process.cwd(), path);
}

function readUsers(file: string): SaslUser[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(userPath(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw badInput(`cannot read users file ${file}: ${code}`);
  }
  return parseUsersFile(bytes, file);
}

/** Writes generated credentials to a new 0600 file (never overwriting one) and returns its path. */
function saveGeneratedCredentials(users: readonly SaslUser[], config: BuildConfig): string {
  const dir = userPath('memcached-credentials');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const path = join(dir, `${config.tag.replace(/[^A-Za-z0-9._-]/g, '_')}-${stamp}.users`);
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, serializeUsers(users));
  } finally {
    closeSync(fd);
  }
  return path;
}

/** Generated credentials whose image is not built yet: removed if the build fails or is interrupted. */
let pendingCredentialsFile: string | undefined;

/** Writes the image's CycloneDX SBOM beside the user's other build outputs; returns its path. */
async function writeSbom(engine: Engine, imageId: string, config: BuildConfig, profile: Profile): Promise<string> {
  const packages = await installedPackages(engine, imageId);
  const dir = userPath(config.sbomDir);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${config.tag.replace(/[^A-Za-z0-9._-]/g, '_')}.cdx.json`);
  writeFileSync(path, `${JSON.stringify(cycloneDx(packages, { id: imageId, tag: config.tag }, profile, new Date()), null, 2)}\n`);
  return path;
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** What one build left behind for the user. */
interface Built {
  readonly result: BuildResult;
  readonly users?: readonly SaslUser[];
  readonly credentialsFile?: string;
  readonly sbom?: string;
}

/** Reads or generates the users, builds, writes the SBOM. Generated credentials survive only a success. */
async function buildWithOutputs(config: BuildConfig, engine: Engine): Promise<Built> {
  const profile = loadProfile(config.profile);
  let users: SaslUser[] | undefined;
  let credentialsFile: string | undefined;
  if (config.target === 'server' && config.credentials === 'baked') {
    users = config.usersFile !== undefined ? readUsers(config.usersFile) : [generatedUser()];
  }
  await engine.ping();
  if (users && config.usersFile === undefined) {
    credentialsFile = saveGeneratedCredentials(users, config);
    pendingCredentialsFile = credentialsFile;
  }
  try {
    const result = await buildImage(engine, config, profile, users, progress);
    const sbom = config.target === 'server' ? await writeSbom(engine, result.imageId, config, profile) : undefined;
    pendingCredentialsFile = undefined;
    if (credentialsFile) progress(`credentials for user '${users?.[0]?.name}' saved to ${credentialsFile} (mode 0600)`);
    if (sbom) progress(`SBOM (CycloneDX) written to ${sbom}`);
    return { result, users, credentialsFile, sbom };
  } finally {
    // Credentials for an image that does not exist would only mislead.
    if (pendingCredentialsFile) rmSync(pendingCredentialsFile, { force: true });
  }
}

function summary(config: BuildConfig, built: Built): Record<string, unknown> {
  return {
    ...built.result,
    credentials: config.target === 'server' ? config.credentials : undefined,
    ...(built.credentialsFile ? { credentialsFile: built.credentialsFile } : {}),
    ...(built.sbom ? { sbom: built.sbom } : {}),
  };
}

async function buildCommand(argv: readonly string[]): Promise<void> {
  const config = parseBuildArgs(argv);
  if (!config) {
    console.log(BUILD_USAGE);
    return;
  }
  const built = await buildWithOutputs(config, connectEngine());
  if (config.json) console.log(JSON.stringify(summary(config, built)));
  else console.log(`built ${built.result.tags.join(', ')} (${built.result.imageId}) from ${built.result.base}, ${(built.result.sizeBytes / 1e6).toFixed(1)} MB`);
}

const RELEASE_USAGE = `Usage: npm run release -- --tag REGISTRY/REPO:TAG [--profile P] [--users-file F | --runtime-credentials] [--json]

Builds the image, runs the verification suite against that exact image id, and pushes it only if the
suite passed; prints the pushed digest. Takes the build's options (npm run build -- --help).
Registry credentials: REGISTRY_USERNAME + REGISTRY_PASSWORD, else the Docker config's auths entry.
Exit codes: 0 pushed, 1 failure (build, verification, push), 2 bad input.`;

async function releaseCommand(argv: readonly string[]): Promise<void> {
  const config = parseBuildArgs(argv);
  if (!config) {
    console.log(RELEASE_USAGE);
    return;
  }
  if (config.target !== 'server') throw badInput('release publishes the server image (no --target client)');
  const registry = releaseRegistry(config.tag);
  const auth = registryAuth(registry);
  const engine = connectEngine();
  const built = await buildWithOutputs(config, engine);
  // The suite needs user:password lines the image accepts: the baked ones, or test users to mount.
  const scratch = mkdtempSync(join(tmpdir(), 'memcached-hardened-release-'));
  try {
    const usersFile = join(scratch, 'users');
    const users = built.users ?? [generatedUser()];
    writeFileSync(usersFile, serializeUsers(users), { mode: 0o600 });
    progress(`[verify] running the verification suite against ${built.result.imageId}`);
    const verdict = await runSuite({ imageId: built.result.imageId, profile: config.profile, usersFile, bail: true, progress });
    if (!verdict.passed) {
      throw failure(`verification failed: ${config.tag} (${built.result.imageId}) was not pushed; first failure: ${verdict.failedChecks[0] ?? 'none named'}`);
    }
    progress(`[release] pushing ${config.tag} to ${registry}${auth ? ` as ${auth.username}` : ''}`);
    let digest: string;
    try {
      digest = await engine.push(config.tag, auth, (m) => m.status && progress(`[push] ${m.status}${m.progress ? ` ${m.progress}` : ''}`));
    } catch (error) {
      throw failure(`push of ${config.tag} refused: ${(error as Error).message.split('\n')[0]}`);
    }
    if (config.json) console.log(JSON.stringify({ ...summary(config, built), verified: true, pushed: `${config.tag}@${digest}`, digest }));
    else console.log(`pushed ${config.tag}@${digest}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'build':
        await buildCommand(rest);
        return 0;
      case 'release':
        await releaseCommand(rest);
        return 0;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw badInput(`unknown command '${command}' (see --help)`);
    }
  } catch (error) {
    if (error instanceof UserError) {
      console.error(`memcached-hardened: ${error.message}`);
      return error.exitCode;
    }
    console.error(`memcached-hardened: unexpected error: ${(error as Error).message.split('\n')[0]}`);
    return EXIT_FAILURE;
  }
}

process.on('SIGINT', () => {
  // The engine cancels a build whose client goes away; exiting leaves nothing tagged.
  if (pendingCredentialsFile) rmSync(pendingCredentialsFile, { force: true });
  console.error('memcached-hardened: interrupted');
  process.exit(130);
});

process.exitCode = await main(process.argv.slice(2));
