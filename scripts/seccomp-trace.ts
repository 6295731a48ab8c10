/**
 * Derives the seccomp profiles in seccomp/ from what the images really do (docs/seccomp.md).
 *
 *   npx tsx scripts/seccomp-trace.ts [PROFILE...]             (default: every profile in images/)
 *   npx tsx scripts/seccomp-trace.ts --rewrite [PROFILE...]   (HAND_ADDED changed: no new trace)
 *
 * For each profile it builds the server images (baked and runtime credentials, plain and --tls) with the
 * product's own build, and a test-only variant of each with strace (test/helpers/file-trace.ts). Then:
 *
 * 1. Trace: the entrypoint runs under `strace -f` (as the memcache user; strace is root so that iptables
 *    keeps its file capabilities) with the allowlist of both families, a low per-client cap, runtime
 *    credentials or the baked sasldb re-keyed to the hostname, TLS with client certificates where the
 *    image has it; the host authenticates, fails an authentication, runs a set/get load and hoards
 *    connections over the cap; the health check and the suite's probes are exec'd under strace too; the
 *    server is ended by SIGTERM, started again (restart) and ended by a SIGKILL of memcached.
 * 2. Check: the same scenario on the real image, without strace or extra capabilities, under the traced
 *    calls with the default action SCMP_ACT_LOG: whatever the kernel logs (the runtime's own init after the
 *    filter is in place, anything strace could not see) is added, until a whole run logs nothing.
 *
 * The plain profile is the union over both credential modes; the -tls profile adds what the TLS image did.
 * Calls added by hand (HAND_ADDED) and the denied clone3 are written with their reasons.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { BinaryClient, Op, Status } from '../lib/binary-client.js';
import { buildImage } from '../src/build.js';
import { parseBuildArgs } from '../src/config.js';
import { serializeUsers, type SaslUser } from '../src/credentials.js';
import { connectEngine } from '../src/engine/index.js';
import { projectPath } from '../src/paths.js';
import { listProfiles, loadProfile } from '../src/profiles.js';
import { generatePassword } from '../src/sasldb.js';
import { buildTracerImage } from '../test/helpers/file-trace.js';
import { docker } from '../test/helpers/resources.js';
import { writeMemcacheSecret } from '../test/helpers/secrets.js';
import { issueWithReadmeCommands, mountableSecretDir, type IssuedFiles } from '../test/helpers/tls.js';

/** Calls no trace shows but the images need, each with its reason (also listed in seccomp/README.md). */
export const HAND_ADDED: Record<string, string> = {
  rt_sigreturn: 'returning from any signal handler (the entrypoint traps TERM/INT; strace shows it only when one runs)',
  restart_syscall: 'the kernel restarts an interrupted sleep with it after a stop/continue (SIGSTOP, SIGCONT)',
  exit: 'a thread ending (memcached, stunnel and the runtime threads end with it, not exit_group)',
  exit_group: 'every process ending',
  clone: 'glibc, dash and bash start processes and threads with it (clone3 is refused with ENOSYS below)',
  fork: 'old binaries (16.04) fall back to it where clone is not used',
  vfork: 'posix_spawn in some glibc versions (timeout, env) uses vfork',
  sched_yield: 'glibc locks and the runtime spin with it under contention',
  nanosleep: 'sleep(1), usleep() and the runtime poll loops',
  clock_nanosleep: 'glibc 2.31+ implements nanosleep with it',
  futex: 'every threaded program (memcached, stunnel, the runtime)',
  getrandom: 'OpenSSL, glibc malloc and the runtime seed from it (blocking only before the pool is ready)',
  wait4: 'the shells wait for their children',
  kill: 'the entrypoint passes SIGTERM to memcached and the front; the suite sends signals by exec',
  tgkill: 'raise() and abort() (a crash report must still be possible)',
  madvise: 'glibc malloc trims arenas under load',
  mremap: 'glibc realloc of large blocks under load',
  getpid: 'the shells ($$), OpenSSL and the runtime',
  gettid: 'the runtime and glibc threads',
  pipe: 'old binaries (16.04) create pipes with it, new ones with pipe2',
  pipe2: 'the shells pipelines (new glibc)',
  dup2: 'the shells redirect with it on old glibc',
  dup3: 'the shells redirect with it on new glibc',
  poll: 'memcached (libevent), stunnel and bash /dev/tcp timeouts',
  ppoll: 'new glibc implements poll with it',
  select: 'old libevent and bash read -t',
  pselect6: 'new glibc implements select with it',
  epoll_wait: 'libevent on 16.04',
  epoll_pwait: 'libevent on 12 and the runtime',
  prlimit64: 'getrlimit/setrlimit of new glibc (memcached raises its descriptor limit)',
  getrlimit: 'getrlimit of old glibc',
  setrlimit: 'setrlimit of old glibc (memcached -c)',
  sigaltstack: 'the runtime and glibc threads set an alternate signal stack',
  rseq: 'glibc 2.35+ registers restartable sequences per thread (refused would be harmless, allowed is cheaper)',
  membarrier: 'glibc and the runtime may use it for memory barriers',
  close_range: 'the runtime closes descriptors before exec with it',
  recvfrom: "memcached's UDP path: the image has UDP off, but the suite's UDP-on controls run its memcached",
  // What the suite's probes run as root inside a server (a file walk, a planted sasldb user), found by the
  // suite under the profile: coreutils and findutils of both bases use the *at forms.
  readlinkat: 'find and coreutils read symbolic links with it (the suite walks the file system)',
  fchdir: 'find goes back to its working directory with it (the same walk)',
  fchownat: 'chown --reference (the suite plants a user in the sasldb as root)',
  chown: 'chown of old coreutils',
  fchmodat: 'chmod of coreutils (the same control)',
  chmod: 'chmod of old coreutils; mkfifo of the TLS front',
  renameat: 'mv of coreutils (the same control)',
  renameat2: 'mv of new coreutils',
};

/**
 * socket() only for these address families (reviewed: what the traces show): memcached and the front
 * (IPv4, IPv6), glibc (unix: nscd, syslog), ip and iptables (netlink). Raw packet sockets and the rest fail.
 */
export const SOCKET_FAMILIES: Record<string, number> = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16 };

/** Calls that answer ENOSYS instead: glibc then uses the older call (clone for clone3). */
const ENOSYS_CALLS = ['clone3'];
/**
 * Docker's default profile allows this many calls unconditionally on x86_64 (for the comparison in
 * docs/seccomp.md).
 */
const ARCHITECTURES = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];

interface ImageKind {
  readonly credentials: 'baked' | 'runtime';
  readonly tls: boolean;
}
const KINDS: readonly ImageKind[] = [
  { credentials: 'baked', tls: false },
  { credentials: 'runtime', tls: false },
  { credentials: 'baked', tls: true },
  { credentials: 'runtime', tls: true },
];

const say = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LABEL = 'memcached-hardened.seccomp-trace';

/** The syscall names of strace -f output (one process per line, pid first). */
export function tracedCalls(text: string): Set<string> {
  const calls = new Set<string>();
  for (const line of text.split('\n')) {
    const match = /^(?:\d+\s+)?(?:<\.\.\. ([a-z0-9_]+) resumed>|([a-z0-9_]+)\()/.exec(line);
    const name = match?.[1] ?? match?.[2];
    if (name) calls.add(name);
  }
  return calls;
}

/** The address families of the socket() calls in strace output that SOCKET_FAMILIES does not allow. */
export function unlistedSocketFamilies(text: string): Set<string> {
  const families = [...text.matchAll(/(?:^|\s)socket\((AF_\w+|\d+)/gm)].map((m) => m[1]!);
  return new Set(families.filter((family) => !(family in SOCKET_FAMILIES)));
}

/** x86_64 syscall numbers to names, from the kernel headers of this host. */
function syscallNames(): Map<number, string> {
  const header = readFileSync('/usr/include/x86_64-linux-gnu/asm/unistd_64.h', 'utf8');
  return new Map([...header.matchAll(/^#define __NR_(\w+) (\d+)$/gm)].map((m) => [Number(m[2]), m[1]!]));
}

/** The seccomp records (type 1326) of the kernel log, as "syscall comm" pairs. */
function kernelLogged(): string[] {
  const log = execFileSync('dmesg', [], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return [...log.matchAll(/type=1326 .* comm="([^"]*)" .* arch=c000003e syscall=(\d+)/g)].map((m) => `${m[2]} ${m[1]}`);
}

export interface SeccompProfile {
  readonly defaultAction: string;
  readonly defaultErrnoRet: number;
  readonly architectures: string[];
  readonly syscalls: Array<{ names: string[]; action: string; errnoRet?: number; comment?: string }>;
}

const TRACED = 'traced: scripts/seccomp-trace.ts';
const LOGGED = 'logged by the check run (SCMP_ACT_LOG), not traced: the runtime and docker exec';
const HAND = 'added by hand: HAND_ADDED in scripts/seccomp-trace.ts, seccomp/README.md';

/** The Docker seccomp JSON: traced calls, calls logged by the check run, and HAND_ADDED (one rule each). */
export function seccompProfile(
  traced: Iterable<string>,
  logged: Iterable<string> = [],
  defaultAction = 'SCMP_ACT_ERRNO',
): SeccompProfile {
  const special = (name: string) => ENOSYS_CALLS.includes(name) || name === 'socket';
  const hand = Object.keys(HAND_ADDED)
    .filter((name) => !special(name))
    .sort();
  const loggedOnly = [...new Set(logged)].filter((name) => !special(name) && !(name in HAND_ADDED)).sort();
  const seen = new Set([...hand, ...loggedOnly]);
  const tracedOnly = [...new Set(traced)].filter((name) => !seen.has(name) && !special(name)).sort();
  return {
    defaultAction,
    defaultErrnoRet: 1,
    architectures: ARCHITECTURES,
    syscalls: [
      { names: tracedOnly, action: 'SCMP_ACT_ALLOW', comment: TRACED },
      ...(loggedOnly.length > 0 ? [{ names: loggedOnly, action: 'SCMP_ACT_ALLOW', comment: LOGGED }] : []),
      { names: hand, action: 'SCMP_ACT_ALLOW', comment: HAND },
      ...Object.entries(SOCKET_FAMILIES).map(([family, value]) => ({
        names: ['socket'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
        comment: `socket(${family}, ...) only`,
      })),
      { names: ENOSYS_CALLS, action: 'SCMP_ACT_ERRNO', errnoRet: 38, comment: 'ENOSYS: glibc falls back to clone' },
    ],
  };
}

/** How many calls a profile allows (socket once, whatever its families). */
export function allowedCount(profile: SeccompProfile): number {
  const allowed = profile.syscalls.filter((rule) => rule.action === 'SCMP_ACT_ALLOW');
  return new Set(allowed.flatMap((rule) => rule.names)).size;
}

function writeProfile(name: string, profile: SeccompProfile): void {
  const file = projectPath('seccomp', `${name}.json`);
  mkdirSync(projectPath('seccomp'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(profile, null, 2)}\n`);
  say(`wrote ${file}: ${allowedCount(profile)} call(s) allowed`);
}

/**
 * --rewrite: writes the committed profiles again with the current HAND_ADDED (after a review added a call),
 * keeping their traced and logged calls; no image is built or traced.
 */
function rewrite(names: readonly string[]): void {
  for (const name of names) {
    const committed = JSON.parse(readFileSync(projectPath('seccomp', `${name}.json`), 'utf8')) as SeccompProfile;
    const rule = (comment: string) => committed.syscalls.find((r) => r.comment === comment)?.names ?? [];
    if (rule(TRACED).length === 0) throw new Error(`seccomp/${name}.json has no traced calls: derive it again`);
    // A profile written before the logged calls had a rule of their own: they are its hand rule's others.
    const merged = committed.syscalls.find((r) => r.comment?.startsWith('added by hand or logged'))?.names ?? [];
    const logged = [...rule(LOGGED), ...merged.filter((call) => !(call in HAND_ADDED))];
    writeProfile(name, seccompProfile(rule(TRACED), logged));
  }
}

interface Fixtures {
  readonly dir: string;
  readonly users: SaslUser[];
  readonly usersFile: string;
  readonly tlsDir: string;
  readonly pki: IssuedFiles;
}

function fixtures(): Fixtures {
  const dir = mkdtempSync(join(tmpdir(), 'mh-seccomp-'));
  const users = [
    { name: 'sammy', password: generatePassword() },
    { name: 'alice', password: generatePassword() },
  ];
  const usersFile = writeMemcacheSecret(join(dir, 'users'), serializeUsers(users));
  const pki = issueWithReadmeCommands(join(dir, 'pki'), 'DNS:memcached');
  const tlsFiles = { 'tls.crt': pki.certificate, 'tls.key': pki.key, 'ca.crt': pki.caCertificate };
  const tlsDir = mountableSecretDir(join(dir, 'tls'), tlsFiles);
  return { dir, users, usersFile, tlsDir, pki };
}

async function buildServer(profileName: string, kind: ImageKind, users: SaslUser[]): Promise<string> {
  const suffix = `${kind.credentials === 'runtime' ? '-runtime' : ''}${kind.tls ? '-tls' : ''}`;
  const args = ['--profile', profileName, '--tag', `memcached-hardened-seccomp/server:${profileName}${suffix}`];
  if (kind.credentials === 'runtime') args.push('--runtime-credentials');
  if (kind.tls) args.push('--tls');
  const config = parseBuildArgs(args)!;
  const built = await buildImage(connectEngine(), config, loadProfile(profileName), users, () => undefined);
  return built.imageId;
}

const SOCKET_TABLES = 'for t in tcp udp raw unix packet; do cat /proc/net/$t; done';
const READ_BY_THE_SUITE = '/etc/sasl2/memcached.conf /etc/os-release';
const RUNTIME_SASLDB = '/run/memcached/memcached-sasldb2';
const traceFile = () => `/trace/exec-${Date.now()}-${Math.random()}`;

const KILL_SECOND_MEMCACHED =
  'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = memcached ] && grep -q 11299 $p/cmdline' +
  ' && kill ${p#/proc/}; done; true';

/** The commands the suite and the image's health check run inside a server (traced, or logged). */
function probes(kind: ImageKind): Array<{ command: string[]; user?: string }> {
  const list: Array<{ command: string[]; user?: string }> = [
    { command: ['/usr/local/bin/memcached-healthcheck'] },
    { command: ['cat', '/proc/net/tcp', '/proc/net/tcp6', '/proc/net/udp', '/proc/net/udp6', '/proc/1/status'] },
    {
      command: ['sh', '-c', `cat /proc/[0-9]*/cmdline | tr "\\0" " "; ${SOCKET_TABLES}`],
      user: 'root',
    },
    { command: ['sh', '-c', `db5.3_dump -p ${RUNTIME_SASLDB} | head -n 3; stat -c "%n %U %a" /run/memcached/*`] },
    { command: ['sh', '-c', `touch /etc/probe 2>&1; echo rc=$?; cat ${READ_BY_THE_SUITE} >/dev/null`] },
    { command: ['sh', '-c', 'dpkg-query -W -f="${Version}" memcached; timeout 2 sleep 1; base64 -w0 /etc/hostname'] },
    { command: ['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/11211 && echo connected; id; ls -l /run/memcached'] },
    { command: ['iptables', '-w', '-S'], user: 'root' },
    { command: ['ip6tables', '-w', '-S'], user: 'root' },
    { command: ['iptables', '-w', '-S'] },
    // The suite's control of a second listener: memcached daemonized beside the image's, then ended.
    { command: ['sh', '-c', `memcached -U 0 -p 11299 -l 127.0.0.1 -d && sleep 1 && ${KILL_SECOND_MEMCACHED}`] },
  ];
  if (kind.tls) {
    const sClient = 'timeout 5 openssl s_client -connect "$(cut -d, -f1 /run/memcached/listen):11211" </dev/null 2>&1';
    list.push({ command: ['sh', '-c', `${sClient} | head -n 3`] });
  }
  return list;
}

interface RunSettings {
  readonly image: string;
  readonly network: string;
  readonly subnet: string;
  readonly kind: ImageKind;
  readonly fixtures: Fixtures;
  /** Traced: strace as PID 1 running the entrypoint as memcache, into this host folder. */
  readonly traceDir?: string;
  /** Checked: the real image under this profile JSON. */
  readonly seccomp?: string;
}

function createOptions(run: RunSettings): Docker.ContainerCreateOptions {
  const binds = [];
  if (run.kind.credentials === 'runtime') binds.push(`${run.fixtures.usersFile}:/run/secrets/memcached_users:ro`);
  if (run.kind.tls) binds.push(`${run.fixtures.tlsDir}:/run/secrets/memcached_tls:ro`);
  if (run.traceDir) binds.push(`${run.traceDir}:/trace`);
  const strace = 'exec strace -f -qq -u memcache -o "/trace/run-$(date +%s%N)" /usr/local/bin/memcached-entrypoint';
  return {
    Image: run.image,
    Hostname: 'seccomp-trace',
    Labels: { [LABEL]: 'true' },
    Env: [`MEMCACHED_ALLOW_FROM=${run.subnet},fd00:5ecc::/64`, 'MEMCACHED_MAX_CONNECTIONS_PER_CLIENT=8'],
    ...(run.traceDir ? { User: 'root', Entrypoint: ['sh', '-c', strace] } : {}),
    HostConfig: {
      NetworkMode: run.network,
      Binds: binds,
      CapAdd: run.traceDir ? ['NET_ADMIN', 'SYS_PTRACE'] : ['NET_ADMIN'],
      SecurityOpt: [`seccomp=${run.seccomp ?? 'unconfined'}`],
    },
  };
}

async function logsOf(container: Docker.Container): Promise<string> {
  const buffer = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  return buffer.toString('utf8');
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

async function execute(container: Docker.Container, command: string[], user?: string): Promise<void> {
  const exec = await container.exec({ Cmd: command, User: user ?? '', AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  await new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.resume();
  });
}

/** A connection from the host: over TLS with a client certificate where the image has TLS. */
function connectTo(ip: string, run: RunSettings): Promise<BinaryClient> {
  return run.kind.tls
    ? BinaryClient.connectTls(ip, {
        ca: readFileSync(run.fixtures.pki.caCertificate),
        cert: readFileSync(run.fixtures.pki.clientCertificate),
        key: readFileSync(run.fixtures.pki.clientKey),
        checkServerIdentity: () => undefined,
      })
    : BinaryClient.connect(ip);
}

/** What the host does to a running server: authenticate, fail to, load, hoard over the cap. */
async function exercise(ip: string, run: RunSettings): Promise<void> {
  const connect = () => connectTo(ip, run);
  const user = run.fixtures.users[0]!;
  const unauthenticated = await connect();
  await unauthenticated.listMechanisms();
  await unauthenticated.get('unauthenticated');
  unauthenticated.close();
  const wrong = await connect();
  const refused = await wrong.authenticate(user.name, 'not-the-password');
  if (refused?.status !== Status.authError) {
    throw new Error(`a wrong password was not refused (${refused?.status ?? 'closed'})`);
  }
  wrong.close();
  const clients = await Promise.all([0, 1, 2].map(() => connect()));
  for (const client of clients) {
    const auth = await client.authenticate(user.name, user.password);
    if (auth?.status !== Status.ok) throw new Error(`${user.name} did not authenticate`);
  }
  await Promise.all(
    clients.map(async (client, c) => {
      for (let i = 0; i < 400; i++) {
        await client.set(`k${c}-${i % 50}`, 'v'.repeat(100 + (i % 900)));
        await client.get(`k${c}-${(i * 7) % 50}`);
      }
      await client.stats();
      await client.request(Op.version);
    }),
  );
  for (const client of clients) client.close();
  // Over the per-client cap (8): the guard refuses the rest at once.
  const hoard = await Promise.allSettled(Array.from({ length: 12 }, () => connect()));
  await sleep(500);
  for (const settled of hoard) if (settled.status === 'fulfilled') settled.value.close();
}

async function addressOf(container: Docker.Container, network: string): Promise<string> {
  return (await container.inspect()).NetworkSettings.Networks[network]?.IPAddress ?? '';
}

/** The pid of the memcached process inside the container (by its command name). */
const MEMCACHED_PID =
  'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = memcached ] && echo ${p#/proc/}; done';
/** What strace (PID 1) runs: its child. Without strace, PID 1 itself. */
const TOP_PID = "cat /proc/1/task/1/children 2>/dev/null | awk '{ print $1 }'";

/** One whole scenario: start, exercise, probe, SIGTERM, start again, exercise, SIGKILL memcached. */
async function scenario(run: RunSettings): Promise<void> {
  const container = await docker.createContainer(createOptions(run));
  try {
    for (const ending of ['TERM', 'KILL'] as const) {
      await container.start();
      const ip = await waitFor('the server to listen', async () => {
        const logs = await logsOf(container);
        const { Running } = (await container.inspect()).State;
        if (!Running) throw new Error(`the server exited: ${logs.trim().slice(-800)}`);
        return /listening on/.test(logs) ? addressOf(container, run.network) : undefined;
      });
      await waitFor(
        'memcached to answer',
        async () => {
          (await connectTo(ip, run)).close();
          return true;
        },
        60_000,
      );
      await sleep(500);
      await exercise(ip, run);
      for (const probe of probes(run.kind)) {
        const traced = run.traceDir
          ? ['strace', '-f', '-qq', ...(probe.user ? [] : ['-u', 'memcache']), '-o', traceFile(), ...probe.command]
          : probe.command;
        await execute(container, traced, run.traceDir ? 'root' : probe.user);
      }
      // SIGSTOP/SIGCONT of memcached (the health check's freeze), then the ending.
      const freeze = `for p in $(${MEMCACHED_PID}); do kill -STOP $p; sleep 1; kill -CONT $p; done`;
      await execute(container, ['sh', '-c', freeze], 'root');
      // SIGTERM as `docker stop` sends it (to strace's child when traced), or a crash of memcached.
      const victim = ending === 'TERM' ? TOP_PID : MEMCACHED_PID;
      if (ending === 'TERM' && !run.traceDir) await container.stop({ t: 10 });
      else await execute(container, ['sh', '-c', `kill -${ending} $(${victim})`], 'root');
      const ended = async () => ((await container.inspect()).State.Running ? undefined : true);
      // memcached as PID 1 ignores a SIGKILL sent inside its namespace: then it comes from the engine.
      const stopped = await waitFor('the server to end', ended, 8_000).catch(() => false);
      if (!stopped) {
        await container.kill().catch(() => undefined);
        await waitFor('the server to end', ended, 20_000);
      }
    }
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

async function withNetwork<T>(body: (network: string, subnet: string) => Promise<T>): Promise<T> {
  const name = `mh-seccomp-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const network = await docker.createNetwork({ Name: name, Internal: true, Labels: { [LABEL]: 'true' } });
  try {
    const subnet = (await network.inspect()).IPAM?.Config?.[0]?.Subnet as string | undefined;
    if (!subnet) throw new Error(`network ${name} has no subnet`);
    return await body(name, subnet);
  } finally {
    await network.remove().catch(() => undefined);
  }
}

/** Traces one image kind; returns the calls made. */
async function trace(image: string, kind: ImageKind, fx: Fixtures, label: string): Promise<Set<string>> {
  // The tracer's build downloads strace from the distribution's archive: a busy archive gets two more tries.
  const tracer = await buildTracerImage(image, label)
    .catch(() => sleep(10_000).then(() => buildTracerImage(image, label)))
    .catch(() => sleep(30_000).then(() => buildTracerImage(image, label)));
  const traceDir = join(fx.dir, `trace-${label}`);
  mkdirSync(traceDir, { recursive: true });
  try {
    await withNetwork((network, subnet) =>
      scenario({ image: tracer.image, network, subnet, kind, fixtures: fx, traceDir }),
    );
  } finally {
    await tracer.remove();
  }
  const calls = new Set<string>();
  const files = readdirSync(traceDir);
  if (!files.some((file) => file.startsWith('run-'))) throw new Error(`no trace of the entrypoint for ${label}`);
  for (const file of files) {
    const text = readFileSync(join(traceDir, file), 'utf8');
    for (const call of tracedCalls(text)) calls.add(call);
    const unlisted = [...unlistedSocketFamilies(text)];
    if (unlisted.length > 0) {
      throw new Error(`${label} opened sockets of ${unlisted.join(', ')}: review SOCKET_FAMILIES`);
    }
  }
  return calls;
}

/**
 * Runs the scenario on these images (at once) under the profile with SCMP_ACT_LOG until a whole round logs
 * nothing; returns what was logged, by the command that made the call.
 */
async function check(
  images: ReadonlyArray<[string, ImageKind]>,
  fx: Fixtures,
  allowed: Set<string>,
  names: Map<number, string>,
): Promise<Map<string, string>> {
  const logged = new Map<string, string>();
  for (let round = 1; ; round++) {
    if (round > 12) throw new Error(`still logging after ${round - 1} rounds: ${[...logged.keys()].join(' ')}`);
    const profile = JSON.stringify(seccompProfile(allowed, logged.keys(), 'SCMP_ACT_LOG'));
    const before = kernelLogged().length;
    await Promise.all(
      images.map(([image, kind]) =>
        withNetwork((network, subnet) => scenario({ image, network, subnet, kind, fixtures: fx, seccomp: profile })),
      ),
    );
    await sleep(5500); // the kernel's printk rate limit: 10 records per 5 s; the next round sees the rest
    const fresh = kernelLogged().slice(before);
    let added = 0;
    for (const record of fresh) {
      const [number, comm] = record.split(' ') as [string, string];
      const name = names.get(Number(number)) ?? `syscall_${number}`;
      if (name === 'socket') {
        throw new Error(`${comm} opened a socket of a family SOCKET_FAMILIES does not allow: review it`);
      }
      if (ENOSYS_CALLS.includes(name) || logged.has(name) || allowed.has(name)) continue;
      logged.set(name, comm);
      added++;
    }
    const news = added ? `: ${[...logged.keys()].join(' ')}` : '';
    say(`  check round ${round}: ${fresh.length} record(s), ${added} new call(s)${news}`);
    if (fresh.length === 0) return logged;
  }
}

const labelOf = (profileName: string, kind: ImageKind) => `${profileName}-${kind.credentials}${kind.tls ? '-tls' : ''}`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const profiles = args.filter((arg) => arg !== '--rewrite');
  if (profiles.length === 0) profiles.push(...listProfiles());
  if (args.includes('--rewrite')) return rewrite(profiles.flatMap((profile) => [profile, `${profile}-tls`]));
  const fx = fixtures();
  const names = syscallNames();
  try {
    for (const profileName of profiles) {
      const plain = new Set<string>(Object.keys(HAND_ADDED));
      const tls = new Set<string>(Object.keys(HAND_ADDED));
      const images: Array<[string, ImageKind]> = [];
      for (const kind of KINDS) {
        say(`${labelOf(profileName, kind)}: building`);
        images.push([await buildServer(profileName, kind, fx.users), kind]);
      }
      // The traces are independent: run at once (a tracer image build is mostly waiting for the archive).
      await Promise.all(
        images.map(async ([image, kind]) => {
          const label = labelOf(profileName, kind);
          const calls = await trace(image, kind, fx, label);
          say(`${label}: ${calls.size} call(s) traced`);
          for (const call of calls) (kind.tls ? tls : plain).add(call);
        }),
      );
      for (const call of plain) tls.add(call);
      const logged = new Map<string, string>();
      for (const [which, calls] of [
        ['plain', plain],
        ['tls', tls],
      ] as const) {
        say(`${profileName} (${which}): checking under SCMP_ACT_LOG`);
        const found = await check(
          images.filter(([, kind]) => kind.tls === (which === 'tls')),
          fx,
          calls,
          names,
        );
        for (const [call, comm] of found) {
          logged.set(call, comm);
          calls.add(call);
          tls.add(call);
        }
      }
      for (const [suffix, calls] of [
        ['', plain],
        ['-tls', tls],
      ] as const) {
        const loggedHere = [...logged.keys()].filter((call) => calls.has(call));
        writeProfile(`${profileName}${suffix}`, seccompProfile(calls, loggedHere));
      }
      if (logged.size > 0) {
        const list = [...logged].map(([call, comm]) => `${call} (${comm})`).join(', ');
        say(`logged by the check run, not traced (written in a rule of their own; review them): ${list}`);
      }
    }
  } finally {
    rmSync(fx.dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((error: unknown) => {
    process.stderr.write(`seccomp-trace: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
