import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-fs';
import { afterAll, describe, expect, it } from 'vitest';
import { firstFileOfTar } from '../src/docker.js';

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
