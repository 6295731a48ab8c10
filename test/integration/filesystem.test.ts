import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { loadProfile } from '../../src/profiles.js';
import { projectPath } from '../../src/paths.js';
import {
  BAKED_SASLDB_PATH,
  IMAGE_LIB_DIR,
  IMAGE_VALUES_PATH,
  MEMCACHE_UID,
  MEMCACHED_GUARD,
} from '../../src/render.js';
import { TLS_SECRET_DIR, TLS_SECRET_FILES } from '../../src/tls.js';
import { docker } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import { buildTracerImage, parentsOf, parseFileTrace, straceCommand, type FileTrace } from '../helpers/file-trace.js';
import { pollUntil } from '../helpers/poll.js';
import { execIn, runToExit, type RunningServer } from '../helpers/server.js';
import {
  issueTlsSecret,
  startSurface,
  surfaceRows,
  surfaceTarget,
  type Surface,
  type TlsSecret,
} from '../helpers/surface.js';
import { firstUser, type TestTarget } from '../helpers/targets.js';
import { tlsRoundTrip } from '../helpers/tls.js';
import { buildVariant } from '../helpers/variants.js';
import { ENTRYPOINT, ENTRYPOINT_OWNED_BY_RUNTIME_USER, HEALTHCHECK } from '../helpers/weakenings.js';

// Files, by inventory: (a) what the runtime user (uid/gid 11211, memcache) can write or owns, walked over the
// whole file system of a running server, against an allow list; (b) what the image's programs read, run or
// look up when a server starts and answers its health check and a client, found by tracing them, and
// every folder above: all root's and out of 11211's reach, so nothing the runtime user does survives into
// what the next start of the same container runs.

const RUN_DIR = '/run/memcached';
const USERS_SECRET = '/run/secrets/memcached_users';
const UID = String(MEMCACHE_UID);
const TLS_CERT = `${TLS_SECRET_DIR}/${TLS_SECRET_FILES.certificate}`;
const TLS_KEY = `${TLS_SECRET_DIR}/${TLS_SECRET_FILES.key}`;
/** Both walks leave out /proc (the files of the runtime user's own processes are its own, by the kernel's
 * design) and /sys (the engine mounts it read-only). /dev is walked: its writable devices are listed below. */
const WALK = ['/', '(', '-path', '/proc', '-o', '-path', '/sys', ')', '-prune', '-o'];
/** What find prints of a file: path, type, owner, group, permission bits (octal). */
const FIELDS = '%p|%y|%U|%G|%m\\n';
/**
 * A symlink's text, read with readlink(1): find's %l calls readlinkat, which an image's seccomp profile
 * (the suite's servers run under them, and so do its execs) need not allow; readlink(2) the entrypoint uses.
 */
const READ_LINKS = 'for p; do printf "%s|%s\\n" "$p" "$(readlink "$p")"; done';
const FIND_RESTORE_REFUSED = 'find: Failed to restore initial working directory: Operation not permitted';

/** The character devices of the engine's /dev that every process may write by design. */
const DEVICES = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty', '/dev/pts/ptmx'];
/** find's test for a world-writable file (a symlink's own mode means nothing). */
const WORLD_WRITABLE = ['(', '-perm', '-0002', '!', '-type', 'l', ')'];

const under = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

interface FileInfo {
  readonly path: string;
  readonly type: string;
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
  readonly target: string;
}

/** find as `user` with FIELDS (symlinks' texts read as root): its files, and its complaints. */
async function findIn(
  container: StartedTestContainer,
  user: 'root' | 'memcache',
  args: string[],
): Promise<{ files: FileInfo[]; errors: string[] }> {
  const result = await container.exec(['find', ...args, '-printf', FIELDS], { user });
  const files = result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split('|');
      if (fields.length !== 5 || !fields[0]!.startsWith('/')) {
        throw new Error(`find printed an unexpected line: ${line}`);
      }
      const [path, type, uid, gid, mode] = fields as [string, string, string, string, string];
      return { path, type, uid: Number(uid), gid: Number(gid), mode: parseInt(mode, 8) };
    });
  // find restores its starting folder with fchdir once the walk is done, which a profile may refuse.
  const errors = result.stderr.split('\n').filter((line) => line && line !== FIND_RESTORE_REFUSED);
  return { files: await withLinkTargets(container, files), errors };
}

/** The files with their symlinks' texts, read as root. */
async function withLinkTargets(
  container: StartedTestContainer,
  files: ReadonlyArray<Omit<FileInfo, 'target'>>,
): Promise<FileInfo[]> {
  const links = files.filter((f) => f.type === 'l').map((f) => f.path);
  const targets = new Map<string, string>();
  if (links.length > 0) {
    const read = await execIn(container, ['sh', '-c', READ_LINKS, 'sh', ...links], 'root');
    for (const line of read.output.split('\n').filter(Boolean)) {
      const [path, target] = line.split('|');
      if (path && target) targets.set(path, target);
    }
    const unread = links.filter((link) => !targets.has(link));
    if (read.exitCode !== 0 || unread.length > 0) {
      throw new Error(`could not read the symlinks ${unread.join(' ')}: ${read.output}`);
    }
  }
  return files.map((f) => ({ ...f, target: targets.get(f.path) ?? '' }));
}

/** File types by their st_mode bits, as find's %y names them. */
const MODE_TYPES: Record<number, string> = {
  0o140000: 's',
  0o120000: 'l',
  0o100000: 'f',
  0o060000: 'b',
  0o040000: 'd',
  0o020000: 'c',
  0o010000: 'p',
};

/** lstat(2) of each path as root, in one stat(1) (find would fchdir between them): null where it is absent. */
async function lookUp(
  container: StartedTestContainer,
  paths: readonly string[],
): Promise<Map<string, FileInfo | null>> {
  const result = await container.exec(['stat', '-c', '%n|%f|%u|%g', '--', ...paths], { user: 'root' });
  const files = result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [path, raw, uid, gid] = line.split('|') as [string, string, string, string];
      const mode = parseInt(raw, 16);
      const type = MODE_TYPES[mode & 0o170000] ?? '?';
      return { path, type, uid: Number(uid), gid: Number(gid), mode: mode & 0o7777 };
    });
  const absent = /: (No such file or directory|Not a directory)$/;
  const odd = result.stderr.split('\n').filter((line) => line && !absent.test(line));
  if (odd.length > 0) throw new Error(`could not look the traced paths up:\n${odd.join('\n')}`);
  const found = new Map((await withLinkTargets(container, files)).map((f) => [f.path, f]));
  return new Map(paths.map((path) => [path, found.get(path) ?? null]));
}

// --- (a) the runtime user's paths ------------------------------------------------------------------------

interface Entry extends FileInfo {
  /** access(2) lets uid 11211 write it: mode bits, ACLs and read-only mounts all counted. */
  readonly writable: boolean;
}

const TYPES: Record<string, string> = {
  f: 'file',
  d: 'directory',
  c: 'character device',
  b: 'block device',
  p: 'fifo',
  s: 'socket',
  l: 'symlink',
};

function describeEntry(entry: Entry): string {
  if (entry.type === 'l') return `symlink to ${entry.target}, owner ${entry.uid}`;
  const kind = TYPES[entry.type] ?? entry.type;
  return `${kind} ${entry.uid}:${entry.gid} ${entry.mode.toString(8)}${entry.writable ? ', writable' : ''}`;
}

/**
 * Every path uid 11211 can write (find -writable as memcache over the whole tree, mounts and tmpfs
 * included), and every path owned by uid or gid 11211 or writable by everyone (find as root: it also sees
 * into the folders memcache cannot list).
 */
async function runtimeUserPaths(container: StartedTestContainer): Promise<Map<string, Entry>> {
  const [writable, owned] = await Promise.all([
    findIn(container, 'memcache', [...WALK, '-writable']),
    findIn(container, 'root', [...WALK, '(', '-user', UID, '-o', '-group', UID, '-o', ...WORLD_WRITABLE, ')']),
  ]);
  // memcache cannot list some folders (root's 0700 ones): what is in them is out of its reach, and the
  // walk as root covers them. Any other complaint means the walk was not whole.
  const unexpected = [...writable.errors.filter((line) => !/: Permission denied$/.test(line)), ...owned.errors];
  if (unexpected.length > 0) throw new Error(`the file system walk was not whole:\n${unexpected.join('\n')}`);
  const writablePaths = new Set(writable.files.map((f) => f.path));
  const entries = new Map<string, Entry>();
  for (const file of [...writable.files, ...owned.files]) {
    entries.set(file.path, { ...file, writable: writablePaths.has(file.path) });
  }
  return entries;
}

/**
 * The allow list, path by path (type, owner:group, mode, writable):
 * - the engine's /dev: the character devices every process may write by design (null, zero, full,
 *   random, urandom, tty, the pty multiplexer), and /dev/shm and /dev/mqueue, sticky (1777) and root's;
 * - the base image's own sticky (1777) temporary folders, as the distribution ships them: memcache may
 *   add files there but not replace anyone else's, and (b) shows that nothing the image runs reads there;
 * - the run folder /run/memcached (the image's, 0700) and what the entrypoint writes in it at every
 *   start: listen, the runtime sasldb, and the TLS front's configuration where stunnel is the front;
 * - /run/xtables.lock: iptables, run by the non-root entrypoint, takes its lock there;
 * - baked images: the tutorial's sasldb, memcache's with mode 0600 (the entrypoint copies it at start);
 * - what this test mounts, read-only: the users file (runtime credentials) and the certificate secret
 *   (TLS), memcache's with mode 0400 as docs/tls.md tells operators to mount them.
 * A symlink is allowed where it is root's and points at an allowed path or at the reading process's own
 * descriptors (/proc/self/fd): it is writable only through its target.
 */
function allowList(target: TestTarget, surface: Surface, baseStickyDirs: readonly string[]): Map<string, string> {
  const allowed = new Map<string, string>();
  const sticky = 'directory 0:0 1777, writable';
  for (const device of DEVICES) allowed.set(device, 'character device 0:0 666, writable');
  for (const dir of ['/dev/shm', '/dev/mqueue', ...baseStickyDirs]) allowed.set(dir, sticky);
  allowed.set(RUN_DIR, `directory ${UID}:${UID} 700, writable`);
  const runtimeFile = `file ${UID}:${UID} 600, writable`;
  allowed.set(`${RUN_DIR}/listen`, runtimeFile);
  allowed.set(`${RUN_DIR}/memcached-sasldb2`, runtimeFile);
  allowed.set('/run/xtables.lock', runtimeFile);
  if (target.credentials === 'baked') allowed.set(BAKED_SASLDB_PATH, runtimeFile);
  const mountedSecret = `file ${UID}:${UID} 400`;
  if (target.credentials === 'runtime') allowed.set(USERS_SECRET, mountedSecret);
  if (surface === 'tls') {
    allowed.set(TLS_CERT, mountedSecret);
    allowed.set(TLS_KEY, mountedSecret);
    if (loadProfile(target.profile).tls.via === 'stunnel') allowed.set(`${RUN_DIR}/stunnel.conf`, runtimeFile);
  }
  return allowed;
}

/** Beyond the allow list: what the runtime user can write or owns (extra); what it names but is not so (missing). */
function judgeInventory(
  entries: Map<string, Entry>,
  allowed: Map<string, string>,
): { extra: string[]; missing: string[] } {
  const extra: string[] = [];
  for (const [path, entry] of entries) {
    const described = describeEntry(entry);
    if (entry.type === 'l') {
      const target = posix.resolve(posix.dirname(path), entry.target);
      if (entry.uid === 0 && (allowed.has(target) || under(target, '/proc/self/fd'))) continue;
    } else if (allowed.get(path) === described) continue;
    extra.push(`${path}: ${described}`);
  }
  const missing = [...allowed]
    .filter(([path, described]) => {
      const entry = entries.get(path);
      return !entry || describeEntry(entry) !== described;
    })
    .map(([path, described]) => `${path}: ${described}`);
  return { extra: extra.sort(), missing: missing.sort() };
}

/** The base image's sticky, world-writable folders (its /tmp and the like), found the same way. */
async function baseStickyDirs(target: TestTarget, network: string): Promise<string[]> {
  const prune = ['(', '-path', '/proc', '-o', '-path', '/sys', '-o', '-path', '/dev', ')', '-prune', '-o'];
  const command = ['find', '/', ...prune, '-type', 'd', '-perm', '-1002', '-print'];
  const run = await runToExit(target.baseImage, network, { entrypoint: command, user: 'root' });
  const dirs = run.output.split('\n').filter(Boolean);
  if (run.exitCode !== 0 || !dirs.includes('/tmp') || dirs.some((d) => !d.startsWith('/'))) {
    throw new Error(`could not list the sticky folders of ${target.baseImage} (exit ${run.exitCode}): ${run.output}`);
  }
  return dirs;
}

// --- (b) what the image's programs read at start ---------------------------------------------------------

/**
 * Starts the tracer image (the image plus strace) with its entrypoint under strace, as memcache, waits for
 * its health check, runs the health check once more under strace and authenticates once (memcached reads
 * its sasldb and SASL plugin at the first authentication), then ends every traced process so that strace
 * writes everything out, and parses what it wrote.
 */
async function traceStart(
  target: TestTarget,
  surface: Surface,
  network: string,
  secret: TlsSecret | undefined,
): Promise<FileTrace> {
  const dir = mkdtempSync(join(tmpdir(), 'mh-trace-'));
  chownSync(dir, MEMCACHE_UID, MEMCACHE_UID);
  chmodSync(dir, 0o700);
  const binds = [`${dir}:/trace`];
  // The entrypoint is replaced (by strace running it), so the users secret is not mounted for us.
  if (target.credentials === 'runtime') binds.push(`${target.usersSecret}:${USERS_SECRET}:ro`);
  let server: RunningServer | undefined;
  try {
    // Unconfined: the image's own seccomp profile (the suite's servers run under it) allows what its programs
    // need, not ptrace or strace's own calls. No check judges this container; they judge the real image's.
    server = await startSurface(target, surface, network, {
      secret,
      binds,
      entrypoint: straceCommand('/trace/start', [ENTRYPOINT]),
      securityOpt: ['seccomp=unconfined'],
      lockedDown: false,
    });
    const traced = server;
    await pollUntil(async () => ((await execIn(traced.container, [HEALTHCHECK])).exitCode === 0 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'the traced server passes its health check',
      diagnose: () => traced.logs(),
    });
    const health = await execIn(traced.container, straceCommand('/trace/health', [HEALTHCHECK]));
    if (health.exitCode !== 0) {
      throw new Error(`the health check under strace failed (${health.exitCode}): ${health.output}`);
    }
    const user = firstUser(target);
    const auth =
      surface === 'tls'
        ? await tlsRoundTrip(traced.ip, { rejectUnauthorized: false }, user)
        : await tryAuthenticatedRoundTrip(traced.ip, user.name, user.password);
    if (auth.authStatus !== Status.ok || !auth.roundTrip) {
      throw new Error(`the traced server did not serve ${user.name}: ${JSON.stringify(auth)}`);
    }
    // SIGTERM to the entrypoint (strace's child, as the engine's stop signals the image's PID 1): memcached
    // and the front end with it, and once its last tracee has ended, strace writes out and exits.
    const signalChildrenOfPid1 = [
      'for stat in /proc/[0-9]*/stat; do',
      'read -r pid comm state ppid rest 2>/dev/null <"$stat" || continue;',
      '[ "$ppid" != 1 ] || { kill -TERM "$pid"; echo "signalled $pid $comm"; }; done',
    ].join(' ');
    const stop = await execIn(traced.container, ['sh', '-c', signalChildrenOfPid1]);
    if (stop.exitCode !== 0 || !stop.output.includes('signalled')) {
      throw new Error(`could not signal the traced entrypoint: ${stop.output}`);
    }
    const running = async () => (await docker.getContainer(traced.container.getId()).inspect()).State.Running;
    await pollUntil(async () => ((await running()) ? undefined : true), {
      timeoutMs: 20_000,
      what: 'strace ends with the traced processes',
      diagnose: () => traced.logs(),
    });
    const files = readdirSync(dir);
    for (const name of ['start', 'health']) {
      if (!files.some((f) => f.startsWith(`${name}.`))) {
        throw new Error(`strace wrote no ${name} trace (files: ${files.join(' ')})`);
      }
    }
    return parseFileTrace(files.map((f) => readFileSync(join(dir, f), 'utf8')));
  } finally {
    await server?.stop().catch(() => undefined);
    if (server)
      await docker
        .getContainer(server.container.getId())
        .remove({ force: true })
        .catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The check of (b), on a running container: the paths a trace says its programs used, and every folder
 * above each (symlinks followed, hop by hop), must be root's and not writable by uid/gid 11211 (mode bits
 * read as root; access(2) as memcache, which counts ACLs). What is checked:
 * - every file read or run, with its folders; the folders of what was only looked at (stat, access);
 * - for what was looked up and absent (a PATH search, the loader's ld.so.preload), its folders: a file
 *   planted there would be used.
 * Left out: /proc, /sys and /dev (the kernel's and the engine's); the run folder /run/memcached and the
 * files the traced processes themselves created in it at this start (necessarily the runtime user's); and
 * the baked sasldb itself (memcache's by the tutorial's design, read only to make the runtime copy; its
 * folders are checked). The mounted secrets (read-only mounts, memcache's as docs/tls.md says) need not be
 * root's but must not be writable. A lookup in the run folder of something no traced process created is
 * a problem of its own: the runtime user could plant it.
 */
async function rootOnlyProblems(
  container: StartedTestContainer,
  trace: FileTrace,
  mounts: readonly string[],
): Promise<{ checked: string[]; problems: string[] }> {
  const created = new Set([...trace.written].filter((p) => p.startsWith(`${RUN_DIR}/`)));
  const skip = (p: string) => ['/proc', '/sys', '/dev'].some((dir) => under(p, dir)) || p === RUN_DIR || created.has(p);
  const problems: string[] = [];
  const mustExist = new Set<string>();
  const wanted = new Set<string>();
  const want = (paths: readonly string[], exist: boolean) =>
    paths
      .filter((p) => !skip(p))
      .forEach((p) => {
        wanted.add(p);
        if (exist) mustExist.add(p);
      });
  for (const path of trace.read) {
    if (skip(path)) continue;
    want(path === BAKED_SASLDB_PATH ? parentsOf(path) : [path, ...parentsOf(path)], true);
  }
  for (const path of trace.found) if (!skip(path)) want(parentsOf(path), true);
  for (const path of trace.absent) {
    if (skip(path)) continue;
    if (under(path, RUN_DIR)) {
      problems.push(`${path}: looked up in the runtime user's run folder, made by no traced process`);
    } else want(parentsOf(path), false);
  }
  // Look the paths up as root, following every symlink met (a path's own or a folder's) to its target.
  const info = new Map<string, FileInfo | null>();
  let pending = [...wanted];
  while (pending.length > 0) {
    const found = await lookUp(container, pending);
    const next = new Set<string>();
    for (const [path, file] of found) {
      info.set(path, file);
      if (file?.type !== 'l') continue;
      const target = posix.resolve(posix.dirname(path), file.target);
      for (const hop of [target, ...parentsOf(target)]) {
        if (skip(hop) || info.has(hop)) continue;
        next.add(hop);
        if (mustExist.has(path)) mustExist.add(hop);
      }
    }
    pending = [...next];
  }
  const mounted = (p: string) => mounts.some((mount) => under(p, mount));
  const present: string[] = [];
  for (const [path, file] of info) {
    if (!file) {
      if (mustExist.has(path)) problems.push(`${path}: absent from this image`);
      continue;
    }
    if (file.type !== 'l') present.push(path);
    if (!mounted(path) && file.uid !== 0) problems.push(`${path}: owner uid ${file.uid}, not root`);
    if (file.type === 'l') continue;
    if (file.mode & 0o002) problems.push(`${path}: writable by every user (mode ${file.mode.toString(8)})`);
    if (file.gid === MEMCACHE_UID && file.mode & 0o020) problems.push(`${path}: writable by group ${UID}`);
  }
  const accessCheck = 'for p; do [ ! -w "$p" ] || echo "$p"; done';
  const writable = await execIn(container, ['sh', '-c', accessCheck, 'sh', ...present], 'memcache');
  if (writable.exitCode !== 0) throw new Error(`the access check as memcache failed: ${writable.output}`);
  for (const path of writable.output.split('\n').filter(Boolean)) {
    problems.push(`${path}: writable by uid ${UID} (access(2))`);
  }
  return { checked: [...info.keys()].sort(), problems: problems.sort() };
}

describe.each(surfaceRows())('%s', (_name, target, surface) => {
  const tlsVia = loadProfile(target.profile).tls.via;
  const mounts = [
    ...(target.credentials === 'runtime' ? [USERS_SECRET] : []),
    ...(surface === 'tls' ? [TLS_SECRET_DIR] : []),
  ];
  const bench = isolatedServers('filesystem');
  let secret: TlsSecret | undefined;
  let server: RunningServer;
  let weakened: RunningServer;
  let stickyDirs: string[];
  let tracing: Promise<FileTrace>;

  /** The target with `image` in place of this surface's image. */
  const onImage = (image: string): TestTarget =>
    surface === 'tls' ? { ...target, tlsImage: image } : { ...target, image };

  /**
   * The engine's defaults, not the suite's locked-down run: the inventory judges the image's own permissions
   * where nothing but them protects it (a writable root), and the walk as root needs the engine's
   * capabilities to see into memcache's 0700 folders.
   */
  const engineDefaults = { lockedDown: false } as const;

  beforeAll(async () => {
    const network = bench.network.name;
    if (surface === 'tls') secret = bench.keep(issueTlsSecret());
    const image = surfaceTarget(target, surface);
    const label = `${target.profile}-${target.credentials}-${surface}`;
    const [tracer, variant] = await Promise.all([
      buildTracerImage(image.image, label, target.clientImage).then(bench.keep),
      buildVariant(image, ENTRYPOINT_OWNED_BY_RUNTIME_USER).then(bench.keep),
    ]);
    tracing = traceStart(onImage(tracer.image), surface, network, secret);
    tracing.catch(() => undefined); // awaited by the test of (b), which reports its failure
    [server, weakened, stickyDirs] = await Promise.all([
      startSurface(target, surface, network, { secret, ...engineDefaults }).then(bench.keep),
      startSurface(onImage(variant.target.image), surface, network, { secret, ...engineDefaults }).then(bench.keep),
      baseStickyDirs(target, network),
    ]);
    await tracing.catch(() => undefined);
  });

  it('the runtime user writes and owns only what the allow list names; an entrypoint it owns is caught', async () => {
    const judged = judgeInventory(await runtimeUserPaths(server.container), allowList(target, surface, stickyDirs));
    const says = 'extra: writable by or owned by 11211 beyond the allow list; missing: listed but not so';
    expect(judged, says).toEqual({ extra: [], missing: [] });
    // Control: the same walk and judgement on the image whose entrypoint memcache owns.
    const control = judgeInventory(await runtimeUserPaths(weakened.container), allowList(target, surface, stickyDirs));
    expect(control.extra).toEqual([`${ENTRYPOINT}: file ${UID}:0 755, writable`]);
  });

  it(
    'every file read, run or looked up at start (entrypoint, memcached, TLS front, health check) and every ' +
      "folder above is root's, out of 11211's reach; an entrypoint it owns is caught",
    async () => {
      const trace = await tracing;
      expect(trace.unresolved, 'trace lines whose path the parser could not place').toEqual([]);
      // The trace saw what it was meant to: each program started and read its files.
      // The entrypoint sources every script of its folder (its phases, the users-file rules) and values.sh.
      const scripts = readdirSync(projectPath(`image-files${IMAGE_LIB_DIR}`)).map((name) => `${IMAGE_LIB_DIR}/${name}`);
      const expected = [ENTRYPOINT, HEALTHCHECK, ...scripts, IMAGE_VALUES_PATH, MEMCACHED_GUARD];
      expected.push('/etc/memcached.conf', '/etc/sasl2/memcached.conf');
      if (target.credentials === 'baked') expected.push(BAKED_SASLDB_PATH);
      else expected.push(USERS_SECRET);
      if (surface === 'tls') expected.push(TLS_CERT, TLS_KEY);
      const read = [...trace.read];
      expect(read).toEqual(expect.arrayContaining([...expected, expect.stringMatching(/\/bin\/memcached$/)]));
      if (surface === 'tls' && tlsVia === 'stunnel') {
        expect(read).toEqual(expect.arrayContaining([expect.stringMatching(/\/bin\/stunnel4?$/)]));
      }

      const real = await rootOnlyProblems(server.container, trace, mounts);
      expect(real.checked.length).toBeGreaterThan(20);
      expect(real.problems, `checked: ${real.checked.join(' ')}`).toEqual([]);
      // Control: the same paths, the same check, on the image whose entrypoint memcache owns.
      const control = await rootOnlyProblems(weakened.container, trace, mounts);
      expect(control.problems).toEqual([
        `${ENTRYPOINT}: owner uid ${UID}, not root`,
        `${ENTRYPOINT}: writable by uid ${UID} (access(2))`,
      ]);
    },
  );
});
