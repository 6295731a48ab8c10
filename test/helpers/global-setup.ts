import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { TestProject } from 'vitest/node';
import { buildImage } from '../../src/build.js';
import { parseBuildArgs } from '../../src/config.js';
import { connectEngine } from '../../src/engine/index.js';
import { projectPath } from '../../src/paths.js';
import { listProfiles, loadProfile } from '../../src/profiles.js';
import { parseUsersFile, serializeUsers, type SaslUser } from '../../src/credentials.js';
import { generatePassword } from '../../src/sasldb.js';
import { buildClientsImage } from './clients-image.js';
import { tlsPair } from './tls-image.js';
import { listLeftovers, removeLeftovers } from './resources.js';
import { writeMemcacheSecret } from './secrets.js';
import type { TestTarget } from './targets.js';

/** Users for images the suite builds itself: several, with fresh random passwords every run. */
function testUsers(): SaslUser[] {
  return ['sammy', 'alice', 'svc.cache-reader'].map((name) => ({ name, password: generatePassword() }));
}

const progress = (line: string) => {
  if (/^\[(base|sasldb)\]|tagged|Step \d+/.test(line)) process.stderr.write(`  ${line}\n`);
};

type CredentialMode = TestTarget['credentials'];

/** Where runtime-credential targets get their users file from: readable by the image's memcache user only. */
function mountableUsersFile(dir: string, name: string, users: readonly SaslUser[]): string {
  return writeMemcacheSecret(join(dir, name), serializeUsers(users));
}

/** An image under test (MEMCACHED_IMAGE) with its labels, or undefined to build the target's images. */
type GivenImage = { readonly id: string; readonly labels: Record<string, string> } | undefined;

async function buildTarget(
  profileName: string,
  mode: CredentialMode,
  given: GivenImage,
  users: SaslUser[],
  secretsDir: string,
  withTls: boolean,
): Promise<TestTarget> {
  const engine = connectEngine();
  const profile = loadProfile(profileName);
  const tag = (kind: string) => `memcached-hardened-test/${kind}:${profileName}`;
  const client = await buildImage(
    engine,
    parseBuildArgs(['--profile', profileName, '--target', 'client', '--tag', tag('client')])!,
    profile,
    undefined,
    progress,
  );
  let serverImage: string;
  let tlsImage: string | undefined;
  if (given) {
    serverImage = given.id;
    if (withTls) ({ image: serverImage, tlsImage } = await tlsPair(given.id, given.labels, profile));
  } else {
    // The --tls image shares every layer but its last ones (cached after the first run).
    const server = async (tls: boolean) => {
      const kind = `server${mode === 'runtime' ? '-runtime' : ''}${tls ? '-tls' : ''}`;
      const args = [
        ...(mode === 'runtime' ? ['--runtime-credentials'] : []),
        ...(tls ? ['--tls'] : []),
        '--tag',
        tag(kind),
      ];
      return (await buildImage(engine, parseBuildArgs(['--profile', profileName, ...args])!, profile, users, progress))
        .imageId;
    };
    serverImage = await server(false);
    if (withTls) tlsImage = await server(true);
  }
  return {
    name: mode === 'runtime' ? `${profileName} (runtime credentials)` : profileName,
    profile: profileName,
    credentials: mode,
    image: serverImage,
    tlsImage,
    clientImage: client.imageId,
    baseImage: profile.base.image,
    users,
    usersSecret: mode === 'runtime' ? mountableUsersFile(secretsDir, `${profileName}-users`, users) : undefined,
  };
}

/**
 * Which images to test: MEMCACHED_IMAGE (+ MEMCACHED_USERS_FILE, MEMCACHED_PROFILE), else every profile
 * (MEMCACHED_PROFILES to choose) in each credentials mode (MEMCACHED_CREDENTIAL_MODES=baked,runtime).
 */
async function resolveTargets(env: NodeJS.ProcessEnv, secretsDir: string, withTls: boolean): Promise<TestTarget[]> {
  if (env.MEMCACHED_IMAGE) {
    if (!env.MEMCACHED_USERS_FILE)
      throw new Error('MEMCACHED_IMAGE needs MEMCACHED_USERS_FILE (the user:password lines of that image)');
    const profile = env.MEMCACHED_PROFILE ?? 'ubuntu-16.04';
    const users = parseUsersFile(readFileSync(env.MEMCACHED_USERS_FILE), env.MEMCACHED_USERS_FILE);
    const labels = (await new Docker().getImage(env.MEMCACHED_IMAGE).inspect()).Config.Labels ?? {};
    const mode: CredentialMode = labels['memcached-hardened.credentials'] === 'runtime' ? 'runtime' : 'baked';
    return [await buildTarget(profile, mode, { id: env.MEMCACHED_IMAGE, labels }, users, secretsDir, withTls)];
  }
  const profiles = env.MEMCACHED_PROFILES ? env.MEMCACHED_PROFILES.split(',') : listProfiles();
  const modes = (env.MEMCACHED_CREDENTIAL_MODES ?? 'baked,runtime').split(',') as CredentialMode[];
  const targets: TestTarget[] = [];
  for (const profile of profiles) {
    for (const mode of modes) {
      process.stderr.write(`building images for ${profile} (${mode} credentials)\n`);
      targets.push(await buildTarget(profile, mode, undefined, testUsers(), secretsDir, withTls));
    }
  }
  return targets;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // No registry is reachable here, so testcontainers' Ryuk reaper cannot run: the suite cleans up by label.
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  project.provide('runId', runId);
  project.provide('ownerPid', String(process.pid));
  // Figures measured by the tests, printed by the summary reporter at the end of the run.
  mkdirSync(projectPath('reports'), { recursive: true });
  const figuresFile = projectPath('reports', `figures-${runId}.jsonl`);
  process.env.MEMCACHED_HARDENED_FIGURES = figuresFile;
  project.provide('figuresFile', figuresFile);
  process.stderr.write(`test run ${runId}\n`);
  await connectEngine().ping();
  const stale = await removeLeftovers('orphans');
  if (stale.containers.length + stale.networks.length > 0) {
    process.stderr.write(
      `removed ${stale.containers.length} container(s) and ${stale.networks.length} network(s) ` +
        'left by an earlier run\n',
    );
  }
  // The reaper outlives us: whatever ends this process (SIGINT, a crash, SIGKILL), it removes the run's resources.
  spawn(process.execPath, ['--import', 'tsx', projectPath('test/helpers/reaper.ts'), runId, String(process.pid)], {
    detached: true,
    stdio: 'ignore',
    cwd: projectPath(),
  }).unref();
  const cleanup = async () => {
    await removeLeftovers({ run: runId });
  };
  const secretsDir = mkdtempSync(join(tmpdir(), 'mh-secrets-'));
  // TLS images only where the TLS checks and figures run, unless the run says it checks none
  // (MEMCACHED_TLS=off: a mutant whose intended check needs no TLS image; the surface checks then see
  // the plain image only).
  const withTls = (project.name === 'integration' || project.name === 'figures') && process.env.MEMCACHED_TLS !== 'off';
  project.provide('targets', await resolveTargets(process.env, secretsDir, withTls));
  // Real client libraries, for the client-compatibility and fleet checks (reliability tests need none).
  if (project.name === 'integration') {
    process.stderr.write('building the clients image\n');
    project.provide('clientsImage', await buildClientsImage(progress));
  }
  return async () => {
    await cleanup();
    rmSync(secretsDir, { recursive: true, force: true });
    const left = await listLeftovers({ run: runId });
    if (left.containers.length + left.networks.length + left.volumes.length > 0) {
      throw new Error(`the suite left resources behind: ${JSON.stringify(left)}`);
    }
  };
}
