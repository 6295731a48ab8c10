import { spawn } from 'node:child_process';
import { projectPath } from './paths.js';
import type { Progress } from './base.js';

/** The suite files that verify one image (the cleanup and compose checks test the suite, not the image). */
export const VERIFICATION_FILES = ['smoke', 'auth', 'udp', 'bind', 'firewall', 'hardening', 'runtime-credentials'].map((name) => `test/integration/${name}.test.ts`);

export interface VerificationRequest {
  readonly imageId: string;
  readonly profile: string;
  /** user:password lines the image accepts (baked into it, or mounted for runtime credentials). */
  readonly usersFile: string;
}

/**
 * Runs the verification suite against exactly this image id and resolves to whether it passed.
 * The suite stops at its first failure: one is enough to refuse a release.
 */
export function verifyImage(request: VerificationRequest, progress: Progress): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [projectPath('node_modules/vitest/vitest.mjs'), 'run', '--project', 'integration', '--bail', '1', ...VERIFICATION_FILES],
      {
        cwd: projectPath(),
        env: { ...process.env, MEMCACHED_IMAGE: request.imageId, MEMCACHED_USERS_FILE: request.usersFile, MEMCACHED_PROFILE: request.profile },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const relay = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (/✓|×|FAIL|Test Files|Tests |pass |not run/.test(line)) progress(`[verify] ${line.trim()}`);
      }
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', () => undefined);
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}
