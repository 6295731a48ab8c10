import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A bootstrapped root filesystem made into a reproducible one-layer image, as debuerreotype does: build
 * leftovers that carry timestamps removed, a sorted tar with numeric owners and no atime/ctime, every
 * mtime clamped to a fixed epoch, and an image config without a clock reading, loaded as-is. Two
 * bootstraps from the same archive state then give the same layer digest and the same image id.
 */

/**
 * Files that say when or where they were written (logs, caches of inode times, hash-seeded indexes), not what the
 * system is.
 */
export const UNREPRODUCIBLE_FILES = [
  'var/log/dpkg.log',
  'var/log/bootstrap.log',
  'var/log/alternatives.log',
  'var/cache/ldconfig/aux-cache',
  'var/lib/systemd/catalog/database',
  'run/mount/utab',
  // The container the updates ran in.
  '.dockerenv',
];
/** Random per machine; emptied, which systemd reads as "not yet set". */
const MACHINE_ID_FILES = ['etc/machine-id', 'var/lib/dbus/machine-id'];
/** Folders emptied but kept: apt's logs (history, terminal output, solver dumps) and downloaded indexes. */
export const EMPTIED_FOLDERS = ['var/log/apt', 'var/lib/apt/lists', 'var/cache/apt'];
/** Backups dpkg and debconf leave after an upgrade. */
const BACKUP = /-old$/;

async function entries(dir: string) {
  return readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
}

/** Removes from the root filesystem what differs between two bootstraps of the same archive state. */
export async function removeBuildLeftovers(rootfs: string): Promise<void> {
  await Promise.all(UNREPRODUCIBLE_FILES.map((file) => rm(join(rootfs, file), { force: true })));
  for (const file of MACHINE_ID_FILES) {
    const path = join(rootfs, file);
    // A symlink (dbus's to systemd's) is left as it is.
    if ((await lstat(path).catch(() => undefined))?.isFile()) await truncate(path, 0);
  }
  for (const folder of EMPTIED_FOLDERS) {
    for (const entry of await entries(join(rootfs, folder))) {
      // apt recreates what it needs in these, except the "partial" folders it expects to find.
      if (entry.name !== 'partial' && entry.name !== 'archives')
        await rm(join(rootfs, folder, entry.name), { recursive: true, force: true });
    }
  }
  for (const folder of ['var/lib/dpkg', 'var/cache/debconf']) {
    for (const entry of await entries(join(rootfs, folder)))
      if (entry.isFile() && BACKUP.test(entry.name)) await rm(join(rootfs, folder, entry.name));
  }
  // Other logs stay (some tools expect them) but empty.
  for (const entry of await readdir(join(rootfs, 'var/log'), { withFileTypes: true, recursive: true }).catch(
    () => [],
  )) {
    if (entry.isFile()) await truncate(join(entry.parentPath, entry.name), 0);
  }
}

/** GNU tar's arguments for the layer: sorted, numeric owners, mtimes clamped to `epoch`, no atime/ctime. */
export function layerTarArgs(rootfs: string, output: string, epoch: number): string[] {
  return [
    '--create',
    `--file=${output}`,
    `--directory=${rootfs}`,
    '--format=posix',
    // The default extended-header name holds the packing process's id.
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '--sort=name',
    '--numeric-owner',
    '--xattrs',
    '--xattrs-include=*',
    `--mtime=@${epoch}`,
    '--clamp-mtime',
    // The engine mounts its own /dev, /proc and /sys.
    '--exclude=./dev/*',
    '--exclude=./proc/*',
    '--exclude=./sys/*',
    '--transform=s,^\\./,,',
    '.',
  ];
}

/** sha256 of a file, as `sha256:<hex>`. */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** The engine's name for this machine's architecture (what debootstrap bootstraps by default). */
export function engineArchitecture(nodeArch: string = process.arch): string {
  const names: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
  };
  const name = names[nodeArch];
  if (!name) throw new Error(`no container architecture known for ${nodeArch}`);
  return name;
}

/** The image config of a one-layer base: dated by the epoch, never by the clock; its digest is the image id. */
export function baseImageConfig(
  diffId: string,
  epoch: number,
  architecture: string,
  createdBy: string,
  cmd: readonly string[],
): string {
  const created = new Date(epoch * 1000).toISOString();
  return JSON.stringify({
    architecture,
    os: 'linux',
    created,
    config: { Cmd: [...cmd] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: createdBy }],
  });
}

/** manifest.json of a `docker load` archive holding one image with one layer. */
export function loadManifest(configFile: string, layerFile: string, reference: string): string {
  return JSON.stringify([{ Config: configFile, RepoTags: [reference], Layers: [layerFile] }]);
}
