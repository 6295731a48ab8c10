import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { badInput } from './errors.js';
import { projectPath } from './paths.js';

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

/** The checkout's commit and commit time; SOURCE_DATE_EPOCH, when set, wins over the commit time. */
export function sourceInfo(env: NodeJS.ProcessEnv = process.env): SourceInfo {
  let revision = 'unknown';
  let committed: number | undefined;
  try {
    const [hash, time] = execFileSync('git', ['log', '-1', '--format=%H %ct'], { cwd: projectPath(), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split(' ');
    if (hash && time) [revision, committed] = [hash, Number(time)];
  } catch {
    // Not a checkout (an unpacked release): no revision, and only SOURCE_DATE_EPOCH can date it.
  }
  const epoch = sourceDateEpoch(env) ?? committed;
  return { revision, ...(epoch === undefined ? {} : { date: new Date(epoch * 1000) }) };
}

export function toolVersion(): string {
  return (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }).version;
}
