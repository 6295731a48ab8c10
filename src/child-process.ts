import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { failure } from './errors.js';
import { LineTail } from './tail.js';

/** Receives one line of a long step's output. */
export type Progress = (line: string) => void;

export interface ChildOptions {
  /** Names the step in progress lines (`[label] …`) and in the one-line failure. */
  readonly label: string;
  /** Each line the child writes (stdout, and stderr unless `stdout: 'stream'`), prefixed with the label. */
  readonly progress?: Progress;
  /** Piped into the child's stdin; closed at once when absent. */
  readonly stdin?: Readable;
  /** 'stream': the caller reads stdout (an archive, say) and stderr goes to this process's; else both are lines. */
  readonly stdout?: 'lines' | 'stream';
}

export interface Child {
  /** The child's stdout, for `stdout: 'stream'` (empty otherwise). */
  readonly stdout: Readable;
  /** Settles when the child ends: rejects with one line (exit code and its last lines) unless it exited 0. */
  readonly done: Promise<void>;
}

/**
 * The one way the build runs a host program: no shell, output forwarded as progress, a failure that says
 * which step failed and how (its exit code and last lines), never an unhandled error event.
 */
export function startChild(command: string, args: readonly string[], options: ChildOptions): Child {
  const streamed = options.stdout === 'stream';
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', streamed ? 'inherit' : 'pipe'] });
  // Piped by the stdio settings above, so never null.
  const stdin = child.stdin!;
  const stdout = child.stdout!;
  const tail = new LineTail(5);
  const onLine = (line: string) => {
    tail.push(line);
    options.progress?.(`[${options.label}] ${line}`);
  };
  if (!streamed) {
    createInterface({ input: stdout }).on('line', onLine);
    if (child.stderr) createInterface({ input: child.stderr }).on('line', onLine);
  }
  const done = new Promise<void>((resolve, reject) => {
    if (options.stdin) {
      options.stdin.on('error', (error) => {
        child.kill();
        reject(failure(`${options.label}: its input failed: ${error.message}`));
      });
      options.stdin.pipe(stdin);
    } else {
      stdin.end();
    }
    child.on('error', (error) => reject(failure(`${options.label}: cannot run ${command}: ${error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const how = code === null ? `killed by ${signal ?? 'a signal'}` : `exit ${code}`;
      const last = tail.lines();
      reject(failure(`${options.label} failed (${how})${last.length > 0 ? `: ${last.join(' | ')}` : ''}`));
    });
  });
  return { stdout, done };
}

/** Runs a host program to its end (see startChild). */
export function runChild(command: string, args: readonly string[], options: ChildOptions): Promise<void> {
  return startChild(command, args, options).done;
}
