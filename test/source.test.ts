import { describe, expect, it } from 'vitest';
import { imageLabels } from '../src/build.js';
import { UserError } from '../src/errors.js';
import { loadProfile } from '../src/profiles.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath } from '../src/paths.js';
import { headCommit, sourceDateEpoch, sourceInfo } from '../src/source.js';

describe('source date', () => {
  it('reads SOURCE_DATE_EPOCH as whole seconds and refuses anything else', () => {
    expect(sourceDateEpoch({})).toBeUndefined();
    expect(sourceDateEpoch({ SOURCE_DATE_EPOCH: '' })).toBeUndefined();
    expect(sourceDateEpoch({ SOURCE_DATE_EPOCH: '1700000000' })).toBe(1_700_000_000);
    for (const bad of ['-1', '1.5', 'yesterday', '1e9'])
      expect(() => sourceDateEpoch({ SOURCE_DATE_EPOCH: bad })).toThrow(UserError);
  });

  it('dates the source with SOURCE_DATE_EPOCH when set, never with the clock', async () => {
    expect((await sourceInfo({ SOURCE_DATE_EPOCH: '86400' })).date?.toISOString()).toBe('1970-01-02T00:00:00.000Z');
    const a = await sourceInfo({});
    const b = await sourceInfo({});
    expect(a).toEqual(b);
    expect(a.revision).toMatch(/^[0-9a-f]{40}$/);
  });
});

describe('the commit a build comes from', () => {
  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);
  /** A fake checkout: only the files of .git that headCommit reads. */
  function checkout(files: Record<string, string>): string {
    const root = mkdtempSync(join(tmpdir(), 'mh-git-'));
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(root, '.git', name, '..'), { recursive: true });
      writeFileSync(join(root, '.git', name), text);
    }
    return root;
  }

  it('reads HEAD from .git: detached, a loose ref, or a ref kept in packed-refs', () => {
    const cases: Array<[Record<string, string>, string | undefined]> = [
      [{ HEAD: `${A}\n` }, A],
      [{ HEAD: 'ref: refs/heads/main\n', 'refs/heads/main': `${B}\n` }, B],
      [
        {
          HEAD: 'ref: refs/heads/main\n',
          'packed-refs': `# pack-refs with: peeled fully-peeled sorted\n${A} refs/heads/other\n${B} refs/heads/main\n`,
        },
        B,
      ],
      // Where it is not plain, undefined: git is asked instead.
      [{ HEAD: 'ref: refs/heads/main\n' }, undefined],
      [{ HEAD: 'ref: refs/heads/../../../etc/passwd\n' }, undefined],
      [{ HEAD: 'ref: refs/heads/main\n', 'refs/heads/main': 'not a commit\n' }, undefined],
      [{}, undefined],
    ];
    for (const [files, expected] of cases) {
      const root = checkout(files);
      try {
        expect(headCommit(root), JSON.stringify(files)).toBe(expected);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
    // A worktree's .git is a file pointing elsewhere.
    const worktree = mkdtempSync(join(tmpdir(), 'mh-git-'));
    writeFileSync(join(worktree, '.git'), 'gitdir: /elsewhere\n');
    expect(headCommit(worktree)).toBeUndefined();
    rmSync(worktree, { recursive: true, force: true });
  });

  it("is this checkout's HEAD, dated by git once and then by the cache of commit times", async () => {
    const [commit, time] = execFileSync('git', ['log', '-1', '--format=%H %ct'], { cwd: projectPath() })
      .toString()
      .trim()
      .split(' ');
    expect(headCommit(projectPath())).toBe(commit);
    const cache = mkdtempSync(join(tmpdir(), 'mh-cache-'));
    const env = { MEMCACHED_HARDENED_CACHE: cache };
    try {
      expect(await sourceInfo(env)).toEqual({ revision: commit, date: new Date(Number(time) * 1000) });
      expect(JSON.parse(readFileSync(join(cache, 'commit-times.json'), 'utf8'))).toEqual({ [commit!]: Number(time) });
      // Control: what the cache says is what the build uses (a commit's time never changes, so it is trusted).
      writeFileSync(join(cache, 'commit-times.json'), JSON.stringify({ [commit!]: 86400 }));
      expect(await sourceInfo(env)).toEqual({ revision: commit, date: new Date(86400 * 1000) });
      // A corrupt cache is ignored and rewritten from git.
      writeFileSync(join(cache, 'commit-times.json'), '{not json');
      expect((await sourceInfo(env)).date).toEqual(new Date(Number(time) * 1000));
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});

describe('imageLabels', () => {
  const profile = loadProfile('ubuntu-16.04');

  it('label the source, not the moment of the build', () => {
    const labels = imageLabels(profile, 'server', { revision: 'abc', date: new Date(0) }, '1.2.3');
    expect(labels).toMatchObject({
      'org.opencontainers.image.created': '1970-01-01T00:00:00.000Z',
      'org.opencontainers.image.revision': 'abc',
      'org.opencontainers.image.version': '1.2.3',
      'memcached-hardened.target': 'server',
    });
  });

  it('leave out the creation date when the source has none', () => {
    expect(imageLabels(profile, 'client', { revision: 'unknown' }, '1.2.3')).not.toHaveProperty([
      'org.opencontainers.image.created',
    ]);
  });
});
