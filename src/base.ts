import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Engine } from './engine/index.js';
import { failure } from './errors.js';
import { cacheDir, projectPath } from './paths.js';
import type { Profile } from './profiles.js';
import { baseImageConfig, engineArchitecture, fileDigest, layerTarArgs, loadManifest, removeBuildLeftovers } from './rootfs.js';
import { sourceDateEpoch } from './source.js';
import { LineTail } from './tail.js';

export type Progress = (line: string) => void;

/** How the base image came to be in the engine. */
export type BaseSource = 'present' | 'pulled' | 'bootstrapped';

/** The base image ready in the engine, and how it got there. */
export interface BaseImage {
  readonly source: BaseSource;
  readonly id: string;
}

const PULL_TIMEOUT_MS = 60_000;

/** Where debootstrap's keyring for a profile is: the host's keyrings, then the project's cache. */
export function keyringCandidates(profile: Profile, env: NodeJS.ProcessEnv = process.env): string[] {
  const name = profile.base.bootstrap.keyring;
  return [join('/usr/share/keyrings', name), join(cacheDir(env), 'keyrings', name)];
}

/** How upgradeScript reports the newest Release date (seconds since 1970). */
export const RELEASE_DATE_PREFIX = 'newest Release date: ';

/**
 * The shell script that brings a freshly bootstrapped base up to date: debootstrap installs only the
 * release pocket (for xenial: 2016), so the profile's update suites are applied, from the mirror the
 * rootfs already names, and the original sources are put back.
 */
export function upgradeScript(profile: Profile): string {
  const suites = profile.apt.suites.join(' ');
  const components = profile.apt.components.join(' ');
  return [
    'set -eu',
    'export DEBIAN_FRONTEND=noninteractive',
    'cp /etc/apt/sources.list /tmp/sources.list.orig',
    `mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)`,
    ': > /etc/apt/sources.list',
    `for suite in ${suites}; do echo "deb $mirror $suite ${components}" >> /etc/apt/sources.list; done`,
    'apt-get update -qq',
    'apt-get -y -qq -o Dpkg::Options::=--force-confold dist-upgrade',
    'apt-get clean',
    // The newest Release date of the suites used: the epoch the image's mtimes are clamped to.
    `for f in /var/lib/apt/lists/*Release; do sed -n 's/^Date: //p' "$f"; done | while read -r d; do date -u -d "$d" +%s; done | sort -n | tail -n 1 | sed 's/^/${RELEASE_DATE_PREFIX}/'`,
    'cp /tmp/sources.list.orig /etc/apt/sources.list',
    'rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/sources.list.orig',
    'echo "base upgraded: $(dpkg-query -W | wc -l) packages"',
  ].join('\n');
}

/** debootstrap's arguments: minbase, signature checked against the keyring, its built-in default mirror. */
export function debootstrapArgs(profile: Profile, keyring: string, target: string): string[] {
  const { suite, variant } = profile.base.bootstrap;
  return [`--variant=${variant}`, `--keyring=${keyring}`, suite, target];
}

/** Runs a command, forwarding its output lines as progress; rejects with its last lines on failure. */
function run(command: string, args: readonly string[], progress: Progress, label: string, stdin?: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    if (stdin) {
      stdin.on('error', (error) => {
        child.kill();
        reject(failure(`${label}: its input failed: ${error.message}`));
      });
      stdin.pipe(child.stdin);
    } else {
      child.stdin.end();
    }
    const tail = new LineTail(5);
    const onLine = (line: string) => {
      tail.push(line);
      progress(`[${label}] ${line}`);
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    child.on('error', (error) => reject(failure(`${label}: cannot run ${command}: ${error.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(failure(`${label} failed (exit ${code}): ${tail.lines().join(' | ')}`));
    });
  });
}

function commandExists(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/** Makes sure debootstrap and the profile's keyring are on this host, installing them if we may. */
async function ensureBootstrapTools(profile: Profile, progress: Progress): Promise<string> {
  const findKeyring = () => keyringCandidates(profile).find((path) => existsSync(path));
  if (commandExists('debootstrap') && findKeyring()) return findKeyring() as string;
  if (process.getuid?.() !== 0) {
    throw failure(`debootstrap or ${profile.base.bootstrap.keyring} is missing; run scripts/host-prereqs.sh as root`);
  }
  progress('[base] installing debootstrap and archive keyrings (scripts/host-prereqs.sh)');
  await run('bash', [projectPath('scripts', 'host-prereqs.sh')], progress, 'host-prereqs');
  const keyring = findKeyring();
  if (!keyring || !commandExists('debootstrap')) throw failure(`host-prereqs.sh did not provide debootstrap and ${profile.base.bootstrap.keyring}`);
  return keyring;
}

/**
 * Makes the upgraded container's file system a reproducible image: leftovers removed, a sorted layer
 * with mtimes clamped to `epoch`, a config dated by the epoch, loaded under `reference`.
 */
async function loadReproducible(engine: Engine, rootfs: string, work: string, epoch: number, profile: Profile, reference: string, progress: Progress): Promise<void> {
  await removeBuildLeftovers(rootfs);
  const layer = join(work, 'layer.tar');
  await run('tar', layerTarArgs(rootfs, layer, epoch), progress, 'tar');
  const diffId = await fileDigest(layer);
  const { suite, variant } = profile.base.bootstrap;
  const config = baseImageConfig(diffId, epoch, engineArchitecture(), `memcached-hardened: debootstrap --variant=${variant} ${suite}, then ${profile.apt.suites.join(' ')}`, BASE_CMD);
  const configFile = `${createHash('sha256').update(config).digest('hex')}.json`;
  await writeFile(join(work, configFile), config);
  await writeFile(join(work, 'manifest.json'), loadManifest(configFile, 'layer.tar', reference));
  progress(`[base] loading ${reference} (layer ${diffId.slice(7, 19)}, image ${configFile.slice(0, 12)}, mtimes clamped to ${new Date(epoch * 1000).toISOString()})`);
  const archive = spawn('tar', ['--create', `--directory=${work}`, 'manifest.json', configFile, 'layer.tar'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const archived = new Promise<void>((resolve, reject) => {
    archive.on('error', reject);
    archive.on('close', (code) => (code === 0 ? resolve() : reject(failure(`tar of the image archive failed (exit ${code})`))));
  });
  await Promise.all([engine.loadImage(archive.stdout), archived]);
}

/**
 * Bootstraps the profile's base with debootstrap, applies its update suites in a container, and loads
 * the result as a reproducible one-layer image under `reference` (by default the profile's base tag).
 */
export async function bootstrapBase(engine: Engine, profile: Profile, progress: Progress, reference = profile.base.image): Promise<void> {
  if (process.getuid?.() !== 0) throw failure(`bootstrapping ${profile.base.image} needs root (debootstrap); run as root or load the image yourself`);
  const keyring = await ensureBootstrapTools(profile, progress);
  // Checked before minutes of work.
  const fixedEpoch = sourceDateEpoch();
  const workParent = join(cacheDir(), 'rootfs');
  await mkdir(workParent, { recursive: true });
  const work = join(workParent, `${profile.name}.${process.pid}`);
  const rootfs = join(work, 'debootstrap');
  const upgraded = join(work, 'upgraded');
  try {
    progress(`[base] debootstrap ${profile.base.bootstrap.suite} (${profile.base.bootstrap.variant}) into ${rootfs}`);
    await run('debootstrap', debootstrapArgs(profile, keyring, rootfs), progress, 'debootstrap');
    // Downloaded packages and apt lists are build leftovers, not part of a base image.
    await rm(join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true });
    await rm(join(rootfs, 'var/lib/apt/lists'), { recursive: true, force: true });
    await mkdir(join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true });
    await mkdir(join(rootfs, 'var/lib/apt/lists/partial'), { recursive: true });
    progress(`[base] importing ${rootfs} to apply the updates in a container`);
    // GNU tar keeps device nodes, hard links and xattrs that a JavaScript packer would drop.
    const tar = spawn('tar', ['--numeric-owner', '--xattrs', '-C', rootfs, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const tarDone = new Promise<void>((resolve, reject) => {
      tar.on('error', reject);
      tar.on('close', (code) => (code === 0 ? resolve() : reject(failure(`tar of ${rootfs} failed (exit ${code})`))));
    });
    const bootstrapped = `${reference}-debootstrap`;
    await Promise.all([engine.importImage(tar.stdout, bootstrapped, []), tarDone]);
    await rm(rootfs, { recursive: true, force: true });
    let releaseEpoch: number | undefined;
    try {
      progress(`[base] applying ${profile.apt.suites.slice(1).join(', ') || 'no'} updates`);
      await mkdir(upgraded);
      const tail = new LineTail(5);
      const exitCode = await engine.runThenExport(
        {
          image: bootstrapped,
          command: ['sh', '-c', upgradeScript(profile)],
          labels: { 'memcached-hardened.purpose': 'base-upgrade' },
          onLine: (line) => {
            tail.push(line);
            if (line.startsWith(RELEASE_DATE_PREFIX)) releaseEpoch = Number(line.slice(RELEASE_DATE_PREFIX.length));
            progress(`[base] ${line}`);
          },
        },
        (filesystem) => run('tar', ['--extract', '--numeric-owner', '--xattrs', '--xattrs-include=*', `--directory=${upgraded}`], progress, 'tar', filesystem),
      );
      if (exitCode !== 0) throw failure(`upgrading the base failed (exit ${exitCode}): ${tail.lines().join(' | ')}`);
    } finally {
      await engine.removeImage(bootstrapped).catch(() => undefined);
    }
    const epoch = fixedEpoch ?? releaseEpoch;
    if (epoch === undefined || !Number.isSafeInteger(epoch)) throw failure('the updated base named no Release date to date its files by; set SOURCE_DATE_EPOCH');
    await loadReproducible(engine, upgraded, work, epoch, profile, reference, progress);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The base's command, as a pulled Debian or Ubuntu image has it. */
const BASE_CMD = ['/bin/bash'];

async function tryPull(engine: Engine, reference: string, progress: Progress): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${PULL_TIMEOUT_MS / 1000}s`)), PULL_TIMEOUT_MS);
    });
    await Promise.race([engine.pull(reference, () => undefined), timeout]);
    return (await engine.inspectImage(reference)) !== undefined;
  } catch (error) {
    progress(`[base] cannot pull ${reference}: ${(error as Error).message.split('\n')[0]}`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Makes the profile's base image available: used if the engine has it, else pulled, else bootstrapped
 * with debootstrap (signature-checked, tool's default mirror) and imported under the same reference.
 */
export async function ensureBaseImage(engine: Engine, profile: Profile, progress: Progress): Promise<BaseImage> {
  const reference = profile.base.image;
  const present = await engine.inspectImage(reference);
  if (present) {
    progress(`[base] ${reference} is present`);
    return { source: 'present', id: present.id };
  }
  progress(`[base] ${reference} is not in the engine; trying to pull it`);
  let source: BaseSource = 'pulled';
  if (process.env.MEMCACHED_HARDENED_NO_PULL === '1' || !(await tryPull(engine, reference, progress))) {
    await bootstrapBase(engine, profile, progress);
    source = 'bootstrapped';
  }
  const ready = await engine.inspectImage(reference);
  if (!ready) throw failure(`${source === 'pulled' ? 'pull' : 'bootstrap'} finished but ${reference} is not in the engine`);
  progress(`[base] ${reference} ${source === 'pulled' ? 'pulled' : 'bootstrapped and imported'}`);
  return { source, id: ready.id };
}
