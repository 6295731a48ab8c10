import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { pack } from 'tar-fs';
import { buildImage } from '../../src/build.js';
import { parseBuildArgs } from '../../src/config.js';
import { connectEngine } from '../../src/docker.js';
import { projectPath } from '../../src/paths.js';
import { listProfiles, loadProfile } from '../../src/profiles.js';
import { generatePassword, serializeUsers, type SaslUser } from '../../src/sasldb.js';
import { MUTANTS, mutantDockerfile } from './mutants.js';

const USAGE = `Usage: npm run test:mutants -- [--profile NAME|all] [--only MUTANT,...]

Builds weakened variants of the image (${MUTANTS.map((m) => m.name).join(', ')}), runs the integration
suite against each and against the real image, and shows that the suite fails on every mutant and passes
on the real one. Exit 0 only if every mutant was caught and the real image passed.`;

const SUITE_FILES = ['smoke', 'auth', 'udp', 'bind', 'firewall', 'hardening'].map((f) => `test/integration/${f}.test.ts`);

interface Verdict {
  readonly profile: string;
  readonly image: string;
  readonly passed: boolean;
  readonly failedChecks: string[];
}

/** Runs the suite against one image; returns whether it passed and which tests failed. */
async function runSuite(profile: string, image: string, usersFile: string, scratch: string): Promise<Verdict> {
  const report = join(scratch, `report-${Date.now()}.json`);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(
      process.execPath,
      [projectPath('node_modules/vitest/vitest.mjs'), 'run', '--project', 'integration', '--reporter=json', `--outputFile.json=${report}`, ...SUITE_FILES],
      { cwd: projectPath(), env: { ...process.env, MEMCACHED_IMAGE: image, MEMCACHED_USERS_FILE: usersFile, MEMCACHED_PROFILE: profile }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr.on('data', () => undefined);
    child.on('close', resolve);
  });
  let failedChecks: string[] = [];
  try {
    const json = JSON.parse(readFileSync(report, 'utf8')) as { testResults: Array<{ assertionResults: Array<{ status: string; fullName: string }>; message?: string; name: string }> };
    failedChecks = json.testResults.flatMap((file) => {
      const failed = file.assertionResults.filter((a) => a.status === 'failed').map((a) => a.fullName);
      return failed.length > 0 || !file.message ? failed : [`${file.name.split('/').pop()}: ${file.message.split('\n')[0]}`];
    });
  } catch {
    failedChecks = ['(no report: the suite did not run)'];
  }
  // A failing beforeAll (e.g. a server that refuses to start) fails the run without failing an assertion.
  if (code !== 0 && failedChecks.length === 0) failedChecks = ['setup: the servers under test did not start'];
  return { profile, image, passed: code === 0, failedChecks };
}

async function buildMutant(docker: Docker, dockerfile: string, tag: string, scratch: string): Promise<void> {
  const dir = mkdtempSync(join(scratch, 'mutant-'));
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  const stream = await docker.buildImage(pack(dir) as unknown as NodeJS.ReadableStream, { t: tag, rm: true, forcerm: true });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) => {
      const failure = error?.message ?? output.find((m) => m.error)?.error;
      if (failure) reject(new Error(`mutant build ${tag} failed: ${failure}`));
      else resolve();
    });
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { profile: { type: 'string' }, only: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const profiles = !values.profile || values.profile === 'all' ? listProfiles() : [values.profile];
  const selected = values.only ? MUTANTS.filter((m) => values.only?.split(',').includes(m.name)) : MUTANTS;
  const engine = connectEngine();
  await engine.ping();
  const docker = new Docker();
  const scratch = mkdtempSync(join(tmpdir(), 'mh-mutants-'));
  const rows: Array<{ profile: string; variant: string; weakness: string; outcome: string; ok: boolean }> = [];
  const started = Date.now();
  try {
    for (const profileName of profiles) {
      const profile = loadProfile(profileName);
      const users: SaslUser[] = [{ name: 'sammy', password: generatePassword() }, { name: 'alice', password: generatePassword() }];
      const usersFile = join(scratch, `users-${profileName}`);
      writeFileSync(usersFile, serializeUsers(users), { mode: 0o600 });
      const log = (line: string) => process.stderr.write(`[${profileName}] ${line}\n`);
      const real = await buildImage(engine, parseBuildArgs(['--profile', profileName, '--tag', `memcached-hardened-mutant/real:${profileName}`])!, profile, users, () => undefined);
      log(`real image ${real.imageId.slice(7, 19)}: running the suite`);
      const realVerdict = await runSuite(profileName, real.imageId, usersFile, scratch);
      rows.push({ profile: profileName, variant: 'real image', weakness: '-', outcome: realVerdict.passed ? 'suite passed' : `suite FAILED: ${realVerdict.failedChecks.slice(0, 3).join('; ')}`, ok: realVerdict.passed });
      for (const mutant of selected) {
        const tag = `memcached-hardened-mutant/${mutant.name}:${profileName}`;
        try {
          await buildMutant(docker, mutantDockerfile(real.imageId, mutant, users), tag, scratch);
          log(`mutant ${mutant.name}: running the suite`);
          const verdict = await runSuite(profileName, tag, usersFile, scratch);
          rows.push({
            profile: profileName,
            variant: mutant.name,
            weakness: mutant.weakness,
            outcome: verdict.passed ? 'SURVIVED: the suite passed' : `caught: ${verdict.failedChecks.length} failure(s), e.g. ${verdict.failedChecks[0]}`,
            ok: !verdict.passed,
          });
        } finally {
          await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
        }
      }
      await docker.getImage(`memcached-hardened-mutant/real:${profileName}`).remove({ force: true }).catch(() => undefined);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`\nMutation check (${Math.round((Date.now() - started) / 1000)} s):`);
  for (const row of rows) console.log(`  ${row.ok ? 'ok  ' : 'FAIL'} ${row.profile.padEnd(13)} ${row.variant.padEnd(22)} ${row.weakness.padEnd(58)} ${row.outcome}`);
  const caught = rows.filter((r) => r.variant !== 'real image' && r.ok).length;
  const mutants = rows.filter((r) => r.variant !== 'real image').length;
  console.log(`${caught} of ${mutants} mutants caught; real image ${rows.filter((r) => r.variant === 'real image').every((r) => r.ok) ? 'passed' : 'FAILED'}`);
  return rows.every((r) => r.ok) ? 0 : 1;
}

process.exitCode = await main().catch((error: Error) => {
  console.error(`test:mutants: ${error.message}`);
  return 1;
});
