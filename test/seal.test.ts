import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { usersSeal, usersSealKey } from '../src/seal.js';

const KEY = Buffer.alloc(32, 7);
const INPUTS = 'sha256:' + 'a'.repeat(64);
const SAMMY = { name: 'sammy', password: 'correct horse battery staple' };
const ALEX = { name: 'alex', password: 'another long password' };

describe('usersSeal', () => {
  const seal = usersSeal(KEY, INPUTS, [SAMMY, ALEX], 'realm');

  it('is an HMAC-SHA256, the same for the same users in any order', () => {
    expect(seal).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(usersSeal(KEY, INPUTS, [{ ...ALEX }, { ...SAMMY }], 'realm')).toBe(seal);
  });

  it('changes with a password, a user more or less, a name, the realm, the inputs and the key', () => {
    const others = [
      usersSeal(KEY, INPUTS, [{ ...SAMMY, password: `${SAMMY.password}!` }, ALEX], 'realm'),
      usersSeal(KEY, INPUTS, [SAMMY], 'realm'),
      usersSeal(KEY, INPUTS, [SAMMY, ALEX, { name: 'intruder', password: 'a third long password' }], 'realm'),
      usersSeal(KEY, INPUTS, [{ ...SAMMY, name: 'sam' }, ALEX], 'realm'),
      usersSeal(KEY, INPUTS, [SAMMY, ALEX], 'other'),
      usersSeal(KEY, 'sha256:' + 'b'.repeat(64), [SAMMY, ALEX], 'realm'),
      usersSeal(Buffer.alloc(32, 8), INPUTS, [SAMMY, ALEX], 'realm'),
    ];
    expect(new Set([seal, ...others]).size).toBe(others.length + 1);
  });

  it('cannot be confused by a name and password that shift a separator', () => {
    const a = usersSeal(KEY, INPUTS, [{ name: 'ab', password: 'c:long-password' }], 'realm');
    const b = usersSeal(KEY, INPUTS, [{ name: 'ab:c', password: 'long-password' }], 'realm');
    expect(a).not.toBe(b);
  });

  it('carries no password text', () => {
    expect(seal).not.toContain(SAMMY.password);
    expect(seal).not.toContain(Buffer.from(SAMMY.password).toString('hex'));
  });
});

describe('usersSealKey', () => {
  let cache: string;
  const env = () => ({ MEMCACHED_HARDENED_CACHE: cache });
  const keyFile = () => join(cache, 'users-seal.key');
  beforeEach(() => {
    cache = mkdtempSync(join(tmpdir(), 'mh-seal-'));
  });
  afterEach(() => rmSync(cache, { recursive: true, force: true }));

  it('is created once, 32 random bytes only its owner can read, and then reused', () => {
    const key = usersSealKey(env());
    expect(key?.length).toBe(32);
    expect(statSync(keyFile()).mode & 0o777).toBe(0o600);
    expect(usersSealKey(env())).toEqual(key);
    expect(readdirSync(cache)).toEqual(['users-seal.key']);
  });

  it('is created in a cache folder that does not exist yet', () => {
    const nested = { MEMCACHED_HARDENED_CACHE: join(cache, 'a', 'b') };
    expect(usersSealKey(nested)?.length).toBe(32);
  });

  it('replaces a key others could read, or of the wrong size', () => {
    const first = usersSealKey(env())!;
    chmodSync(keyFile(), 0o644);
    const second = usersSealKey(env())!;
    expect(second.equals(first)).toBe(false);
    expect(statSync(keyFile()).mode & 0o777).toBe(0o600);
    writeFileSync(keyFile(), 'short', { mode: 0o600 });
    const third = usersSealKey(env())!;
    expect(third.length).toBe(32);
    expect(readFileSync(keyFile())).toEqual(third);
    expect(readdirSync(cache)).toEqual(['users-seal.key']);
  });

  it('is undefined, not an error, where the cache cannot be written', () => {
    const file = join(cache, 'a-file');
    writeFileSync(file, '');
    expect(usersSealKey({ MEMCACHED_HARDENED_CACHE: join(file, 'below') })).toBeUndefined();
  });
});
