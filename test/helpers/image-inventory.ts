import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract, type Extract, type Header } from 'tar-stream';
import { docker } from './resources.js';

// No vitest import: a reading of one image as the engine saves it (`docker save`), layer by layer.
//
// Every layer tar and the image config are read from one stream of the saved image, in either layout
// the engine writes: legacy (`<id>/layer.tar`, `<id>.json`) or OCI (`blobs/sha256/<digest>`, what
// manifest.json names), a layer uncompressed or gzipped. Nothing is written to disk and no file's content
// is kept: the secrets looked for are searched in each file as it streams by.

/** One entry of one layer tar, as the layer carries it. */
export interface LayerEntry {
  /** Absolute, normalized: `/usr/bin/perl`, `/` for the root. */
  readonly path: string;
  readonly type: Header['type'];
  /** Permission bits with setuid, setgid and sticky (`mode & 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** A symlink's target, or the path a hard link points to (absolute then). */
  readonly linkname?: string;
  /** Extended attributes from the entry's pax records (`SCHILY.xattr.<name>`), byte for byte. */
  readonly xattrs: Readonly<Record<string, Buffer>>;
  /** A whiteout: `file` hides `hides` (and all below it) in the lower layers; `opaque` hides what is below the
   * directory `hides` in the lower layers. */
  readonly whiteout?: { readonly kind: 'file' | 'opaque'; readonly hides: string };
}

export interface Layer {
  /** Position in the image, 0 = the base. */
  readonly index: number;
  /** Where the layer is in the saved archive (`<id>/layer.tar` or `blobs/sha256/<digest>`). */
  readonly blob: string;
  readonly gzipped: boolean;
  readonly entries: readonly LayerEntry[];
}

/** Where a searched byte string was found: in the image config, or in one layer at one path (content, name,
 * link target or an xattr of the entry). */
export type Location = 'config' | { readonly layer: number; readonly path: string };

export interface ImageInventory {
  readonly id: string;
  /** The image config JSON, as saved. */
  readonly config: Record<string, unknown>;
  readonly layers: readonly Layer[];
  /** For each searched name: every place its bytes were found (empty: nowhere). */
  readonly found: ReadonlyMap<string, readonly Location[]>;
}

/** What to search for: a name for each byte string (a password's owner, a key line's number). */
export type Needles = Readonly<Record<string, string | Buffer>>;

/**
 * Reads the image `id` from one `docker save` stream: every layer's entries, the config, and where each
 * needle occurs in the config and in any layer (files deleted by a later layer included).
 */
export async function inventoryImage(id: string, needles: Needles = {}): Promise<ImageInventory> {
  return readSavedImage((await docker.getImage(id).get()) as NodeJS.ReadableStream, id, needles);
}

/** inventoryImage on a saved image's tar stream (`docker save` output), `id` naming it in errors. */
export async function readSavedImage(
  saved: NodeJS.ReadableStream,
  id: string,
  needles: Needles = {},
): Promise<ImageInventory> {
  const search = Object.entries(needles).map(([name, value]) => {
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
    if (bytes.length === 0) throw new Error(`needle ${name} is empty: it would be found everywhere`);
    return { name, bytes };
  });
  const blobs = new Map<string, { gzipped: boolean; entries: LayerEntry[]; hits: Hit[] }>();
  const metadata = new Map<string, Buffer>();
  const aliases = new Map<string, string>();

  const archive = extract();
  const feeding = pipeline(saved, archive);
  try {
    for await (const entry of archive) {
      const name = normalizeArchivePath(entry.header.name);
      if (entry.header.type === 'symlink' && entry.header.linkname) {
        // The legacy layout links a layer another image entry already holds: `<id>/layer.tar -> ../<other>/layer.tar`.
        aliases.set(name, normalizeArchivePath(posix.join(posix.dirname(name), entry.header.linkname)));
        entry.resume();
        continue;
      }
      if (entry.header.type !== 'file') {
        entry.resume();
        continue;
      }
      const chunks = entry[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const head = await peek(chunks, 512);
      const kind = classify(name, head);
      if (kind === 'metadata') {
        metadata.set(name, Buffer.concat([head, ...(await rest(chunks))]));
      } else {
        const hits: Hit[] = [];
        const entries = await readLayer(name, replay(head, chunks), kind === 'gzip', search, hits);
        blobs.set(name, { gzipped: kind === 'gzip', entries, hits });
      }
    }
    await feeding;
  } catch (error) {
    archive.destroy();
    await feeding.catch(() => undefined);
    throw new Error(`reading the saved image ${id}: ${(error as Error).message}`, { cause: error });
  }

  const manifests = parseJson(metadata.get('manifest.json'), `manifest.json of the saved image ${id}`) as Array<{
    Config: string;
    Layers: string[];
  }>;
  if (!Array.isArray(manifests) || manifests.length !== 1 || !manifests[0]) {
    throw new Error(`the saved image ${id} should hold exactly one manifest, not ${JSON.stringify(manifests)}`);
  }
  const [manifest] = manifests;
  const configBytes = metadata.get(normalizeArchivePath(manifest.Config));
  if (!configBytes) throw new Error(`the saved image ${id} has no config at ${manifest.Config}`);
  const config = parseJson(configBytes, `the config of ${id}`) as Record<string, unknown>;

  const layers = manifest.Layers.map((path, index): Layer => {
    const read = blobs.get(resolveAlias(aliases, normalizeArchivePath(path)));
    if (!read) throw new Error(`the saved image ${id} names layer ${index} ${path}, which the archive does not hold`);
    return { index, blob: path, gzipped: read.gzipped, entries: read.entries };
  });
  const diffIds = (config.rootfs as { diff_ids?: unknown[] } | undefined)?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== layers.length) {
    throw new Error(`the config of ${id} lists ${diffIds?.length} layers, the manifest ${layers.length}`);
  }

  const found = new Map<string, Location[]>();
  for (const { name, bytes } of search) found.set(name, configBytes.includes(bytes) ? ['config'] : []);
  for (const layer of layers) {
    for (const hit of blobs.get(resolveAlias(aliases, normalizeArchivePath(layer.blob)))!.hits) {
      found.get(hit.name)!.push({ layer: layer.index, path: hit.path });
    }
  }
  return { id, config, layers, found };
}

/** A location as a reader wants it: `config` or `layer 7: /etc/memcached-users`. */
export function describeLocation(location: Location): string {
  return location === 'config' ? 'config' : `layer ${location.layer}: ${location.path}`;
}

/** One path of the final filesystem: the entry that provides it, and its layer. */
export interface MergedEntry extends LayerEntry {
  readonly layer: number;
}

/**
 * The image's final filesystem: the layers applied in order, each layer's whiteouts (`.wh.<name>`) and
 * opaque directories (`.wh..wh..opq`) first hiding what the layers below it hold. Whiteout entries
 * themselves are not part of it.
 */
export function mergedFilesystem(layers: readonly Layer[]): Map<string, MergedEntry> {
  const files = new Map<string, MergedEntry>();
  const removeBelow = (dir: string) => {
    const prefix = dir === '/' ? '/' : `${dir}/`;
    for (const path of files.keys()) if (path.startsWith(prefix) && path !== dir) files.delete(path);
  };
  for (const layer of layers) {
    for (const entry of layer.entries) {
      if (entry.whiteout?.kind === 'opaque') removeBelow(entry.whiteout.hides);
      if (entry.whiteout?.kind === 'file') {
        if (files.get(entry.whiteout.hides)?.type === 'directory') removeBelow(entry.whiteout.hides);
        files.delete(entry.whiteout.hides);
      }
    }
    for (const entry of layer.entries) {
      if (entry.whiteout) continue;
      // A non-directory over a lower directory replaces the directory and all it held.
      if (entry.type !== 'directory' && files.get(entry.path)?.type === 'directory') removeBelow(entry.path);
      files.set(entry.path, { ...entry, layer: layer.index });
    }
  }
  return files;
}

/** `readlink -f` in the merged filesystem: the path with every symlink of every component followed. */
export function resolvePath(files: ReadonlyMap<string, MergedEntry>, path: string): string {
  let pending = path.split('/').filter(Boolean);
  let resolved = '/';
  for (let hops = 0; pending.length > 0;) {
    const [component, ...rest] = pending;
    pending = rest;
    if (component === '.') continue;
    if (component === '..') {
      resolved = posix.dirname(resolved);
      continue;
    }
    const next = posix.join(resolved, component!);
    const entry = files.get(next);
    if (entry?.type === 'symlink' && entry.linkname !== undefined) {
      if (++hops > 40) throw new Error(`too many symlinks resolving ${path}`);
      pending = [...entry.linkname.split('/').filter(Boolean), ...pending];
      if (entry.linkname.startsWith('/')) resolved = '/';
      continue;
    }
    resolved = next;
  }
  return resolved;
}

/** A regular file's contents live in a `file` entry; a hard link (`link`) is the same kind of file. */
export function isRegularFile(entry: LayerEntry): boolean {
  return entry.type === 'file' || entry.type === 'contiguous-file' || entry.type === 'link';
}

/** Capability names by bit number (linux/capability.h). */
const CAPABILITY_NAMES = [
  'cap_chown',
  'cap_dac_override',
  'cap_dac_read_search',
  'cap_fowner',
  'cap_fsetid',
  'cap_kill',
  'cap_setgid',
  'cap_setuid',
  'cap_setpcap',
  'cap_linux_immutable',
  'cap_net_bind_service',
  'cap_net_broadcast',
  'cap_net_admin',
  'cap_net_raw',
  'cap_ipc_lock',
  'cap_ipc_owner',
  'cap_sys_module',
  'cap_sys_rawio',
  'cap_sys_chroot',
  'cap_sys_ptrace',
  'cap_sys_pacct',
  'cap_sys_admin',
  'cap_sys_boot',
  'cap_sys_nice',
  'cap_sys_resource',
  'cap_sys_time',
  'cap_sys_tty_config',
  'cap_mknod',
  'cap_lease',
  'cap_audit_write',
  'cap_audit_control',
  'cap_setfcap',
  'cap_mac_override',
  'cap_mac_admin',
  'cap_syslog',
  'cap_wake_alarm',
  'cap_block_suspend',
  'cap_audit_read',
  'cap_perfmon',
  'cap_bpf',
  'cap_checkpoint_restore',
];

export interface FileCapabilities {
  readonly permitted: readonly string[];
  readonly inheritable: readonly string[];
  readonly effective: boolean;
  /** v3 (namespaced) capabilities: the root uid they apply to. */
  readonly rootid?: number;
  /** As getcap prints it: `cap_net_admin,cap_net_raw+ep`. */
  readonly text: string;
}

const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;

/** Decodes a `security.capability` xattr (struct vfs_cap_data, revision 1, 2 or 3; little-endian). */
export function decodeCapabilities(value: Buffer): FileCapabilities {
  if (value.length < 4) throw new Error(`security.capability of ${value.length} bytes: not a vfs_cap_data`);
  const magic = value.readUInt32LE(0);
  const revision = (magic & VFS_CAP_REVISION_MASK) >>> 24;
  const words = { 1: 1, 2: 2, 3: 2 }[revision];
  const size = { 1: 12, 2: 20, 3: 24 }[revision];
  if (!words || value.length !== size) {
    const what = `revision ${revision}, ${value.length} bytes (${value.toString('hex')})`;
    throw new Error(`security.capability ${what}: not a vfs_cap_data`);
  }
  const bits = (offset: number) => {
    const names: string[] = [];
    for (let word = 0; word < words; word++) {
      const set = value.readUInt32LE(4 + word * 8 + offset);
      for (let bit = 0; bit < 32; bit++) {
        if ((set >>> bit) & 1) names.push(CAPABILITY_NAMES[word * 32 + bit] ?? `cap_${word * 32 + bit}`);
      }
    }
    return names;
  };
  const permitted = bits(0);
  const inheritable = bits(4);
  const effective = (magic & VFS_CAP_FLAGS_EFFECTIVE) !== 0;
  const rootid = revision === 3 ? value.readUInt32LE(20) : undefined;
  // getcap's grouping: the capabilities with the same flags share one clause.
  const clauses = new Map<string, string[]>();
  const unnamed = [...permitted, ...inheritable].filter((name) => !CAPABILITY_NAMES.includes(name));
  for (const name of [...CAPABILITY_NAMES, ...new Set(unnamed)]) {
    const p = permitted.includes(name);
    const i = inheritable.includes(name);
    if (!p && !i) continue;
    const flags = `${effective ? 'e' : ''}${i ? 'i' : ''}${p ? 'p' : ''}`;
    clauses.set(flags, [...(clauses.get(flags) ?? []), name]);
  }
  const text = [...clauses]
    .map(([flags, names]) => `${names.join(',')}+${flags}`)
    .concat(rootid ? [`[rootid=${rootid}]`] : [])
    .join(' ');
  return { permitted, inheritable, effective, ...(rootid === undefined ? {} : { rootid }), text };
}

// --- reading the archive -----------------------------------------------------------------------------------

function normalizeArchivePath(name: string): string {
  return posix
    .normalize(name)
    .replace(/^(\.\/)+/, '')
    .replace(/\/+$/, '');
}

function resolveAlias(aliases: ReadonlyMap<string, string>, blob: string): string {
  for (let hops = 0; aliases.has(blob) && hops < 8; hops++) blob = aliases.get(blob)!;
  return blob;
}

function parseJson(bytes: Buffer | undefined, what: string): unknown {
  if (!bytes) throw new Error(`${what} is missing`);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new Error(`${what} is not JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** Reads chunks until at least `bytes` bytes (or the end) and returns them, for classify. */
async function peek(chunks: AsyncIterator<Buffer>, bytes: number): Promise<Buffer> {
  const head: Buffer[] = [];
  let length = 0;
  while (length < bytes) {
    const next = await chunks.next();
    if (next.done) break;
    head.push(next.value);
    length += next.value.length;
  }
  return Buffer.concat(head);
}

async function rest(chunks: AsyncIterator<Buffer>): Promise<Buffer[]> {
  const all: Buffer[] = [];
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) all.push(next.value);
  return all;
}

async function* replay(head: Buffer, chunks: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
}

/** A tar (legacy `layer.tar`, or a blob with the ustar magic or an empty archive's zero block), a gzipped
 * tar, or anything else (JSON: configs, manifests, indexes) kept whole. */
function classify(name: string, head: Buffer): 'tar' | 'gzip' | 'metadata' {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) {
    throw new Error(`${name} is zstd-compressed: not read here`);
  }
  const ustar = head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
  const emptyTar = head.length >= 512 && head.subarray(0, 512).every((byte) => byte === 0);
  if (name.endsWith('/layer.tar') || ustar || emptyTar) return 'tar';
  return 'metadata';
}

/** A needle found in one entry of one layer blob. */
type Hit = { readonly name: string; readonly path: string };

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Reads one layer tar: its entries, and which needles each entry holds (content, path, link target, xattrs). */
async function readLayer(
  blob: string,
  data: AsyncIterable<Buffer>,
  gzipped: boolean,
  search: ReadonlyArray<{ name: string; bytes: Buffer }>,
  hits: Hit[],
): Promise<LayerEntry[]> {
  const layer = extract();
  keepXattrsBinary(layer);
  const entries: LayerEntry[] = [];
  const feeding = gzipped ? pipeline(Readable.from(data), createGunzip(), layer) : pipeline(Readable.from(data), layer);
  try {
    for await (const file of layer) {
      const entry = layerEntry(file.header);
      entries.push(entry);
      const hasContent = search.length > 0 && (entry.type === 'file' || entry.type === 'contiguous-file');
      const content = hasContent ? await readAll(file as AsyncIterable<Buffer>) : undefined;
      if (content === undefined) file.resume();
      if (search.length === 0) continue;
      const named = Buffer.from([entry.path, entry.linkname ?? ''].join('\0'), 'utf8');
      for (const { name, bytes } of search) {
        const inXattrs = Object.values(entry.xattrs).some((value) => value.includes(bytes));
        if (content?.includes(bytes) || named.includes(bytes) || inXattrs) hits.push({ name, path: entry.path });
      }
    }
    await feeding;
  } catch (error) {
    layer.destroy();
    await feeding.catch(() => undefined);
    throw new Error(`layer ${blob}: ${(error as Error).message}`, { cause: error });
  }
  return entries;
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function layerEntry(header: Header): LayerEntry {
  const path = posix.join('/', posix.normalize(header.name)).replace(/(.)\/+$/, '$1');
  const xattrs: Record<string, Buffer> = {};
  for (const [key, value] of Object.entries((header.pax ?? {}) as Record<string, string>)) {
    if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice('SCHILY.xattr.'.length)] = Buffer.from(value, 'latin1');
    if (key.startsWith('LIBARCHIVE.xattr.')) {
      xattrs[decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length))] = Buffer.from(value, 'base64');
    }
  }
  const base = posix.basename(path);
  const dir = posix.dirname(path);
  const whiteout =
    base === OPAQUE
      ? { kind: 'opaque' as const, hides: dir }
      : base.startsWith(WHITEOUT)
        ? { kind: 'file' as const, hides: posix.join(dir, base.slice(WHITEOUT.length)) }
        : undefined;
  const linkname = header.linkname ?? undefined;
  return {
    path,
    type: header.type,
    mode: header.mode & 0o7777,
    uid: header.uid,
    gid: header.gid,
    size: header.size,
    ...(linkname ? { linkname: header.type === 'link' ? posix.join('/', linkname) : linkname } : {}),
    xattrs,
    ...(whiteout ? { whiteout } : {}),
  };
}

/**
 * tar-stream decodes every pax value as UTF-8, which turns the bytes of a binary xattr (a
 * `security.capability` with a bit 7 set in any byte) into U+FFFD for good. This extract decodes its pax
 * records itself: `SCHILY.xattr.*` values as latin1 (one char per byte, so `Buffer.from(v, 'latin1')` gives
 * the bytes back), the rest as UTF-8 as before. It replaces one method of this instance only; if tar-stream's
 * internals change, it fails here rather than reading capabilities wrong.
 */
function keepXattrsBinary(layer: Extract): void {
  type Internals = {
    _decodeLongHeader?: (buf: Buffer) => void;
    _header: Header | null;
    _pax: Record<string, string> | null;
    _paxGlobal: Record<string, string> | null;
  };
  const internals = layer as unknown as Internals;
  const original = internals._decodeLongHeader;
  if (typeof original !== 'function' || !('_pax' in internals) || !('_paxGlobal' in internals)) {
    throw new Error('tar-stream no longer has the pax decoding this reader replaces (Extract#_decodeLongHeader)');
  }
  internals._decodeLongHeader = function (this: Internals, buf: Buffer) {
    if ((this._header?.type as string) !== 'pax-header') return original.call(this, buf);
    this._pax = { ...(this._paxGlobal ?? {}), ...decodePaxRecords(buf) };
  };
}

/** pax extended header records: `<length> <key>=<value>\n`, the length in bytes and counting itself. */
export function decodePaxRecords(buf: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < buf.length) {
    const space = buf.indexOf(0x20, offset);
    const length = space > offset ? Number(buf.toString('latin1', offset, space)) : NaN;
    if (!Number.isInteger(length) || length <= 0 || offset + length > buf.length) {
      if (buf.subarray(offset).every((byte) => byte === 0)) break;
      throw new Error(`malformed pax record at byte ${offset}`);
    }
    const record = buf.subarray(space + 1, offset + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals < 0) throw new Error(`pax record without '=' at byte ${offset}`);
    const key = record.toString('utf8', 0, equals);
    records[key] = record.toString(key.startsWith('SCHILY.xattr.') ? 'latin1' : 'utf8', equals + 1);
    offset += length;
  }
  return records;
}
