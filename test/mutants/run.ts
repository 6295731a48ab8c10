import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, stripVTControlCharacters } from 'node:util';
import { buildImage, INPUTS_LABEL } from '../../src/build.js';
import { parseBuildArgs } from '../../src/config.js';
import { connectEngine } from '../../src/engine/index.js';
import { listProfiles, loadProfile } from '../../src/profiles.js';
import { serializeUsers, type SaslUser } from '../../src/credentials.js';
import { generatePassword } from '../../src/sasldb.js';
import { projectPath } from '../../src/paths.js';
import { MUTATION_RESULT_KIND, type MutationResult, type MutationRun } from '../../src/signing/mutation-result.js';
import { headCommit } from '../../src/source.js';
import { startSuite, verificationFile, type SuiteVerdict } from '../../src/verify.js';
import { docker } from '../helpers/resources.js';
import { buildTestImage } from '../helpers/test-image.js';
import {
  isSeccompWeakening,
  SECCOMP_WEAKENING_ENV,
  type IntendedCheck,
  type Weakening,
} from '../helpers/weakenings.js';
import { MUTANTS, mutantDockerfile } from './mutants.js';

const USAGE = `Usage: npm run test:mutants -- [--profile NAME|all] [--only MUTANT,...] [--json-out FILE]

Builds weakened variants of the image (${MUTANTS.map((m) => m.name).join(', ')}), runs the checks that
must catch them against the real image and, against each mutant, the one check that must catch it
(named by the mutant). Exit 0 only if the real image passed them all and every mutant was caught by its check.
--json-out FILE writes the result as JSON (commit, per profile the real image's id and build-inputs digest,
each mutant's outcome): \`release --mutation-result FILE\` puts it in the verification report.`;

interface Row {
  readonly profile: string;
  readonly variant: string;
  readonly weakness: string;
  readonly outcome: string;
  readonly ok: boolean;
}

/** A literal title as a vitest test-name pattern. */
function literalPattern(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether the intended check is among the failed ones, and what failed instead where it is not. */
function judged(check: IntendedCheck, verdict: SuiteVerdict): { ok: boolean; outcome: string } {
  const intended = `${check.file}: ${check.test}`;
  if (verdict.failedChecks.some((name) => name.includes(check.test)))
    return { ok: true, outcome: `caught by ${intended}` };
  const instead = verdict.passed ? 'it passed' : `failed instead: ${verdict.failedChecks.slice(0, 2).join('; ')}`;
  return { ok: false, outcome: `NOT caught by ${intended} (${instead})` };
}

/** The files and test names of the checks that must catch `mutants`, as one suite selection. */
function intendedChecks(mutants: readonly (typeof MUTANTS)[number][]): { files: string[]; testNamePattern: string } {
  const files = [...new Set(mutants.map((m) => verificationFile(m.caughtBy.file)))];
  return { files, testNamePattern: [...new Set(mutants.map((m) => literalPattern(m.caughtBy.test)))].join('|') };
}

/** vitest's account of the failed tests (from its "Failed Tests" banner), without colours. */
function failureReport(output: string): string {
  const plain = stripVTControlCharacters(output);
  const start = plain.search(/⎯+ Failed (Tests|Suites)/);
  const end = plain.indexOf(' Test Files ', start);
  return start < 0 ? plain.split('\n').slice(-40).join('\n') : plain.slice(start, end < 0 ? undefined : end);
}

async function main(): Promise<number> {
  const options = {
    profile: { type: 'string' },
    only: { type: 'string' },
    'json-out': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  } as const;
  const { values } = parseArgs({ options, strict: true });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const profiles = !values.profile || values.profile === 'all' ? listProfiles() : [values.profile];
  const only = values.only?.split(',');
  const unknown = only?.filter((name) => !MUTANTS.some((m) => m.name === name)) ?? [];
  if (unknown.length > 0)
    throw new Error(`unknown mutant(s) ${unknown.join(', ')} (known: ${MUTANTS.map((m) => m.name).join(', ')})`);
  const selected = only ? MUTANTS.filter((m) => only.includes(m.name)) : MUTANTS;
  const engine = connectEngine();
  await engine.ping();
  const scratch = mkdtempSync(join(tmpdir(), 'mh-mutants-'));
  const rows: Row[] = [];
  const runs: MutationRun[] = [];
  const started = Date.now();
  try {
    for (const profileName of profiles) {
      const profile = loadProfile(profileName);
      const users: SaslUser[] = [
        { name: 'sammy', password: generatePassword() },
        { name: 'alice', password: generatePassword() },
      ];
      const usersFile = join(scratch, `users-${profileName}`);
      writeFileSync(usersFile, serializeUsers(users), { mode: 0o600 });
      const log = (line: string) => process.stderr.write(`[${profileName}] ${line}\n`);
      const build = (args: string[]) =>
        buildImage(engine, parseBuildArgs(['--profile', profileName, ...args])!, profile, users, () => undefined);
      const real = await build(['--tag', `memcached-hardened-mutant/real:${profileName}`]);
      // Built only where a mutant needs it: the weakness shows only with runtime credentials.
      let realRuntime: Promise<string> | undefined;
      const runtimeImage = () =>
        (realRuntime ??= build([
          '--runtime-credentials',
          '--tag',
          `memcached-hardened-mutant/real-runtime:${profileName}`,
        ]).then((r) => r.imageId));
      const client = await build(['--target', 'client', '--tag', `memcached-hardened-mutant/client:${profileName}`]);
      log(`real image ${real.imageId.slice(7, 19)}: running the ${selected.length} mutants' checks`);
      // The same checks the mutants face, not the whole suite again: \`npm test\` already ran it on this build.
      const realRun = startSuite({
        imageId: real.imageId,
        profile: profileName,
        usersFile,
        only: intendedChecks(selected),
      });
      const realVerdict = await realRun.done;
      // The real image must pass: when it does not, the reasons are what the reader of this log needs.
      if (!realVerdict.passed) process.stderr.write(`${failureReport(realRun.output())}\n`);
      const inputs = (await engine.inspectImage(real.imageId))?.labels[INPUTS_LABEL] ?? 'unknown';
      const judgedMutants: MutationRun['mutants'][number][] = [];
      const realImagePassed = realVerdict.passed;
      runs.push({ profile: profileName, imageId: real.imageId, inputs, realImagePassed, mutants: judgedMutants });
      const judge = (mutant: (typeof MUTANTS)[number], row: Pick<Row, 'outcome' | 'ok'>) => {
        rows.push({ profile: profileName, variant: mutant.name, weakness: mutant.weakness, ...row });
        judgedMutants.push({ name: mutant.name, weakness: mutant.weakness, caught: row.ok, outcome: row.outcome });
      };
      rows.push({
        profile: profileName,
        variant: 'real image',
        weakness: '-',
        outcome: realVerdict.passed
          ? 'its checks passed'
          : `its checks FAILED: ${realVerdict.failedChecks.slice(0, 3).join('; ')}`,
        ok: realVerdict.passed,
      });
      for (const mutant of selected) {
        const tag = `memcached-hardened-mutant/${mutant.name}:${profileName}`;
        try {
          const check = mutant.caughtBy;
          const from = mutant.credentials === 'runtime' ? await runtimeImage() : real.imageId;
          // A seccomp weakening is the image as shipped: only the profile its servers start under differs.
          const context = { users, clientImage: client.imageId };
          const build = (image: Weakening) => buildTestImage(mutantDockerfile(from, image, context), tag);
          const built = isSeccompWeakening(mutant) ? Promise.resolve(from) : build(mutant);
          const mutantId = await built.catch((error: Error) => {
            judge(mutant, { outcome: `NOT BUILT: ${error.message.split('\n')[0]}`, ok: false });
            return undefined;
          });
          if (!mutantId) continue;
          log(`mutant ${mutant.name}: running ${check.file}: ${check.test}`);
          const only = intendedChecks([mutant]);
          // The TLS build on top of a mutant costs an apt run: made only where the intended check speaks TLS.
          // A seccomp weakening reaches every server of the run through the environment (test/helpers/server.ts).
          const env: Record<string, string> = { MEMCACHED_TLS: check.tls ? 'on' : 'off' };
          if (isSeccompWeakening(mutant)) env[SECCOMP_WEAKENING_ENV] = mutant.name;
          const verdict = await startSuite({ imageId: mutantId, profile: profileName, usersFile, only, env }).done;
          judge(mutant, judged(check, verdict));
        } finally {
          await docker
            .getImage(tag)
            .remove({ force: true })
            .catch(() => undefined);
        }
      }
      for (const kind of ['real', 'real-runtime']) {
        await docker
          .getImage(`memcached-hardened-mutant/${kind}:${profileName}`)
          .remove({ force: true })
          .catch(() => undefined);
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`\nMutation check (${Math.round((Date.now() - started) / 1000)} s):`);
  for (const row of rows)
    console.log(
      `  ${row.ok ? 'ok  ' : 'FAIL'} ${row.profile.padEnd(13)} ${row.variant.padEnd(26)} ` +
        `${row.weakness.padEnd(66)} ${row.outcome}`,
    );
  const realPassed = rows.filter((r) => r.variant === 'real image').every((r) => r.ok);
  const caught = rows.filter((r) => r.variant !== 'real image' && r.ok).length;
  const mutants = rows.filter((r) => r.variant !== 'real image').length;
  if (values['json-out']) {
    const commit = headCommit(projectPath()) ?? 'unknown';
    const result: MutationResult = { kind: MUTATION_RESULT_KIND, commit, finishedOn: new Date().toISOString(), runs };
    // npm runs the script from the package root: the path is the caller's, as the CLI's are.
    const out = resolve(process.env.INIT_CWD ?? process.cwd(), values['json-out']);
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  }
  console.log(`${caught} of ${mutants} mutants caught; real image ${realPassed ? 'passed' : 'FAILED'}`);
  return rows.every((r) => r.ok) ? 0 : 1;
}

process.exitCode = await main().catch((error: Error) => {
  console.error(`test:mutants: ${error.message}`);
  return 1;
});
