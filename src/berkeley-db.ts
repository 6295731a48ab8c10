/**
 * Reads the key/data pairs of a Berkeley DB hash database (version 9: libdb 4.6 to 5.3, the format of
 * Cyrus's sasldb on Debian and Ubuntu) from memory. Deliberately strict: whatever it does not fully
 * understand throws, so a caller comparing databases never decides on a partial reading.
 */

/** One key/data pair. */
export interface DbEntry {
  readonly key: Buffer;
  readonly data: Buffer;
}

const HASH_MAGIC = 0x061561;
const HASH_VERSION = 9;
// Page types (db_page.h).
const P_INVALID = 0;
const P_HASH_UNSORTED = 2;
const P_OVERFLOW = 7;
const P_HASHMETA = 8;
const P_HASH = 13;
// Hash item types.
const H_KEYDATA = 1;
const H_OFFPAGE = 3;
/** Every page starts with lsn, pgno, prev, next, entries, hf_offset, level, type: 26 bytes. */
const PAGE_HEADER = 26;
/** Meta flags: duplicates, subdatabases, sorted duplicates; none of which a sasldb has. */
const UNSUPPORTED_FLAGS = 0x07;

function page(bytes: Buffer, pageSize: number, pgno: number): Buffer {
  if (pgno === 0 || (pgno + 1) * pageSize > bytes.length) throw new Error(`page ${pgno} is outside the file`);
  return bytes.subarray(pgno * pageSize, (pgno + 1) * pageSize);
}

/** An off-page item: `length` bytes in a chain of overflow pages starting at `pgno`. */
function overflowItem(bytes: Buffer, pageSize: number, pgno: number, length: number): Buffer {
  const parts: Buffer[] = [];
  let collected = 0;
  const seen = new Set<number>();
  while (collected < length) {
    if (seen.has(pgno)) throw new Error('overflow chain loops');
    seen.add(pgno);
    const overflow = page(bytes, pageSize, pgno);
    if (overflow[25] !== P_OVERFLOW) throw new Error(`page ${pgno} is not an overflow page`);
    const onPage = overflow.readUInt16LE(22);
    if (PAGE_HEADER + onPage > pageSize) throw new Error(`overflow page ${pgno} claims more than a page`);
    parts.push(overflow.subarray(PAGE_HEADER, PAGE_HEADER + onPage));
    collected += onPage;
    pgno = overflow.readUInt32LE(16);
    if (collected < length && pgno === 0) throw new Error('overflow chain ends early');
  }
  if (collected !== length) throw new Error('overflow chain is longer than its item');
  return Buffer.concat(parts);
}

function itemValue(bytes: Buffer, pageSize: number, item: Buffer): Buffer {
  if (item[0] === H_KEYDATA) return Buffer.from(item.subarray(1));
  if (item[0] === H_OFFPAGE && item.length === 12)
    return overflowItem(bytes, pageSize, item.readUInt32LE(4), item.readUInt32LE(8));
  throw new Error(`unsupported hash item type ${item[0]}`);
}

/** All key/data pairs of the database, in page order. */
export function readHashDb(bytes: Buffer): DbEntry[] {
  if (bytes.length < 512) throw new Error('too short for a Berkeley DB file');
  if (bytes.readUInt32LE(12) !== HASH_MAGIC) throw new Error('not a little-endian Berkeley DB hash database');
  if (bytes.readUInt32LE(16) !== HASH_VERSION)
    throw new Error(`hash version ${bytes.readUInt32LE(16)} (expected ${HASH_VERSION})`);
  const pageSize = bytes.readUInt32LE(20);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0 || bytes.length % pageSize !== 0) {
    throw new Error(`page size ${pageSize} does not fit a ${bytes.length}-byte file`);
  }
  if (bytes[24] !== 0) throw new Error('encrypted database');
  if (bytes[25] !== P_HASHMETA) throw new Error('page 0 is not a hash meta page');
  if (bytes[26] !== 0) throw new Error('checksummed or partitioned database');
  if ((bytes.readUInt32LE(48) & UNSUPPORTED_FLAGS) !== 0) throw new Error('database with duplicates or subdatabases');
  const declared = bytes.readUInt32LE(88);
  const entries: DbEntry[] = [];
  for (let pgno = 1; pgno < bytes.length / pageSize; pgno++) {
    const current = page(bytes, pageSize, pgno);
    const type = current[25];
    // Free pages hold nothing; overflow pages are read through the item that points at them.
    if (type === P_INVALID || type === P_OVERFLOW) continue;
    if (type !== P_HASH && type !== P_HASH_UNSORTED) throw new Error(`page ${pgno} has unsupported type ${type}`);
    const count = current.readUInt16LE(20);
    if (count % 2 !== 0) throw new Error(`page ${pgno} holds an odd number of items`);
    const offsets = Array.from({ length: count }, (_, i) => current.readUInt16LE(PAGE_HEADER + 2 * i));
    // Items are packed from the end of the page down: item i ends where item i-1 starts.
    const item = (i: number): Buffer => {
      const start = offsets[i]!;
      const end = i === 0 ? pageSize : offsets[i - 1]!;
      if (start < PAGE_HEADER + 2 * count || start >= end || end > pageSize)
        throw new Error(`page ${pgno} item ${i} is out of bounds`);
      return current.subarray(start, end);
    };
    for (let i = 0; i < count; i += 2) {
      entries.push({ key: itemValue(bytes, pageSize, item(i)), data: itemValue(bytes, pageSize, item(i + 1)) });
    }
  }
  if (entries.length !== declared) throw new Error(`found ${entries.length} pairs, the meta page declares ${declared}`);
  return entries;
}
