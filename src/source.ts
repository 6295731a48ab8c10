import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { badInput } from './errors.js';
import { cacheDir, projectPath } from './paths.js';

/** Where a build comes from: what its labels say instead of anything read from the clock. */
export interface SourceInfo {
  /** The git commit, or 'unknown' outside a checkout. */
  readonly revision: string;
  /** SOURCE_DATE_EPOCH, else the commit's time; undefined when neither is known. */
  readonly date?: Date;
}

/** SOURCE_DATE_EPOCH (reproducible-builds.org): whole seconds since 1970, or undefined when unset. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,12}$/.test(value)) throw badInput(`SOURCE_DATE_EPOCH must be whole seconds since 1970 (got '${value}')`);
  return Number(value);
}

const COMMIT = /^[0-9a-f]{40}$/;

/**
 * The commit HEAD names, read from the checkout's .git without running git; undefined wherever that is
 * not plain (no checkout, a worktree or submodule whose .git is a file, an unusual HEAD).
 */
export function headCommit(root: string): string | undefined {
  const read = (name: string) => {
    try {
      return readFileSync(join(root, '.git', name), 'utf8');
    } catch {
      return undefined;
    }
  };
  const head = read('HEAD')?.trim();
  if (head === undefined || COMMIT.test(head)) return head;
  const ref = /^ref: (refs\/\S+)$/.exec(head)?.[1];
  if (ref === undefined || ref.split('/').includes('..')) return undefined;
  // A loose ref, else its line in packed-refs (where a clone may keep it).
  const hash =
    read(ref)?.trim() ??
    read('packed-refs')
      ?.split('\n')
      .find((line) => line.endsWith(` ${ref}`))
      ?.slice(0, 40);
  return hash !== undefined && COMMIT.test(hash) ? hash : undefined;
}

/** Commit times already asked of git, by commit: a commit's time never changes, so this cannot go stale. */
const commitTimesFile = (env: NodeJS.ProcessEnv) => join(cacheDir(env), 'commit-times.json');
const KEPT_COMMIT_TIMES = 32;

/** The commit times cached so far; none when there is no cache yet or it cannot be read. */
function cachedCommitTimes(env: NodeJS.ProcessEnv): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(commitTimesFile(env), 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function rememberCommitTime(
  cached: Record<string, unknown>,
  commit: string,
  time: number,
  env: NodeJS.ProcessEnv,
): void {
  try {
    const kept = Object.entries({ ...cached, [commit]: time }).slice(-KEPT_COMMIT_TIMES);
    mkdirSync(cacheDir(env), { recursive: true });
    writeFileSync(commitTimesFile(env), JSON.stringify(Object.fromEntries(kept)));
  } catch {
    // A cache that cannot be written only costs the next build a git run.
  }
}

/** `git log -1` in the project: the commit and its time, or undefined outside a checkout. */
function askGit(): Promise<{ commit: string; time: number } | undefined> {
  return new Promise((resolve) =>
    execFile('git', ['log', '-1', '--format=%H %ct'], { cwd: projectPath() }, (error, stdout) => {
      const [commit, time] = error ? [] : stdout.trim().split(' ');
      resolve(commit && COMMIT.test(commit) && time && /^\d+$/.test(time) ? { commit, time: Number(time) } : undefined);
    }),
  );
}

/**
 * The checkout's commit and commit time; SOURCE_DATE_EPOCH, when set, wins over the commit time. A bad
 * SOURCE_DATE_EPOCH throws at once, before anything else starts. The commit is read from .git and its
 * time from the cache of times git gave before; git itself runs only when either is missing.
 */
export function sourceInfo(env: NodeJS.ProcessEnv = process.env): Promise<SourceInfo> {
  const epoch = sourceDateEpoch(env);
  const dated = (revision: string, committed: number | undefined): SourceInfo => {
    const date = epoch ?? committed;
    return { revision, ...(date === undefined ? {} : { date: new Date(date * 1000) }) };
  };
  const head = headCommit(projectPath());
  const cached = cachedCommitTimes(env);
  const known = head === undefined ? undefined : cached[head];
  if (head !== undefined && typeof known === 'number' && Number.isSafeInteger(known))
    return Promise.resolve(dated(head, known));
  return askGit().then((asked) => {
    // Outside a checkout (an unpacked release) there is no revision, and only SOURCE_DATE_EPOCH can date it.
    if (asked === undefined) return dated('unknown', undefined);
    rememberCommitTime(cached, asked.commit, asked.time, env);
    return dated(asked.commit, asked.time);
  });
}

export function toolVersion(): string {
  return (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }).version;
}
