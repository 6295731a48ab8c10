import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { runChild, startChild } from '../src/child-process.js';

describe('child processes', () => {
  it('forwards stdout and stderr lines as labelled progress and resolves on exit 0', async () => {
    const lines: string[] = [];
    await runChild('sh', ['-c', 'echo one; echo two >&2'], { label: 'step', progress: (line) => lines.push(line) });
    expect(lines.sort()).toEqual(['[step] one', '[step] two']);
  });

  it('fails with one line naming the step, its exit code and its last lines', async () => {
    const failing = runChild('sh', ['-c', 'for i in 1 2 3 4 5 6 7; do echo "line $i"; done; exit 3'], {
      label: 'step',
    });
    await expect(failing).rejects.toMatchObject({
      message: 'step failed (exit 3): line 3 | line 4 | line 5 | line 6 | line 7',
      exitCode: 1,
    });
  });

  it('fails with one line when the program does not exist, and when a signal ends it', async () => {
    await expect(runChild('no-such-program-here', [], { label: 'step' })).rejects.toThrow(
      /^step: cannot run no-such-program-here: .*ENOENT/,
    );
    await expect(runChild('sh', ['-c', 'kill -TERM $$'], { label: 'step' })).rejects.toThrow(
      'step failed (killed by SIGTERM)',
    );
  });

  it('feeds stdin and, in stream mode, hands stdout to the caller', async () => {
    const child = startChild('tr', ['a-z', 'A-Z'], {
      label: 'upper',
      stdin: Readable.from(['hello']),
      stdout: 'stream',
    });
    const [out] = await Promise.all([buffer(child.stdout), child.done]);
    expect(out.toString()).toBe('HELLO');
  });
});
