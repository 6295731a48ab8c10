import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { projectPath } from './paths.js';
import type { Progress } from './base.js';

/**
 * The verification suite: the integration files that verify one image. The cleanup, compose and harness
 * checks test the suite and the examples, not the image, and stay out.
 */
export const VERIFICATION_FILES = [
  'smoke',
  'auth',
  'users',
  'mechanisms',
  'flags',
  'healthcheck',
  'udp',
  'bind',
  'listen',
  'firewall',
  'shared-namespace',
  'connection-cap',
  'hardening',
  'runtime-credentials',
  'tls-certificates',
  'tls-protocol',
  'tls-operations',
  'tls-policy',
  'listeners',
  'layers',
  'inventory',
  'filesystem',
  'logs',
  'vulnerabilities',
  'seccomp',
  'clients',
  'fleet',
].map(verificationFile);

/** The path of a verification file from its short name (`listeners` → test/integration/listeners.test.ts). */
export function verificationFile(name: string): string {
  return `test/integration/${name}.test.ts`;
}

export interface SuiteRequest {
  readonly imageId: string;
  readonly profile: string;
  /** user:password lines the image accepts (baked into it, or mounted for runtime credentials). */
  readonly usersFile: string;
  /** Stop at the first failing test: one is enough to refuse a release. */
  readonly bail?: boolean;
  /** Only these verification files and, within them, the tests whose full names match (one check's run). */
  readonly only?: { readonly files: readonly string[]; readonly testNamePattern?: string };
  /** Receives vitest's per-test lines as they come. */
  readonly progress?: Progress;
}

export interface SuiteVerdict {
  readonly passed: boolean;
  /** Full names of the failed tests (or the file-level error where a setup failed). */
  readonly failedChecks: string[];
  /** Every check the run reported, with its verdict, in the report's order ([] when there was no report). */
  readonly checks?: readonly SuiteCheck[];
}

/** One check of a run and its verdict as vitest reports it ('passed', 'failed', 'skipped', 'todo', …). */
export interface SuiteCheck {
  /** The test file, relative to the project (test/integration/smoke.test.ts). */
  readonly file: string;
  readonly name: string;
  readonly status: string;
}

/** The part of vitest's JSON report the verdict reads. */
export interface JsonReport {
  testResults: Array<{ name: string; message?: string; assertionResults: Array<{ status: string; fullName: string }> }>;
}

/** The failed tests of a report, or the first line of a file's own error where none failed (a setup failure). */
export function failedChecksIn(report: JsonReport): string[] {
  return report.testResults.flatMap((file) => {
    const failed = file.assertionResults.filter((a) => a.status === 'failed').map((a) => a.fullName);
    return failed.length > 0 || !file.message
      ? failed
      : [`${file.name.split('/').pop()}: ${file.message.split('\n')[0]}`];
  });
}

/** Every check of a report with its verdict; files relative to `root`. */
export function checksIn(report: JsonReport, root: string = projectPath()): SuiteCheck[] {
  return report.testResults.flatMap((file) =>
    file.assertionResults.map((a) => ({
      file: relative(root, file.name).split(sep).join('/'),
      name: a.fullName,
      status: a.status,
    })),
  );
}

function readReport(reportFile: string): JsonReport | undefined {
  try {
    return JSON.parse(readFileSync(reportFile, 'utf8')) as JsonReport;
  } catch {
    return undefined;
  }
}

/** A suite run in progress: its process (to interrupt it), everything it printed so far, and its verdict. */
export interface SuiteRun {
  readonly child: ChildProcess;
  output(): string;
  readonly done: Promise<SuiteVerdict & { readonly exitCode: number | null }>;
}

/**
 * Starts the verification suite against exactly this image id. `config` replaces the integration
 * project and its files with another vitest config over the same global setup (the cleanup test's
 * fixture runs the suite's own machinery this way); `env` adds to the run's environment.
 */
export function startSuite(
  request: SuiteRequest & { readonly config?: string; readonly env?: Readonly<Record<string, string>> },
): SuiteRun {
  const scratch = mkdtempSync(join(tmpdir(), 'mh-suite-'));
  const reportFile = join(scratch, 'report.json');
  const files = request.only?.files ?? VERIFICATION_FILES;
  // One argument: a pattern that starts with '-' (a flag's name, `-F`) must not read as an option.
  const pattern = request.only?.testNamePattern;
  const selection = request.config
    ? ['--config', request.config]
    : ['--project', 'integration', ...files, ...(pattern === undefined ? [] : [`--testNamePattern=${pattern}`])];
  const child = spawn(
    process.execPath,
    [
      projectPath('node_modules/vitest/vitest.mjs'),
      'run',
      ...(request.bail ? ['--bail', '1'] : []),
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${reportFile}`,
      ...selection,
    ],
    {
      cwd: projectPath(),
      env: {
        ...process.env,
        ...request.env,
        MEMCACHED_IMAGE: request.imageId,
        MEMCACHED_USERS_FILE: request.usersFile,
        MEMCACHED_PROFILE: request.profile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const line of chunk.toString('utf8').split('\n')) {
      if (request.progress && /✓|×|FAIL|Test Files|Tests /.test(line)) request.progress(`[verify] ${line.trim()}`);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const done = new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : null)));
  }).then((exitCode) => {
    try {
      const report = readReport(reportFile);
      let failedChecks = report ? failedChecksIn(report) : ['(no report: the suite did not run)'];
      // A failing beforeAll (a server that refuses to start) fails the run without failing an assertion.
      if (exitCode !== 0 && failedChecks.length === 0) failedChecks = ['setup: the servers under test did not start'];
      const checks = report ? checksIn(report) : [];
      return { exitCode, passed: exitCode === 0, failedChecks: exitCode === 0 ? [] : failedChecks, checks };
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
  return { child, output: () => output, done };
}

/** Runs the verification suite against exactly this image id. */
export async function runSuite(request: SuiteRequest): Promise<SuiteVerdict> {
  const { passed, failedChecks, checks } = await startSuite(request).done;
  return { passed, failedChecks, checks };
}
