import { execFile } from 'node:child_process';
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

/**
 * The checkout's commit and commit time; SOURCE_DATE_EPOCH, when set, wins over the commit time. A bad
 * SOURCE_DATE_EPOCH throws at once, before anything else starts; git is asked without blocking, so a
 * build's engine calls go on meanwhile.
 */
export function sourceInfo(env: NodeJS.ProcessEnv = process.env): Promise<SourceInfo> {
  const epoch = sourceDateEpoch(env);
  return new Promise((resolve) =>
    execFile('git', ['log', '-1', '--format=%H %ct'], { cwd: projectPath() }, (error, stdout) => {
      // Outside a checkout (an unpacked release) there is no revision, and only SOURCE_DATE_EPOCH can date it.
      const [hash, time] = error ? [] : stdout.trim().split(' ');
      const [revision, committed] = hash && time ? [hash, Number(time)] : ['unknown', undefined];
      const date = epoch ?? committed;
      resolve({ revision, ...(date === undefined ? {} : { date: new Date(date * 1000) }) });
    }),
  );
}

export function toolVersion(): string {
  return (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }).version;
}
