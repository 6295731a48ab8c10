import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChild, startChild, type Progress } from './child-process.js';
import type { Engine } from './engine/index.js';
import { failure } from './errors.js';
import { cacheDir, projectPath } from './paths.js';
import type { Profile } from './profiles.js';
import {
  baseImageConfig,
  engineArchitecture,
  fileDigest,
  layerTarArgs,
  loadManifest,
  removeBuildLeftovers,
} from './rootfs.js';
import { sourceDateEpoch } from './source.js';
import { LineTail } from './tail.js';

// How to bootstrap a base image where none can be had: debootstrap, the profile's updates applied in a
// container, and one reproducible layer loaded into the engine (the tar and config pieces: rootfs.ts).

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
    `for f in /var/lib/apt/lists/*Release; do sed -n 's/^Date: //p' "$f"; done | ` +
      `while read -r d; do date -u -d "$d" +%s; done | sort -n | tail -n 1 | sed 's/^/${RELEASE_DATE_PREFIX}/'`,
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
  // Said before it happens: this changes the host, not only the engine.
  progress('[base] installing host packages with apt-get (scripts/host-prereqs.sh): debootstrap, the archive keyrings');
  await runChild('bash', [projectPath('scripts', 'host-prereqs.sh')], { label: 'host-prereqs', progress });
  const keyring = findKeyring();
  if (!keyring || !commandExists('debootstrap'))
    throw failure(`host-prereqs.sh did not provide debootstrap and ${profile.base.bootstrap.keyring}`);
  return keyring;
}

/**
 * Makes the upgraded container's file system a reproducible image: leftovers removed, a sorted layer
 * with mtimes clamped to `epoch`, a config dated by the epoch, loaded under `reference`.
 */
async function loadReproducible(
  engine: Engine,
  rootfs: string,
  work: string,
  epoch: number,
  profile: Profile,
  reference: string,
  progress: Progress,
): Promise<void> {
  await removeBuildLeftovers(rootfs);
  const layer = join(work, 'layer.tar');
  await runChild('tar', layerTarArgs(rootfs, layer, epoch), { label: 'tar', progress });
  const diffId = await fileDigest(layer);
  const { suite, variant } = profile.base.bootstrap;
  const config = baseImageConfig(
    diffId,
    epoch,
    engineArchitecture(),
    `memcached-hardened: debootstrap --variant=${variant} ${suite}, then ${profile.apt.suites.join(' ')}`,
    BASE_CMD,
  );
  const configFile = `${createHash('sha256').update(config).digest('hex')}.json`;
  await writeFile(join(work, configFile), config);
  await writeFile(join(work, 'manifest.json'), loadManifest(configFile, 'layer.tar', reference));
  progress(
    `[base] loading ${reference} (layer ${diffId.slice(7, 19)}, image ${configFile.slice(0, 12)}, ` +
      `mtimes clamped to ${new Date(epoch * 1000).toISOString()})`,
  );
  const archive = startChild('tar', ['--create', `--directory=${work}`, 'manifest.json', configFile, 'layer.tar'], {
    label: 'tar of the image archive',
    stdout: 'stream',
  });
  await Promise.all([engine.loadImage(archive.stdout), archive.done]);
}

/** The base's command, as a pulled Debian or Ubuntu image has it. */
const BASE_CMD = ['/bin/bash'];

/**
 * Bootstraps the profile's base with debootstrap, applies its update suites in a container, and loads
 * the result as a reproducible one-layer image under `reference` (by default the profile's base tag).
 */
export async function bootstrapBase(
  engine: Engine,
  profile: Profile,
  progress: Progress,
  reference = profile.base.image,
): Promise<void> {
  if (process.getuid?.() !== 0)
    throw failure(
      `bootstrapping ${profile.base.image} needs root (debootstrap); run as root or load the image yourself`,
    );
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
    await runChild('debootstrap', debootstrapArgs(profile, keyring, rootfs), { label: 'debootstrap', progress });
    // Downloaded packages and apt lists are build leftovers, not part of a base image.
    await rm(join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true });
    await rm(join(rootfs, 'var/lib/apt/lists'), { recursive: true, force: true });
    await mkdir(join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true });
    await mkdir(join(rootfs, 'var/lib/apt/lists/partial'), { recursive: true });
    progress(`[base] importing ${rootfs} to apply the updates in a container`);
    // GNU tar keeps device nodes, hard links and xattrs that a JavaScript packer would drop.
    const tar = startChild('tar', ['--numeric-owner', '--xattrs', '-C', rootfs, '-c', '.'], {
      label: `tar of ${rootfs}`,
      stdout: 'stream',
    });
    const bootstrapped = `${reference}-debootstrap`;
    await Promise.all([engine.importImage(tar.stdout, bootstrapped, []), tar.done]);
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
        (filesystem) =>
          runChild(
            'tar',
            ['--extract', '--numeric-owner', '--xattrs', '--xattrs-include=*', `--directory=${upgraded}`],
            {
              label: 'tar',
              progress,
              stdin: filesystem,
            },
          ),
      );
      if (exitCode !== 0) throw failure(`upgrading the base failed (exit ${exitCode}): ${tail.lines().join(' | ')}`);
    } finally {
      await engine.removeImage(bootstrapped).catch(() => undefined);
    }
    const epoch = fixedEpoch ?? releaseEpoch;
    if (epoch === undefined || !Number.isSafeInteger(epoch))
      throw failure('the updated base named no Release date to date its files by; set SOURCE_DATE_EPOCH');
    await loadReproducible(engine, upgraded, work, epoch, profile, reference, progress);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
