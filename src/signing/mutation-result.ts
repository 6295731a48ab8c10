import { readFileSync } from 'node:fs';
import { badInput } from '../errors.js';

/**
 * The mutation check's result as `npm run test:mutants -- --json-out FILE` writes it, and what a release's
 * verification report says of it. The mutation check builds its own image (with its own users) from the
 * checkout: it judges the same source and profile, not the released image id. What ties the two together
 * is the build-inputs digest (the `memcached-hardened.inputs` label: base image id, rendered files,
 * labels, build arguments; the users' sasldb aside), which the report compares.
 */

export const MUTATION_RESULT_KIND = 'memcached-hardened mutation check';

export interface MutantOutcome {
  readonly name: string;
  readonly weakness: string;
  readonly caught: boolean;
  readonly outcome: string;
}

/** One profile's part of a mutation check. */
export interface MutationRun {
  readonly profile: string;
  /** The image the mutation check built for itself, and its build-inputs digest. */
  readonly imageId: string;
  readonly inputs: string;
  /** Whether that image passed the checks the mutants face. */
  readonly realImagePassed: boolean;
  readonly mutants: readonly MutantOutcome[];
}

export interface MutationResult {
  readonly kind: typeof MUTATION_RESULT_KIND;
  /** The checkout's commit: the suite's and the image source's. */
  readonly commit: string;
  /** ISO 8601. */
  readonly finishedOn: string;
  readonly runs: readonly MutationRun[];
}

const isString = (v: unknown): v is string => typeof v === 'string' && v !== '';

function isRun(v: unknown): v is MutationRun {
  const r = v as Partial<MutationRun> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    isString(r.profile) &&
    isString(r.imageId) &&
    isString(r.inputs) &&
    typeof r.realImagePassed === 'boolean' &&
    Array.isArray(r.mutants) &&
    r.mutants.every((m) => isString(m?.name) && typeof m.caught === 'boolean' && typeof m.outcome === 'string')
  );
}

/** The result in `text`, or a one-line bad-input error naming `source`. */
export function parseMutationResult(text: string, source: string): MutationResult {
  let parsed: Partial<MutationResult>;
  try {
    parsed = JSON.parse(text) as Partial<MutationResult>;
  } catch {
    throw badInput(`--mutation-result ${source}: not JSON`);
  }
  if (parsed?.kind !== MUTATION_RESULT_KIND || !isString(parsed.commit) || !isString(parsed.finishedOn)) {
    throw badInput(`--mutation-result ${source}: not a mutation check result (npm run test:mutants -- --json-out)`);
  }
  if (!Array.isArray(parsed.runs) || parsed.runs.length === 0 || !parsed.runs.every(isRun)) {
    throw badInput(`--mutation-result ${source}: its runs are missing or malformed`);
  }
  return parsed as MutationResult;
}

/**
 * The run of `profile` in the result file, checked against the commit this release builds from: a result
 * about other source says nothing about this release.
 */
export function readMutationRun(
  file: string,
  profile: string,
  commit: string | undefined,
): MutationResult & {
  readonly run: MutationRun;
} {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw badInput(`--mutation-result ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const result = parseMutationResult(text, file);
  const run = result.runs.find((r) => r.profile === profile);
  if (!run) throw badInput(`--mutation-result ${file}: no run of profile ${profile}`);
  if (commit === undefined || result.commit !== commit) {
    const building = commit ?? 'no commit';
    throw badInput(`--mutation-result ${file}: it ran at commit ${result.commit}, this release builds ${building}`);
  }
  return { ...result, run };
}

/** What the verification report says of the mutation check: 'not run', or its figures and what it judged. */
export function mutationCheckAnnotation(
  result: (MutationResult & { readonly run: MutationRun }) | undefined,
  releasedInputs: string | undefined,
): string | Record<string, unknown> {
  if (!result) return 'not run';
  const { run } = result;
  const caught = run.mutants.filter((m) => m.caught).map((m) => m.name);
  const missed = run.mutants.filter((m) => !m.caught).map((m) => m.name);
  return {
    result: run.realImagePassed && missed.length === 0 ? 'PASSED' : 'FAILED',
    commit: result.commit,
    finishedOn: result.finishedOn,
    profile: run.profile,
    realImagePassed: run.realImagePassed,
    mutantsCaught: caught,
    mutantsNotCaught: missed,
    judgedImage: run.imageId,
    judgedImageInputs: run.inputs,
    sameBuildInputs: releasedInputs !== undefined && releasedInputs === run.inputs,
    scope:
      'the mutation check built its own image of this commit and profile (its own users); sameBuildInputs says ' +
      'whether that image and the released one come from the same build inputs (the sasldb aside)',
  };
}
