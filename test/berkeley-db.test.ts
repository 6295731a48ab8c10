import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readHashDb } from '../src/berkeley-db.js';
import { projectPath } from '../src/paths.js';
import { BUILD_REALM } from '../src/render.js';
import { holdsExactly } from '../src/sasldb.js';

// Made by the tools image's saslpasswd2 (the same script the build runs) for fixture-only passwords.
const fixture = (name: string) => readFileSync(projectPath('test/fixtures/sasldb', name));
const key = (user: string) => `${user}\0${BUILD_REALM}\0userPassword`;
const readable = (bytes: Buffer) =>
  readHashDb(bytes).map((e): [string, string] => [e.key.toString(), e.data.toString()]);

describe('readHashDb', () => {
  it('reads every pair of a sasldb, skipping free pages', () => {
    expect(readable(fixture('two-users.sasldb')).sort()).toEqual([
      [key('bob'), 'fixture-password-2'],
      [key('sammy'), 'fixture-password-1'],
    ]);
  });

  it('follows overflow pages for long values', () => {
    const entries = new Map(readable(fixture('overflow.sasldb')));
    expect(entries.get(key('long'))).toBe(`${'x'.repeat(2000)}END`);
    expect(entries.get(key('short'))).toBe('fixture-password-3');
    expect(entries.size).toBe(2);
  });

  it('refuses what it does not fully understand', () => {
    const corrupt = (offset: number, value: number, size: 1 | 4 = 4) => {
      const bytes = Buffer.from(fixture('two-users.sasldb'));
      if (size === 4) bytes.writeUInt32LE(value, offset);
      else bytes[offset] = value;
      return bytes;
    };
    expect(() => readHashDb(Buffer.alloc(100))).toThrow(/too short/);
    expect(() => readHashDb(corrupt(12, 0x053162))).toThrow(/not a little-endian Berkeley DB hash/);
    expect(() => readHashDb(corrupt(88, 3))).toThrow(/meta page declares 3/);
    expect(() => readHashDb(corrupt(24, 1, 1))).toThrow(/encrypted/);
    expect(() => readHashDb(corrupt(48, 1))).toThrow(/duplicates/);
    // Page 2 made a B-tree leaf.
    expect(() => readHashDb(corrupt(2 * 4096 + 25, 5, 1))).toThrow(/unsupported type 5/);
    expect(() => readHashDb(fixture('two-users.sasldb').subarray(0, 5000))).toThrow(/page size/);
  });
});

describe('holdsExactly', () => {
  const entries = readHashDb(fixture('two-users.sasldb'));
  const users = [
    { name: 'sammy', password: 'fixture-password-1' },
    { name: 'bob', password: 'fixture-password-2' },
  ];

  it('is true for exactly the same users and passwords, in any order', () => {
    expect(holdsExactly(entries, users, BUILD_REALM)).toBe(true);
    expect(holdsExactly(entries, [...users].reverse(), BUILD_REALM)).toBe(true);
  });

  it('is false for a changed password, a missing or extra user, swapped passwords or another realm', () => {
    expect(holdsExactly(entries, [users[0]!, { name: 'bob', password: 'fixture-password-X' }], BUILD_REALM)).toBe(
      false,
    );
    expect(holdsExactly(entries, [users[0]!], BUILD_REALM)).toBe(false);
    expect(holdsExactly(entries, [...users, { name: 'eve', password: 'fixture-password-4' }], BUILD_REALM)).toBe(false);
    expect(
      holdsExactly(
        entries,
        [
          { name: 'sammy', password: 'fixture-password-2' },
          { name: 'bob', password: 'fixture-password-1' },
        ],
        BUILD_REALM,
      ),
    ).toBe(false);
    expect(holdsExactly(entries, users, 'otherrealm')).toBe(false);
    expect(
      holdsExactly(
        [...entries, entries[0]!],
        [...users, { name: 'sammy2', password: 'fixture-password-1' }],
        BUILD_REALM,
      ),
    ).toBe(false);
  });
});
