#!/usr/bin/env node
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { buildImage } from './build.js';
import { BUILD_USAGE, parseBuildArgs, type BuildConfig } from './config.js';
import { connectEngine, type Engine } from './docker.js';
import { badInput, EXIT_FAILURE, UserError } from './errors.js';
import { loadProfile, type Profile } from './profiles.js';
import { cycloneDx, installedPackages } from './sbom.js';
import { generatedUser, parseUsersFile, serializeUsers, type SaslUser } from './sasldb.js';

const USAGE = `Usage: memcached-hardened <command> [options]

Commands:
  build     build the hardened memcached image (npm run build -- --help)

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

async function buildCommand(argv: readonly string[]): Promise<void> {
  const config = parseBuildArgs(argv);
  if (!config) {
    console.log(BUILD_USAGE);
    return;
  }
  const profile = loadProfile(config.profile);
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  let users: SaslUser[] | undefined;
  let credentialsFile: string | undefined;
  if (config.target === 'server' && config.credentials === 'baked') {
    users = config.usersFile !== undefined ? readUsers(config.usersFile) : [generatedUser()];
  }
  const engine = connectEngine();
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
    if (config.json) {
      console.log(JSON.stringify({ ...result, credentials: config.target === 'server' ? config.credentials : undefined, ...(credentialsFile ? { credentialsFile } : {}), ...(sbom ? { sbom } : {}) }));
    } else {
      console.log(`built ${result.tags.join(', ')} (${result.imageId}) from ${result.base}, ${(result.sizeBytes / 1e6).toFixed(1)} MB`);
    }
  } finally {
    // Credentials for an image that does not exist would only mislead.
    if (pendingCredentialsFile) rmSync(pendingCredentialsFile, { force: true });
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'build':
        await buildCommand(rest);
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
