import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../src/paths.js';
import { failedChecksIn, VERIFICATION_FILES } from '../src/verify.js';

describe('the verification suite', () => {
  it('names integration files that exist, each once', () => {
    expect(VERIFICATION_FILES.filter((file) => !existsSync(projectPath(file)))).toEqual([]);
    expect(new Set(VERIFICATION_FILES).size).toBe(VERIFICATION_FILES.length);
  });

  it('reports the failed tests by full name, and a file that failed outside any test by its error', () => {
    const report = {
      testResults: [
        {
          name: '/x/test/integration/auth.test.ts',
          assertionResults: [
            { status: 'passed', fullName: 'ubuntu-16.04 ok' },
            { status: 'failed', fullName: 'ubuntu-16.04 refuses ANONYMOUS' },
          ],
        },
        {
          name: '/x/test/integration/users.test.ts',
          message: 'Error: memcached at 10.0.0.2 did not answer\n    at stack',
          assertionResults: [],
        },
        {
          name: '/x/test/integration/udp.test.ts',
          assertionResults: [{ status: 'passed', fullName: 'ubuntu-16.04 no udp' }],
        },
      ],
    };
    expect(failedChecksIn(report)).toEqual([
      'ubuntu-16.04 refuses ANONYMOUS',
      'users.test.ts: Error: memcached at 10.0.0.2 did not answer',
    ]);
    expect(failedChecksIn({ testResults: [] })).toEqual([]);
  });
});
