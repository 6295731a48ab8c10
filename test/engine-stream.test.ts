import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import Docker from 'dockerode';
import { pack } from 'tar-fs';
import { afterAll, describe, expect, it } from 'vitest';
import { firstFileOfTar, followStream } from '../src/engine/stream.js';
import type { EngineMessage } from '../src/engine/types.js';

const scratch = mkdtempSync(join(tmpdir(), 'mh-tar-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function tarOf(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of pack(dir)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('firstFileOfTar', () => {
  it('returns the first regular file, past directories and long-name headers', async () => {
    const dir = join(scratch, 'a');
    const deep = join(dir, 'd'.repeat(90), 'e'.repeat(90));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'f'.repeat(60)), Buffer.from([0, 1, 2, 255]));
    expect(firstFileOfTar(await tarOf(dir))).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('is undefined for an archive without a file, and refuses a truncated one', async () => {
    const dir = join(scratch, 'b');
    mkdirSync(join(dir, 'only-a-directory'), { recursive: true });
    expect(firstFileOfTar(await tarOf(dir))).toBeUndefined();
    const file = join(scratch, 'c');
    mkdirSync(file);
    writeFileSync(join(file, 'big'), Buffer.alloc(2000, 7));
    const truncated = (await tarOf(file)).subarray(0, 1024);
    expect(() => firstFileOfTar(truncated)).toThrow(/truncated/);
  });
});

describe('followStream', () => {
  // docker-modem's own parser over a stream the test writes: no engine is contacted.
  const { modem } = new Docker({ socketPath: join(scratch, 'no-engine.sock') });
  const follow = (stream: NodeJS.ReadableStream) => {
    const messages: EngineMessage[] = [];
    return { messages, done: followStream(modem, stream, (m) => messages.push(m)) };
  };
  const lines = (...messages: object[]) => messages.map((m) => `${JSON.stringify(m)}\r\n`);

  it('hands on every message and resolves at a normal end, even with JSON split across chunks', async () => {
    const text = lines({ stream: 'Step 1/2' }, { aux: { ID: 'sha256:abc' } }, { status: 'done' }).join('');
    const { messages, done } = follow(Readable.from([text.slice(0, 7), text.slice(7, 30), text.slice(30)]));
    await expect(done).resolves.toBeUndefined();
    expect(messages).toEqual([{ stream: 'Step 1/2' }, { aux: { ID: 'sha256:abc' } }, { status: 'done' }]);
  });

  it("rejects with the engine's own error from inside a 200 stream, after every message was handed on", async () => {
    const detailed = follow(
      Readable.from(
        lines(
          { status: 'Pulling' },
          { errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown (short)' },
          { status: 'after' },
        ),
      ),
    );
    await expect(detailed.done).rejects.toThrow(/^manifest unknown$/);
    expect(detailed.messages.map((m) => m.status ?? m.error)).toEqual(['Pulling', 'manifest unknown (short)', 'after']);
    await expect(follow(Readable.from(lines({ error: 'only the short form' }))).done).rejects.toThrow(
      'only the short form',
    );
  });

  it('rejects with the transport error when the stream breaks', async () => {
    const stream = new PassThrough();
    const { messages, done } = follow(stream);
    stream.write(lines({ status: 'Pushing' })[0]);
    await new Promise((resolve) => setImmediate(resolve));
    stream.destroy(new Error('socket hang up'));
    await expect(done).rejects.toThrow('socket hang up');
    expect(messages).toEqual([{ status: 'Pushing' }]);
  });
});
