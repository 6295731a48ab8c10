import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, stripVTControlCharacters } from 'node:util';
import { buildImage } from '../../src/build.js';
import { parseBuildArgs } from '../../src/config.js';
import { connectEngine } from '../../src/engine/index.js';
import { listProfiles, loadProfile } from '../../src/profiles.js';
import { serializeUsers, type SaslUser } from '../../src/credentials.js';
import { generatePassword } from '../../src/sasldb.js';
import { startSuite, verificationFile, type SuiteVerdict } from '../../src/verify.js';
import { docker } from '../helpers/resources.js';
import { buildTestImage } from '../helpers/test-image.js';
import type { IntendedCheck } from '../helpers/weakenings.js';
import { MUTANTS, mutantDockerfile } from './mutants.js';

const USAGE = `Usage: npm run test:mutants -- [--profile NAME|all] [--only MUTANT,...]

Builds weakened variants of the image (${MUTANTS.map((m) => m.name).join(', ')}), runs the checks that
must catch them against the real image and, against each mutant, the one check that must catch it
(named by the mutant). Exit 0 only if the real image passed them all and every mutant was caught by its check.`;

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
  if (verdict.failedChecks.some((name) => name.includes(check.test))) return { ok: true, outcome: `caught by ${intended}` };
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
  const { values } = parseArgs({ options: { profile: { type: 'string' }, only: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const profiles = !values.profile || values.profile === 'all' ? listProfiles() : [values.profile];
  const only = values.only?.split(',');
  const unknown = only?.filter((name) => !MUTANTS.some((m) => m.name === name)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown mutant(s) ${unknown.join(', ')} (known: ${MUTANTS.map((m) => m.name).join(', ')})`);
  const selected = only ? MUTANTS.filter((m) => only.includes(m.name)) : MUTANTS;
  const engine = connectEngine();
  await engine.ping();
  const scratch = mkdtempSync(join(tmpdir(), 'mh-mutants-'));
  const rows: Row[] = [];
  const started = Date.now();
  try {
    for (const profileName of profiles) {
      const profile = loadProfile(profileName);
      const users: SaslUser[] = [{ name: 'sammy', password: generatePassword() }, { name: 'alice', password: generatePassword() }];
      const usersFile = join(scratch, `users-${profileName}`);
      writeFileSync(usersFile, serializeUsers(users), { mode: 0o600 });
      const log = (line: string) => process.stderr.write(`[${profileName}] ${line}\n`);
      const build = (args: string[]) => buildImage(engine, parseBuildArgs(['--profile', profileName, ...args])!, profile, users, () => undefined);
      const real = await build(['--tag', `memcached-hardened-mutant/real:${profileName}`]);
      // Built only where a mutant needs it: the weakness shows only with runtime credentials.
      let realRuntime: Promise<string> | undefined;
      const runtimeImage = () =>
        (realRuntime ??= build(['--runtime-credentials', '--tag', `memcached-hardened-mutant/real-runtime:${profileName}`]).then((r) => r.imageId));
      const client = await build(['--target', 'client', '--tag', `memcached-hardened-mutant/client:${profileName}`]);
      log(`real image ${real.imageId.slice(7, 19)}: running the ${selected.length} mutants' checks`);
      // The same checks the mutants face, not the whole suite again: \`npm test\` already ran it on this build.
      const realRun = startSuite({ imageId: real.imageId, profile: profileName, usersFile, only: intendedChecks(selected) });
      const realVerdict = await realRun.done;
      // The real image must pass: when it does not, the reasons are what the reader of this log needs.
      if (!realVerdict.passed) process.stderr.write(`${failureReport(realRun.output())}\n`);
      rows.push({ profile: profileName, variant: 'real image', weakness: '-', outcome: realVerdict.passed ? 'its checks passed' : `its checks FAILED: ${realVerdict.failedChecks.slice(0, 3).join('; ')}`, ok: realVerdict.passed });
      for (const mutant of selected) {
        const tag = `memcached-hardened-mutant/${mutant.name}:${profileName}`;
        try {
          const check = mutant.caughtBy;
          const from = mutant.credentials === 'runtime' ? await runtimeImage() : real.imageId;
          const mutantId = await buildTestImage(mutantDockerfile(from, mutant, { users, clientImage: client.imageId }), tag).catch((error: Error) => {
            rows.push({ profile: profileName, variant: mutant.name, weakness: mutant.weakness, outcome: `NOT BUILT: ${error.message.split('\n')[0]}`, ok: false });
            return undefined;
          });
          if (!mutantId) continue;
          log(`mutant ${mutant.name}: running ${check.file}: ${check.test}`);
          const only = intendedChecks([mutant]);
          // The TLS build on top of a mutant costs an apt run: made only where the intended check speaks TLS.
          const env = { MEMCACHED_TLS: check.tls ? 'on' : 'off' };
          const verdict = await startSuite({ imageId: mutantId, profile: profileName, usersFile, only, env }).done;
          rows.push({ profile: profileName, variant: mutant.name, weakness: mutant.weakness, ...judged(check, verdict) });
        } finally {
          await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
        }
      }
      for (const kind of ['real', 'real-runtime']) {
        await docker.getImage(`memcached-hardened-mutant/${kind}:${profileName}`).remove({ force: true }).catch(() => undefined);
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`\nMutation check (${Math.round((Date.now() - started) / 1000)} s):`);
  for (const row of rows) console.log(`  ${row.ok ? 'ok  ' : 'FAIL'} ${row.profile.padEnd(13)} ${row.variant.padEnd(26)} ${row.weakness.padEnd(66)} ${row.outcome}`);
  const caught = rows.filter((r) => r.variant !== 'real image' && r.ok).length;
  const mutants = rows.filter((r) => r.variant !== 'real image').length;
  console.log(`${caught} of ${mutants} mutants caught; real image ${rows.filter((r) => r.variant === 'real image').every((r) => r.ok) ? 'passed' : 'FAILED'}`);
  return rows.every((r) => r.ok) ? 0 : 1;
}

process.exitCode = await main().catch((error: Error) => {
  console.error(`test:mutants: ${error.message}`);
  return 1;
});
