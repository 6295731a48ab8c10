import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { buildImage } from '../../src/build.js';
import { parseBuildArgs } from '../../src/config.js';
import { connectEngine } from '../../src/docker.js';
import { projectPath } from '../../src/paths.js';
import { listProfiles, loadProfile } from '../../src/profiles.js';
import { generatePassword, parseUsersFile, type SaslUser } from '../../src/sasldb.js';
import { listLeftovers, removeLeftovers } from './resources.js';
import type { TestTarget } from './targets.js';

/** Users for images the suite builds itself: several, with fresh random passwords every run. */
function testUsers(): SaslUser[] {
  return ['sammy', 'alice', 'svc.cache-reader'].map((name) => ({ name, password: generatePassword() }));
}

const progress = (line: string) => {
  if (/^\[(base|sasldb)\]|tagged|Step \d+/.test(line)) process.stderr.write(`  ${line}\n`);
};

async function buildTarget(profileName: string, image: string | undefined, users: SaslUser[]): Promise<TestTarget> {
  const engine = connectEngine();
  const profile = loadProfile(profileName);
  const tag = (kind: string) => `memcached-hardened-test/${kind}:${profileName}`;
  const client = await buildImage(engine, { ...parseBuildArgs(['--profile', profileName, '--target', 'client', '--tag', tag('client')])! }, profile, undefined, progress);
  let serverImage = image;
  if (!serverImage) {
    const server = await buildImage(engine, parseBuildArgs(['--profile', profileName, '--tag', tag('server')])!, profile, users, progress);
    serverImage = server.imageId;
  }
  return { profile: profileName, image: serverImage, clientImage: client.imageId, baseImage: profile.base.image, users };
}

/** Which images to test: MEMCACHED_IMAGE (+ MEMCACHED_USERS_FILE, MEMCACHED_PROFILE), else build every profile. */
async function resolveTargets(env: NodeJS.ProcessEnv): Promise<TestTarget[]> {
  if (env.MEMCACHED_IMAGE) {
    if (!env.MEMCACHED_USERS_FILE) throw new Error('MEMCACHED_IMAGE needs MEMCACHED_USERS_FILE (the user:password lines baked into it)');
    const profile = env.MEMCACHED_PROFILE ?? 'ubuntu-16.04';
    const users = parseUsersFile(readFileSync(env.MEMCACHED_USERS_FILE), env.MEMCACHED_USERS_FILE);
    return [await buildTarget(profile, env.MEMCACHED_IMAGE, users)];
  }
  const profiles = env.MEMCACHED_PROFILES ? env.MEMCACHED_PROFILES.split(',') : listProfiles();
  const targets: TestTarget[] = [];
  for (const profile of profiles) {
    process.stderr.write(`building images for ${profile}\n`);
    targets.push(await buildTarget(profile, undefined, testUsers()));
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
    process.stderr.write(`removed ${stale.containers.length} container(s) and ${stale.networks.length} network(s) left by an earlier run\n`);
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
  project.provide('targets', await resolveTargets(process.env));
  return async () => {
    await cleanup();
    const left = await listLeftovers({ run: runId });
    if (left.containers.length + left.networks.length + left.volumes.length > 0) {
      throw new Error(`the suite left resources behind: ${JSON.stringify(left)}`);
    }
  };
}
