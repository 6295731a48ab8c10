import { pollUntil } from '../helpers/poll.js';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { projectPath } from '../../src/paths.js';
import { buildImage } from '../../src/build.js';
import { parseBuildArgs } from '../../src/config.js';
import { connectEngine } from '../../src/engine/index.js';
import { loadProfile } from '../../src/profiles.js';
import { serializeUsers, type SaslUser } from '../../src/credentials.js';
import { docker, onAnotherSubnetIfTaken, privateTestPrefix, runId } from '../helpers/docker.js';
import { ensureHostTool } from '../helpers/host-tools.js';
import { writeMemcacheSecret } from '../helpers/secrets.js';
import { containerLogs, memcstatShowsStats, runToExit } from '../helpers/server.js';

const exec = promisify(execFile);
const targets = inject('targets');

/** The runtime-credentials image to run: a target's, or (when only a baked image is under test) one built now. */
async function runtimeImage(): Promise<{
  image: string;
  clientImage: string;
  profile: string;
  users: readonly SaslUser[];
}> {
  const runtime = targets.find((t) => t.credentials === 'runtime');
  if (runtime) return runtime;
  const base = targets[0];
  if (!base) throw new Error('no target');
  const config = parseBuildArgs([
    '--profile',
    base.profile,
    '--runtime-credentials',
    '--tag',
    `memcached-hardened-test/server-runtime:${base.profile}`,
  ])!;
  const built = await buildImage(connectEngine(), config, loadProfile(base.profile), undefined, () => undefined);
  return { image: built.imageId, clientImage: base.clientImage, profile: base.profile, users: base.users };
}

// examples/compose.yaml, run by the engine: app + memcached on an internal network, allowlist,
// read-only root, dropped capabilities, secret-mounted runtime credentials.
describe('examples/compose.yaml', () => {
  const project = `mhcompose${runId()}`;
  const scratch = mkdtempSync(join(tmpdir(), 'mh-compose-'));
  // Outside the engine's default pools: a network of the suite that names no subnet may hold any /16 of
  // those by now. Chosen again if another network took it meanwhile.
  let prefix = '';
  let env: NodeJS.ProcessEnv;
  let target: Awaited<ReturnType<typeof runtimeImage>>;
  const compose = (...args: string[]) =>
    exec('docker-compose', ['-f', projectPath('examples/compose.yaml'), '-p', project, ...args], {
      env,
      timeout: 120_000,
    });
  const containerOf = async (service: string) => {
    const [found] = await docker.listContainers({
      filters: JSON.stringify({
        label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${service}`],
      }),
    });
    if (!found) throw new Error(`compose service ${service} is not running`);
    return docker.getContainer(found.Id);
  };

  beforeAll(async () => {
    target = await runtimeImage();
    await ensureHostTool('docker-compose', 'docker-compose');
    const secret = writeMemcacheSecret(join(scratch, 'memcached-users.txt'), serializeUsers(target.users));
    await onAnotherSubnetIfTaken(privateTestPrefix, async (chosen) => {
      prefix = chosen;
      env = {
        ...process.env,
        MEMCACHED_IMAGE: target.image,
        CLIENT_IMAGE: target.clientImage,
        SUBNET_PREFIX: prefix,
        MEMCACHED_USERS_SECRET: secret,
        // The image's seccomp profile, by absolute path (the file's default is relative to where Compose runs).
        MEMCACHED_SECCOMP_PROFILE: projectPath('seccomp', `${target.profile}.json`),
      };
      try {
        await compose('up', '-d');
      } catch (error) {
        await compose('down', '-v', '--remove-orphans').catch(() => undefined);
        throw error;
      }
    });
    const memcached = await containerOf('memcached');
    await pollUntil(async () => ((await containerLogs(memcached.id)).includes('listening on') ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: 'the compose memcached says it is listening',
      diagnose: () => containerLogs(memcached.id),
    });
  });

  afterAll(async () => {
    await compose('down', '-v', '--remove-orphans').catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('starts memcached read-only, with the allowlist and the secret-mounted users', async () => {
    const memcached = await containerOf('memcached');
    const info = await memcached.inspect();
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.PidsLimit).toBe(64);
    const escapedPrefix = prefix.replace(/\./g, '\\.');
    expect(await containerLogs(memcached.id)).toMatch(
      new RegExp(`listening on ${escapedPrefix}\\.2 .*runtime user.*allowlist: ${escapedPrefix}\\.10/32`),
    );
  });

  it('the app authenticates with the tutorial memcstat; another container on the network cannot connect', async () => {
    const app = await containerOf('app');
    const user = target.users[0]!;
    const run = await app.exec({
      Cmd: ['memcstat', '--binary', `--servers=${prefix}.2`, `--username=${user.name}`, `--password=${user.password}`],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await run.start({});
    const output = await new Promise<string>((resolve) => {
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      stream.on('end', () => resolve(text));
    });
    expect(memcstatShowsStats(output, `${prefix}.2`)).toBe(true);
    const intruder = await runToExit(target.clientImage, `${project}_backend`, {
      command: [
        'bash',
        '-c',
        `timeout 3 bash -c 'exec 3<>/dev/tcp/${prefix}.2/11211' && echo CONNECTED || echo FAILED`,
      ],
    });
    expect(intruder.output).toContain('FAILED');
  });
});
