import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  baseImageConfig,
  engineArchitecture,
  fileDigest,
  layerTarArgs,
  loadManifest,
  removeBuildLeftovers,
} from '../src/rootfs.js';

const scratch = mkdtempSync(join(tmpdir(), 'mh-rootfs-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function tree(name: string): string {
  const root = join(scratch, name);
  for (const [path, content] of Object.entries({
    'etc/hostname': '',
    'usr/bin/tool': 'binary',
    'var/log/dpkg.log': '2026-01-01 install',
    'var/log/lastlog': 'some bytes',
    'var/log/apt/history.log': 'Start-Date: 2026-01-01',
    'var/lib/apt/lists/lock': '',
    'var/lib/apt/lists/some_InRelease': 'Date: ...',
    'var/cache/apt/pkgcache.bin': 'cache',
    'var/lib/dpkg/status': 'Package: x',
    'var/lib/systemd/catalog/database': 'hash-seeded',
    'etc/machine-id': '0123456789abcdef0123456789abcdef',
    'var/lib/dpkg/status-old': 'Package: y',
    'var/cache/debconf/config.dat-old': 'old',
    '.dockerenv': '',
  })) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  mkdirSync(join(root, 'var/lib/apt/lists/partial'), { recursive: true });
  mkdirSync(join(root, 'var/cache/apt/archives/partial'), { recursive: true });
  return root;
}

describe('removeBuildLeftovers', () => {
  it('removes timestamped leftovers and backups, empties logs, keeps what apt expects', async () => {
    const root = tree('leftovers');
    await removeBuildLeftovers(root);
    for (const gone of [
      'var/log/dpkg.log',
      'var/log/apt/history.log',
      'var/lib/apt/lists/some_InRelease',
      'var/lib/apt/lists/lock',
      'var/cache/apt/pkgcache.bin',
      'var/lib/dpkg/status-old',
      'var/cache/debconf/config.dat-old',
      'var/lib/systemd/catalog/database',
      '.dockerenv',
    ]) {
      expect(existsSync(join(root, gone)), gone).toBe(false);
    }
    for (const kept of [
      'var/lib/apt/lists/partial',
      'var/cache/apt/archives/partial',
      'var/log/apt',
      'var/lib/dpkg/status',
      'usr/bin/tool',
    ])
      expect(existsSync(join(root, kept)), kept).toBe(true);
    expect(statSync(join(root, 'var/log/lastlog')).size).toBe(0);
    expect(statSync(join(root, 'etc/machine-id')).size).toBe(0);
  });
});

describe('the base layer', () => {
  const pack = (root: string, output: string, epoch: number) => {
    const result = spawnSync('tar', layerTarArgs(root, output, epoch));
    expect(result.status, result.stderr.toString()).toBe(0);
    return fileDigest(output);
  };

  it('is the same tar for the same files, whenever they were written', async () => {
    const epoch = 1_700_000_000;
    const first = tree('first');
    const second = tree('second');
    // Newer than the epoch (clamped) in one tree, at other times in the other.
    utimesSync(join(second, 'usr/bin/tool'), new Date(), new Date(Date.now() + 5000));
    utimesSync(join(first, 'etc/hostname'), new Date(0), new Date(2_000_000_000 * 1000));
    const [a, b] = [
      await pack(first, join(scratch, 'a.tar'), epoch),
      await pack(second, join(scratch, 'b.tar'), epoch),
    ];
    expect(a).toBe(b);
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
    const listing = spawnSync('tar', [
      '--list',
      '--verbose',
      '--numeric-owner',
      '--full-time',
      `--file=${join(scratch, 'a.tar')}`,
    ]).stdout.toString();
    expect(listing).not.toMatch(/ \.\/\S/);
    expect(listing).toContain('2023-11-14 22:13:20 usr/bin/tool');
    expect(readFileSync(join(scratch, 'a.tar')).includes('PaxHeaders.')).toBe(false);
  });

  it('has a config dated by the epoch, and a load manifest naming it', () => {
    const config = baseImageConfig('sha256:abc', 86400, 'amd64', 'debootstrap xenial', ['/bin/bash']);
    expect(config).toBe(baseImageConfig('sha256:abc', 86400, 'amd64', 'debootstrap xenial', ['/bin/bash']));
    expect(JSON.parse(config)).toMatchObject({
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-02T00:00:00.000Z',
      config: { Cmd: ['/bin/bash'] },
      rootfs: { type: 'layers', diff_ids: ['sha256:abc'] },
    });
    expect(JSON.parse(loadManifest('c.json', 'layer.tar', 'ubuntu:16.04'))).toEqual([
      { Config: 'c.json', RepoTags: ['ubuntu:16.04'], Layers: ['layer.tar'] },
    ]);
    expect(engineArchitecture('x64')).toBe('amd64');
    expect(() => engineArchitecture('mips')).toThrow(/mips/);
  });
});
