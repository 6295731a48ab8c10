import { describe, expect, it } from 'vitest';
import { pollUntil } from './helpers/poll.js';

describe('pollUntil', () => {
  it('returns the first value other than undefined, probing again until then', async () => {
    let calls = 0;
    const value = await pollUntil(async () => (++calls === 3 ? 'ready' : undefined), {
      timeoutMs: 5000,
      intervalMs: 1,
      what: 'ready',
    });
    expect({ value, calls }).toEqual({ value: 'ready', calls: 3 });
  });

  it('counts a thrown error as not yet, and returns a falsy value that is not undefined', async () => {
    let calls = 0;
    const value = await pollUntil(
      async () => {
        if (++calls < 2) throw new Error('not up');
        return 0;
      },
      { timeoutMs: 5000, intervalMs: 1, what: 'zero' },
    );
    expect({ value, calls }).toEqual({ value: 0, calls: 2 });
  });

  it('gives up after the timeout, naming what it waited for, the last error and the diagnosis', async () => {
    const started = Date.now();
    const waiting = pollUntil(
      async () => {
        throw new Error('connection refused');
      },
      { timeoutMs: 50, intervalMs: 5, what: 'memcached answers', diagnose: async () => 'the logs' },
    );
    await expect(waiting).rejects.toThrow(
      /^gave up after 50 ms waiting until memcached answers: connection refused\nthe logs$/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
  });

  it(
    'says the condition never held when the probe only ' + 'returned undefined, and survives a failing diagnosis',
    async () => {
      const waiting = pollUntil(async () => undefined, {
        timeoutMs: 20,
        intervalMs: 5,
        what: 'x',
        diagnose: async () => {
          throw new Error('no logs');
        },
      });
      await expect(waiting).rejects.toThrow(
        'gave up after 20 ms waiting until x: condition never held\n(no diagnosis: no logs)',
      );
    },
  );
});
