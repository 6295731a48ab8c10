import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath } from './paths.js';
import type { Progress } from './base.js';

/**
 * The verification suite: the integration files that verify one image. The cleanup and compose checks
 * test the suite and the examples, not the image, and stay out.
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
  'clients',
  'fleet',
].map((name) => `test/integration/${name}.test.ts`);

export interface SuiteRequest {
  readonly imageId: string;
  readonly profile: string;
  /** user:password lines the image accepts (baked into it, or mounted for runtime credentials). */
  readonly usersFile: string;
  /** Stop at the first failing test: one is enough to refuse a release or to call a mutant caught. */
  readonly bail?: boolean;
  /** Receives vitest's per-test lines as they come. */
  readonly progress?: Progress;
}

export interface SuiteVerdict {
  readonly passed: boolean;
  /** Full names of the failed tests (or the file-level error where a setup failed). */
  readonly failedChecks: string[];
}

interface JsonReport {
  testResults: Array<{ name: string; message?: string; assertionResults: Array<{ status: string; fullName: string }> }>;
}

function failedChecksOf(reportFile: string): string[] {
  try {
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as JsonReport;
    return report.testResults.flatMap((file) => {
      const failed = file.assertionResults.filter((a) => a.status === 'failed').map((a) => a.fullName);
      return failed.length > 0 || !file.message ? failed : [`${file.name.split('/').pop()}: ${file.message.split('\n')[0]}`];
    });
  } catch {
    return ['(no report: the suite did not run)'];
  }
}

/** Runs the verification suite against exactly this image id. */
export async function runSuite(request: SuiteRequest): Promise<SuiteVerdict> {
  const scratch = mkdtempSync(join(tmpdir(), 'mh-suite-'));
  const reportFile = join(scratch, 'report.json');
  try {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          projectPath('node_modules/vitest/vitest.mjs'),
          'run',
          '--project',
          'integration',
          ...(request.bail ? ['--bail', '1'] : []),
          '--reporter=default',
          '--reporter=json',
          `--outputFile.json=${reportFile}`,
          ...VERIFICATION_FILES,
        ],
        {
          cwd: projectPath(),
          env: { ...process.env, MEMCACHED_IMAGE: request.imageId, MEMCACHED_USERS_FILE: request.usersFile, MEMCACHED_PROFILE: request.profile },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child.stdout.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (request.progress && /✓|×|FAIL|Test Files|Tests /.test(line)) request.progress(`[verify] ${line.trim()}`);
        }
      });
      child.stderr.on('data', () => undefined);
      child.on('error', () => resolve(null));
      child.on('close', resolve);
    });
    let failedChecks = failedChecksOf(reportFile);
    // A failing beforeAll (a server that refuses to start) fails the run without failing an assertion.
    if (code !== 0 && failedChecks.length === 0) failedChecks = ['setup: the servers under test did not start'];
    return { passed: code === 0, failedChecks: code === 0 ? [] : failedChecks };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
