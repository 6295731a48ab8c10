/** One entry of a Cyrus sasldb: the key is user NUL realm NUL property (the value is never kept). */
export interface SasldbEntry {
  readonly user: string;
  readonly realm: string;
  readonly property: string;
}

/** db_dump -p escapes: `\\` is a backslash, `\xx` a byte in hex, everything else is itself. */
function unescapeDumpLine(line: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\\' && line[i + 1] === '\\') {
      bytes.push(0x5c);
      i++;
    } else if (line[i] === '\\' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(line.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(line[i] ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/**
 * The entries of a sasldb from `db5.3_dump -p` output. Values (the passwords) are skipped, so nothing
 * secret leaves this function. Throws on text that is not a printable-format dump.
 */
export function parseSasldbDump(dump: string): SasldbEntry[] {
  const lines = dump.split('\n');
  const start = lines.indexOf('HEADER=END');
  const end = lines.indexOf('DATA=END');
  if (start < 0 || end < start)
    throw new Error(`not a db_dump -p output (no HEADER=END ... DATA=END): ${dump.slice(0, 120)}`);
  const data = lines.slice(start + 1, end);
  if (data.length % 2 !== 0 || data.some((line) => !line.startsWith(' ')))
    throw new Error('db_dump data is not key/value line pairs');
  const entries: SasldbEntry[] = [];
  for (let i = 0; i < data.length; i += 2) {
    const parts = unescapeDumpLine((data[i] ?? '').slice(1))
      .toString('utf8')
      .split('\0');
    if (parts.length !== 3) throw new Error(`sasldb key with ${parts.length} parts (expected user, realm, property)`);
    const [user = '', realm = '', property = ''] = parts;
    entries.push({ user, realm, property });
  }
  return entries;
}
