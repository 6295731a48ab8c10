import { posix } from 'node:path';
import { docker } from './resources.js';
import { buildTestImage } from './test-image.js';

// No vitest import: the trace parser is plain text processing.

/** apt options: a mirror that hiccups once should not fail the suite; root downloads into the folder it made. */
const APT = 'apt="-o Acquire::Retries=3 -o APT::Sandbox::User=root"';
/** Shell: strace's dependencies by name (alternatives and virtual packages left to the installed system). */
const STRACE_DEPENDS = 'apt-cache depends strace | awk \'$1 == "Depends:" && $2 !~ /^</ { print $2 }\'';

/**
 * strace as a test-only layer on top of an image under test: the same filesystem plus strace (and what it
 * needs), to record which files the image's own programs open when they run. Not a weakening: nothing is
 * changed that the image's programs use, and no check judges this image; the checks judge the real one.
 *
 * apt cannot install into a server image as it stands: its build purged packages with --force-depends, so
 * `apt-get install` first wants to put them back. strace and those of its dependencies the image lacks are
 * installed with dpkg instead, which leaves every other package as it is. With `downloadFrom` (an image
 * with the same apt sources: the profile's client image) the packages are downloaded there, in a stage
 * every tracer of that profile shares from the build cache; otherwise in the image itself.
 */
export function tracerDockerfile(image: string, downloadFrom?: string): string {
  // Installs the downloaded strace and each dependency not installed already, then proves strace runs.
  const install = [
    'for deb in ./*.deb; do package=$(dpkg-deb -f "$deb" Package);',
    '[ "$package" = strace ] || ! dpkg -s "$package" >/dev/null 2>&1 || rm "$deb"; done;',
    'dpkg -i ./*.deb >/dev/null; cd /; strace -V | head -n 1',
  ].join(' ');
  if (downloadFrom) {
    return [
      `FROM ${downloadFrom} AS strace-packages`,
      'USER root',
      `RUN set -eu; ${APT}; apt-get $apt update -qq; mkdir /debs; cd /debs;` +
        ` apt-get $apt download -qq strace $(${STRACE_DEPENDS} | grep -vx libc6); rm -rf /var/lib/apt/lists/*`,
      `FROM ${image}`,
      'USER root',
      'COPY --from=strace-packages /debs/ /tmp/strace-packages/',
      `RUN set -eu; cd /tmp/strace-packages; ${install}; rm -rf /tmp/strace-packages`,
      'USER memcache',
      '',
    ].join('\n');
  }
  return [
    `FROM ${image}`,
    'USER root',
    `RUN set -eu; ${APT}; apt-get $apt update -qq; debs=$(mktemp -d); cd "$debs";` +
      ` apt-get $apt download -qq strace $(${STRACE_DEPENDS} | grep -vx libc6); ${install};` +
      ' rm -rf "$debs" /var/lib/apt/lists/*',
    'USER memcache',
    '',
  ].join('\n');
}

export interface TracerImage {
  readonly image: string;
  remove(): Promise<void>;
}

/** Builds the tracer image of `image` (see tracerDockerfile); removing it keeps its parents (the build cache). */
export async function buildTracerImage(image: string, label: string, downloadFrom?: string): Promise<TracerImage> {
  const tag = `memcached-hardened-test/tracer:${label}-${Math.random().toString(36).slice(2, 8)}`;
  const id = await buildTestImage(tracerDockerfile(image, downloadFrom), tag);
  const remove = () =>
    docker
      .getImage(tag)
      .remove({ force: true, noprune: true })
      .then(
        () => undefined,
        () => undefined,
      );
  return { image: id, remove };
}

/** strace's options for a trace of every syscall that takes a file name, one output file per process. */
export function straceCommand(output: string, command: readonly string[]): string[] {
  return ['strace', '-ff', '-qq', '-e', 'trace=file,execve', '-o', output, ...command];
}

/** What a set of processes did with files, by absolute path. */
export interface FileTrace {
  /** Opened for reading (a directory too) or executed: what they ran and read. */
  readonly read: Set<string>;
  /** Looked up and found without being read (stat, access, readlink, a failed open but ENOENT). */
  readonly found: Set<string>;
  /** Looked up, opened or executed, but absent (ENOENT, ENOTDIR): a file planted there would be used. */
  readonly absent: Set<string>;
  /** Created, opened for writing, removed, renamed or re-moded. */
  readonly written: Set<string>;
  /** Lines whose path is relative to a descriptor this parser cannot place: never silently dropped. */
  readonly unresolved: string[];
}

/** Syscalls whose every path argument is changed (for symlink and symlinkat: only the link's own path). */
const WRITES = new Set([
  'creat',
  'mkdir',
  'mkdirat',
  'mknod',
  'mknodat',
  'unlink',
  'unlinkat',
  'rmdir',
  'rename',
  'renameat',
  'renameat2',
  'link',
  'linkat',
  'symlink',
  'symlinkat',
  'chmod',
  'fchmodat',
  'fchmodat2',
  'chown',
  'lchown',
  'fchownat',
  'truncate',
  'utime',
  'utimes',
  'utimensat',
  'futimesat',
  'setxattr',
  'lsetxattr',
  'removexattr',
  'lremovexattr',
]);
const OPENS = new Set(['open', 'openat', 'openat2']);
const EXECS = new Set(['execve', 'execveat']);
/** Syscalls whose only string is what they return, not a path they were given. */
const OUTPUTS = new Set(['getcwd']);
/** Syscalls whose path follows a directory descriptor. */
const AT_SYSCALLS = new Set([
  'openat',
  'openat2',
  'newfstatat',
  'fstatat64',
  'statx',
  'faccessat',
  'faccessat2',
  'readlinkat',
  'execveat',
  'mkdirat',
  'mknodat',
  'unlinkat',
  'renameat',
  'renameat2',
  'linkat',
  'symlinkat',
  'fchmodat',
  'fchmodat2',
  'fchownat',
  'utimensat',
  'futimesat',
  'name_to_handle_at',
]);
const ABSENT_ERRORS = new Set(['ENOENT', 'ENOTDIR']);
const LINE = /^(\w+)\((.*)\)\s+=\s+(-?\d+|0x[0-9a-f]+|\?)(?:\s+(E[A-Z0-9]+))?/;
const QUOTED = /"((?:[^"\\]|\\.)*)"/g;

/** strace's escapes in a quoted string (\" \\ \n \t \NNN \xHH). */
function unescape(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, code: string) => {
    if (code.startsWith('x')) return String.fromCharCode(parseInt(code.slice(1), 16));
    if (/^[0-7]+$/.test(code)) return String.fromCharCode(parseInt(code, 8));
    return { n: '\n', t: '\t', r: '\r', v: '\v', f: '\f' }[code] ?? code;
  });
}

/**
 * Parses the output of `strace -ff`, one text per process: each path becomes absolute. A process starts in
 * `cwd` (the container's working directory: the traced programs start there and no process that changes
 * directory starts another) and follows its own chdir calls; a path relative to any other descriptor is
 * reported as unresolved.
 */
export function parseFileTrace(texts: readonly string[], cwd = '/'): FileTrace {
  const trace: FileTrace = { read: new Set(), found: new Set(), absent: new Set(), written: new Set(), unresolved: [] };
  for (const text of texts) {
    let here = cwd;
    for (const line of text.split('\n')) {
      const match = LINE.exec(line);
      if (!match) continue;
      const [, syscall, args, result, errno] = match as unknown as [string, string, string, string, string | undefined];
      if (OUTPUTS.has(syscall)) continue;
      const strings = [...args.matchAll(QUOTED)].map((m) => ({
        value: unescape(m[1]!),
        at: m.index,
        end: m.index + m[0].length,
      }));
      if (strings.length === 0) continue;
      const failed = result.startsWith('-');
      const absolute = (value: string, at: number): string | undefined => {
        if (value.startsWith('/')) return posix.resolve(value);
        if (value === '') return undefined; // the descriptor's own file (AT_EMPTY_PATH)
        const dirfd = AT_SYSCALLS.has(syscall) ? args.slice(0, at).split(',').at(-2)?.trim() : 'AT_FDCWD';
        if (dirfd !== 'AT_FDCWD') {
          trace.unresolved.push(line);
          return undefined;
        }
        return posix.resolve(here, value);
      };
      // symlink(target, linkpath): the target is the link's text, not a path this process touches.
      const linkOnly = syscall === 'symlink' || syscall === 'symlinkat';
      const pathStrings = linkOnly ? strings.slice(-1) : WRITES.has(syscall) ? strings : strings.slice(0, 1);
      for (const { value, at, end } of pathStrings) {
        const path = absolute(value, at);
        if (path === undefined) continue;
        const flags = OPENS.has(syscall) ? args.slice(end) : '';
        // A write that was meant (even one that found nothing to remove); an existing directory is only found.
        const writes =
          (WRITES.has(syscall) && errno !== 'EEXIST') ||
          /O_CREAT/.test(flags) ||
          (!failed && /O_WRONLY|O_RDWR|O_TRUNC/.test(flags));
        if (writes) trace.written.add(path);
        else if (failed && errno !== undefined && ABSENT_ERRORS.has(errno)) trace.absent.add(path);
        else if (!failed && (OPENS.has(syscall) || EXECS.has(syscall))) trace.read.add(path);
        else trace.found.add(path);
        if (syscall === 'chdir' && !failed) here = path;
      }
    }
  }
  return trace;
}

/** The directories above an absolute path, from the root down ('/a/b/c' gives '/', '/a', '/a/b'). */
export function parentsOf(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  return ['/', ...parts.slice(0, -1).map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)];
}
