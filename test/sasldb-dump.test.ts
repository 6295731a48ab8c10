import { describe, expect, it } from 'vitest';
import { parseSasldbDump } from './helpers/sasldb-dump.js';

const dump = (...pairs: string[]) =>
  ['VERSION=3', 'format=print', 'type=hash', 'HEADER=END', ...pairs, 'DATA=END', ''].join('\n');

describe('parseSasldbDump', () => {
  it('reads user, realm and property and never the value', () => {
    const entries = parseSasldbDump(
      dump(' sammy\\00pod-1\\00userPassword', ' secret-password-1', ' jos\\c3\\a9\\00pod-1\\00userPassword', ' x\\5cy'),
    );
    expect(entries).toEqual([
      { user: 'sammy', realm: 'pod-1', property: 'userPassword' },
      { user: 'josé', realm: 'pod-1', property: 'userPassword' },
    ]);
    expect(JSON.stringify(entries)).not.toContain('secret');
  });

  it('unescapes backslashes and reads an empty database', () => {
    expect(parseSasldbDump(dump(' a\\\\b\\00r\\00userPassword', ' v'))).toEqual([
      { user: 'a\\b', realm: 'r', property: 'userPassword' },
    ]);
    expect(parseSasldbDump(dump())).toEqual([]);
  });

  it('refuses what is not a dump, or a key of the wrong shape', () => {
    expect(() => parseSasldbDump('db5.3_dump: open: No such file')).toThrow(/not a db_dump/);
    expect(() => parseSasldbDump(dump(' sammy\\00userPassword', ' v'))).toThrow(/2 parts/);
    expect(() => parseSasldbDump(dump(' lonely-key'))).toThrow(/pairs/);
  });
});
