import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { BinaryClient, encodeRequest, Op, Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { loadProfile } from '../../src/profiles.js';
import { MEMCACHED_GUARD } from '../../src/render.js';
import { claimedOutcome, openVex, runVexPath, type ProbeOutcome, type ProbeResult } from '../../src/vex.js';
import { loadVulnerabilityTable, type VulnerabilityEntry } from '../../src/vulnerabilities.js';
import { docker } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { execIn, runToExit, startServer, type RunningServer } from '../helpers/server.js';
import {
  issueTlsSecret,
  startSurface,
  surfaceRoundTrip,
  surfaceTarget,
  type Surface,
  type TlsSecret,
} from '../helpers/surface.js';
import { firstUser, targetRows, type TestTarget } from '../helpers/targets.js';
import { buildTestImage } from '../helpers/test-image.js';
import { tlsRoundTrip } from '../helpers/tls.js';
import { edit, ENTRYPOINT } from '../helpers/weakenings.js';

/**
 * Issue V: every known vulnerability of the memcached a profile ships (vulnerabilities/<profile>.json),
 * probed on the wire. Each probe sends the trigger taken from the upstream fix commit to the image and,
 * where a vulnerable build can be had, to that build (the positive control: the original xenial
 * 1.4.25-2ubuntu1, or the same image with the configuration it refuses: UDP on, SASL off, -Y). After each
 * probe the image's memcached is the same process, still refuses unauthenticated clients and still serves
 * an authenticated set/get. The results become the run's OpenVEX document, in reports/.
 *
 * The image's guard (build-files/memcached-guard.c) resets a connection whose binary header announces a body
 * above 1 GiB: the bodylen bug is probed on every variant (plain and TLS) against the same image with the
 * guard not preloaded, and the guard is shown to follow legitimate frames (item-sized, oversized, pipelined,
 * split) without cutting them.
 */

/** The entries issue V requires in every profile's table. */
const REQUIRED_IDS = [
  'CVE-2016-8704',
  'CVE-2016-8705',
  'CVE-2016-8706',
  'CVE-2017-9951',
  'CVE-2018-1000115',
  'CVE-2018-1000127',
  'CVE-2019-11596',
  'CVE-2019-15026',
  'CVE-2020-10931',
  'CVE-2022-48571',
  'CVE-2023-46852',
  'CVE-2023-46853',
  'CVE-2026-47783',
  'CVE-2026-47784',
  'memcached-issue-501',
  'memcached-ascii-auth-huge-token',
  'memcached-binprot-bodylen-above-2gib',
];

const XENIAL_ORIGINAL = '1.4.25-2ubuntu1';

/** 2000 distinct keys, for a long multiget. */
const MANY_KEYS = Array.from({ length: 2000 }, (_, i) => `k${i}`).join(' ');

/** The probes of this file, by the names the tables use. */
const PROBES = [
  'append-key-longer-than-body',
  'set-key-longer-than-body',
  'sasl-auth-body-shorter-than-key',
  'set-body-length-4gib',
  'udp-stats-amplification',
  'ascii-multiget-same-key',
  'ascii-lru-without-argument',
  'ascii-stats-conns',
  'binary-extras-length-255',
  'udp-multi-packet-frame',
  'ascii-multiget-many-keys',
  'ascii-request-bare-newline',
  'binary-without-sasl-pwdb',
  'udp-ascii-without-authentication',
  'ascii-auth-huge-token',
  'sasl-auth-body-above-2gib',
];

/** A binary request header whose length fields may lie about what follows. */
function header(opcode: number, keyLength: number, extrasLength: number, bodyLength: number): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt8(0x80, 0);
  h.writeUInt8(opcode, 1);
  h.writeUInt16BE(keyLength, 2);
  h.writeUInt8(extrasLength, 4);
  h.writeUInt32BE(bodyLength >>> 0, 8);
  return h;
}

const OP_APPEND = 0x0e;

/** The triggers, from the fix commits (the bytes a key or extras length announces are sent too). */
const TRIGGERS = {
  /** CVE-2016-8704: APPEND, key 250 bytes, body 0. */
  appendKeyLongerThanBody: () => Buffer.concat([header(OP_APPEND, 0xfa, 0, 0), Buffer.alloc(0xfa, 0x41)]),
  /** CVE-2016-8705: SET, extras 8 + key 250 > body 16. */
  setKeyLongerThanBody: () => Buffer.concat([header(Op.set, 0xfa, 8, 0x10), Buffer.alloc(8), Buffer.alloc(0xfa, 0x41)]),
  /** CVE-2016-8706: SASL_AUTH, key "PLAIN" (5) > body 0. */
  saslAuthBodyShorterThanKey: () => Buffer.concat([header(Op.saslAuth, 5, 0, 0), Buffer.from('PLAIN')]),
  /** CVE-2017-9951: SET announcing a 4 GiB body. */
  setBodyLength4GiB: () => Buffer.concat([header(Op.set, 3, 8, 0xffffffff), Buffer.alloc(8), Buffer.from('key')]),
  /** CVE-2020-10931: extras length 255 (more than the 20 the 1.6.0 stack buffer held), body holding them. */
  extrasLength255: () => Buffer.concat([header(Op.get, 0, 0xff, 0xff), Buffer.alloc(0xff, 0x42)]),
  /**
   * memcached 1.6.42's bodylen fix: SASL_AUTH announcing 2^31 + 5 bytes. Unfixed, the body is not swallowed
   * and what follows is parsed as new commands: a VERSION (allowed unauthenticated) and a GET (not allowed).
   */
  saslAuthBodyAbove2GiB: () =>
    Buffer.concat([
      header(Op.saslAuth, 5, 0, 0x80000005),
      Buffer.from('PLAIN'),
      encodeRequest(Op.version),
      encodeRequest(Op.get, 'k'),
    ]),
};

interface Frame {
  readonly opcode: number;
  readonly status: number;
}

/** What came back on one connection: the binary responses in order, and whether the server closed it. */
interface Exchange {
  readonly frames: readonly Frame[];
  readonly closed: boolean;
}

function describeExchange({ frames, closed }: Exchange): string {
  const hex = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;
  const each = frames.map((f) => `op ${hex(f.opcode)} status ${hex(f.status)}`);
  const answers = frames.length === 0 ? 'no answer' : each.join(', ');
  return `${answers}; connection ${closed ? 'closed' : 'open'}`;
}

/**
 * Sends `bytes` on a fresh connection (authenticated first when `user` is given) and reads the responses
 * until the server closes the connection or stays silent (1.5 s for the first answer, 0.3 s after one).
 */
async function binaryExchange(
  ip: string,
  bytes: Buffer,
  user?: { name: string; password: string },
  tls?: ConnectionOptions,
): Promise<Exchange> {
  const client = await (tls ? BinaryClient.connectTls(ip, tls) : BinaryClient.connect(ip));
  try {
    if (user) {
      const auth = await client.authenticate(user.name, user.password);
      if (auth?.status !== Status.ok) {
        throw new Error(`authentication at ${ip} failed before the probe: ${auth?.status ?? 'closed'}`);
      }
    }
    client.write(bytes);
    const frames: Frame[] = [];
    for (let i = 0; i < 8; i++) {
      const head = await client.read(24, frames.length === 0 ? 1500 : 300);
      if (head.length < 24 || head[0] !== 0x81) break;
      await client.read(head.readUInt32BE(8), 1000);
      frames.push({ opcode: head.readUInt8(1), status: head.readUInt16BE(6) });
    }
    // A close that follows the last answer is part of what the server did.
    if (!client.isClosed) await client.read(1, 200);
    return { frames, closed: client.isClosed };
  } finally {
    client.close();
  }
}

/**
 * Sends ASCII text on a fresh TCP connection; returns what came back (within 1 s, or as soon as it matches
 * `until`) and whether the server closed the connection.
 */
async function asciiExchange(ip: string, text: string, until?: RegExp): Promise<{ reply: string; closed: boolean }> {
  const client = await BinaryClient.connect(ip);
  try {
    client.write(Buffer.from(text, 'latin1'));
    let reply = '';
    const deadline = Date.now() + 1000;
    while (Date.now() < deadline && !(until && until.test(reply))) {
      const first = await client.read(1, deadline - Date.now());
      if (first.length === 0) break;
      reply += first.toString('latin1') + (await client.read(1 << 20, 0)).toString('latin1');
    }
    return { reply, closed: client.isClosed };
  } finally {
    client.close();
  }
}

/** memcached's UDP frame header: request id, sequence number, datagrams in the request, reserved. */
function udpFrame(ascii: string, requestId = 1, total = 1): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(requestId, 0);
  h.writeUInt16BE(0, 2);
  h.writeUInt16BE(total, 4);
  return Buffer.concat([h, Buffer.from(ascii, 'latin1')]);
}

/** One response frame on a connection the probe drives itself; undefined once it closed or stayed silent. */
async function readResponse(client: BinaryClient, timeoutMs: number): Promise<(Frame & { value: Buffer }) | undefined> {
  const head = await client.read(24, timeoutMs);
  if (head.length < 24 || head[0] !== 0x81) return undefined;
  const body = await client.read(head.readUInt32BE(8), timeoutMs);
  const skip = head.readUInt8(4) + head.readUInt16BE(2);
  return { opcode: head.readUInt8(1), status: head.readUInt16BE(6), value: body.subarray(skip) };
}

/** Writes `bytes` in pieces cut at `cuts`, pausing between them so the server reads each on its own. */
async function writeInPieces(client: BinaryClient, bytes: Buffer, cuts: readonly number[]): Promise<void> {
  const edges = [0, ...cuts, bytes.length];
  for (let i = 0; i + 1 < edges.length; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    client.write(bytes.subarray(edges[i], edges[i + 1]));
  }
}

/** memcached's default item size limit (-I): the image sets none. */
const ITEM_SIZE_LIMIT = 1024 * 1024;
const E2BIG = 0x03;
const SET_EXTRAS = Buffer.alloc(8);

/** The image with its guard not preloaded (every LD_PRELOAD of its start scripts emptied): the package alone. */
function unguardedDockerfile(image: string): string {
  const preload = 'LD_PRELOAD="\\$MEMCACHED_GUARD"';
  const scripts = `${ENTRYPOINT} ${dirname(MEMCACHED_GUARD)}`;
  const files = `files="$(grep -rl '${preload}' ${scripts})"; [ -n "$files" ]`;
  const command = `${files}; sed -i 's/${preload}/LD_PRELOAD=/g' $files`;
  const proof = `! grep -rq '${preload}' ${scripts} && grep -rq 'LD_PRELOAD= ' ${scripts}`;
  return [`FROM ${image}`, ...edit(command, proof)].join('\n');
}

/** The end of a complete ASCII answer over UDP. */
const UDP_ANSWER_END = /(END|STORED|ERROR[^\r]*|VERSION [^\r]*)\r\n$/;

/**
 * Sends one datagram to ip:11211; returns the payloads (frame headers removed) that came back, as soon as
 * they form a complete answer, or within 1 s.
 */
async function udpExchange(ip: string, datagram: Buffer): Promise<{ text: string; bytes: number }> {
  const socket = createSocket('udp4');
  const payloads: Buffer[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 1000);
      socket.on('message', (message) => {
        payloads.push(message.subarray(8));
        if (UDP_ANSWER_END.test(Buffer.concat(payloads).toString('latin1'))) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.send(datagram, 11211, ip, (error) => {
        if (error) {
          clearTimeout(timer);
          reject(error);
        }
      });
    });
  } finally {
    socket.close();
  }
  const all = Buffer.concat(payloads);
  return { text: all.toString('latin1'), bytes: all.length + 8 * payloads.length };
}

/** The host PID of the memcached process in a container, from the engine's `top`; undefined once it is gone. */
async function memcachedPid(containerId: string): Promise<number | undefined> {
  const container = docker.getContainer(containerId);
  if (!(await container.inspect()).State.Running) return undefined;
  // A container that stops between the two calls has no processes (or no longer answers top).
  type Top = { Titles?: string[]; Processes?: string[][] | null } | undefined;
  const top = (await container.top().catch(() => undefined)) as Top;
  const titles = top?.Titles ?? [];
  const pid = titles.indexOf('PID');
  const command = titles.findIndex((title) => title === 'CMD' || title === 'COMMAND');
  const row = (top?.Processes ?? []).find((p) => /(^|\/)memcached(\s|$)/.test(p[command] ?? ''));
  return row ? Number(row[pid]) : undefined;
}

/**
 * A test image built once and kept under `tag`, reused while its Dockerfile is unchanged (a label holds the
 * Dockerfile's digest): the engine's layer cache alone does not survive other runs' image clean-ups.
 */
async function cachedTestImage(dockerfile: string, tag: string): Promise<string> {
  const digest = createHash('sha256').update(dockerfile).digest('hex');
  const existing = await docker
    .getImage(tag)
    .inspect()
    .catch(() => undefined);
  if (existing?.Config.Labels?.[DOCKERFILE_LABEL] === digest) return existing.Id;
  return buildTestImage(`${dockerfile}\nLABEL ${DOCKERFILE_LABEL}=${digest}`, tag);
}

const DOCKERFILE_LABEL = 'memcached-hardened-test.dockerfile-sha256';

/** The Dockerfile of the positive control: the profile's base with exactly the original xenial memcached. */
function xenialControlDockerfile(baseImage: string, suites: readonly string[], components: readonly string[]): string {
  // The base image's own apt source, as Dockerfile.template reuses it. The suite's base is upgraded, so the
  // libraries come from the profile's suites; memcached is pinned to the version only the release suite has.
  return [
    `FROM ${baseImage}`,
    'ARG DEBIAN_FRONTEND=noninteractive',
    'RUN set -eu; \\',
    `    mirror="$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)"; [ -n "$mirror" ]; \\`,
    '    rm -f /etc/apt/sources.list.d/*; : > /etc/apt/sources.list; \\',
    `    for suite in ${suites.join(' ')}; do \\`,
    `      echo "deb $mirror $suite ${components.join(' ')}" >> /etc/apt/sources.list; \\`,
    '    done; \\',
    '    apt-get update -qq; \\',
    '    apt-get install -y -qq --no-install-recommends \\',
    `      memcached=${XENIAL_ORIGINAL} sasl2-bin libsasl2-modules >/dev/null; \\`,
    `    [ "$(dpkg-query -W -f='\${Version}' memcached)" = "${XENIAL_ORIGINAL}" ]; \\`,
    '    rm -rf /var/lib/apt/lists/*; \\',
    '    mkdir -p /etc/sasl2; \\',
    "    printf '%s\\n' 'mech_list: plain' 'sasldb_path: /run/control-sasldb2' > /etc/sasl2/memcached.conf",
  ].join('\n');
}

/** Starts the control: one user (the target's first) in a sasldb keyed to the hostname, SASL on, UDP on. */
const XENIAL_START = [
  'printf %s "$CONTROL_PASSWORD" | saslpasswd2 -p -c -a memcached -f /run/control-sasldb2 "$CONTROL_USER"',
  'chown memcache /run/control-sasldb2',
  'exec memcached -u memcache -S -U 11211 -p 11211 -l 0.0.0.0',
].join(' && ');

describe.each(targetRows())('%s', (_name, target: TestTarget) => {
  const user = firstUser(target);
  const table = loadVulnerabilityTable(target.profile);
  const profile = loadProfile(target.profile);
  const xenial = target.profile === 'ubuntu-16.04';
  const results: ProbeResult[] = [];
  const bench = isolatedServers('vulns');
  let server: RunningServer;
  let serverPid: number;
  /** The same image with UDP on (and SASL on where this memcached allows both: 1.4.25). */
  let udpControl: RunningServer;
  /** The same image with SASL off (ASCII answered). */
  let plainControl: RunningServer;
  /** ubuntu-16.04: the original xenial build. */
  let original: RunningServer | undefined;
  let originalImage: string | undefined;
  /** The same image with its guard not preloaded. */
  let unguarded: RunningServer;
  /** The variants the image ships: plain, and TLS where the run built the TLS image. */
  const surfaces: Surface[] = target.tlsImage ? ['plain', 'tls'] : ['plain'];
  let secret: TlsSecret | undefined;
  const tlsOptions = (): ConnectionOptions => ({ ca: secret!.caPem, servername: 'memcached' });

  const entry = (id: string): VulnerabilityEntry => {
    const found = table.entries.find((e) => e.id === id);
    if (!found) throw new Error(`${target.profile}: the table has no ${id}`);
    return found;
  };

  /** Records a probe's result for the VEX document after checking it against the table. */
  const record = (ids: string[], outcome: ProbeOutcome, image: string, control?: string) => {
    for (const id of ids) {
      expect({ id, outcome }).toEqual({ id, outcome: claimedOutcome(entry(id)) });
      results.push({ probe: entry(id).probe, outcome, image, ...(control === undefined ? {} : { control }) });
    }
  };

  /** The image's memcached is the same process, refuses unauthenticated clients and serves authenticated ones. */
  const stillServing = async () => {
    expect(await memcachedPid(server.container.getId())).toBe(serverPid);
    expect((await tryAuthenticatedRoundTrip(server.ip, undefined, '')).roundTrip).toBe(false);
    const authenticated = await tryAuthenticatedRoundTrip(server.ip, user.name, user.password);
    expect(authenticated).toEqual({ authStatus: Status.ok, roundTrip: true });
  };

  /** stillServing for a server of either surface. */
  const stillServingOn = async (s: RunningServer, pid: number, surface: Surface) => {
    expect(await memcachedPid(s.container.getId())).toBe(pid);
    const anonymous =
      surface === 'plain'
        ? await tryAuthenticatedRoundTrip(s.ip, undefined, '')
        : await tlsRoundTrip(s.ip, tlsOptions(), undefined);
    expect(anonymous.roundTrip).toBe(false);
    expect(await surfaceRoundTrip(s, surface, user, secret)).toEqual({ authStatus: Status.ok, roundTrip: true });
  };

  /** The image of one surface with its guard not preloaded, built once per Dockerfile. */
  const unguardedImage = (surface: Surface) => {
    const tag = `memcached-hardened-test/vuln-unguarded:${target.profile}-${target.credentials}-${surface}`;
    return cachedTestImage(unguardedDockerfile(surfaceTarget(target, surface).image), tag);
  };

  /** One surface's server: the image (or `image`, a variant of that surface), with its memcached PID. */
  const startOn = async (surface: Surface, image?: string): Promise<{ s: RunningServer; pid: number }> => {
    const network = bench.network.name;
    // Kept by the bench too: a test stops its TLS servers itself, the bench ends whatever a failure left running.
    const s = bench.keep(
      surface === 'plain'
        ? await startServer({ ...target, image: image ?? target.image }, network)
        : await startSurface({ ...target, tlsImage: image ?? target.tlsImage }, 'tls', network, { secret }),
    );
    const pid = await memcachedPid(s.container.getId());
    if (pid === undefined) throw new Error(`${target.name} (${surface}): no memcached running`);
    return { s, pid };
  };

  /** The original build, started again if a probe brought it down (reported by the probe first). */
  const originalServer = async (): Promise<RunningServer> => {
    if (original && (await memcachedPid(original.container.getId())) !== undefined) return original;
    await original?.stop();
    original = await bench.start(
      { ...target, image: originalImage! },
      {
        hostname: 'xenial-control',
        env: { CONTROL_USER: user.name, CONTROL_PASSWORD: user.password },
        entrypoint: ['sh', '-c', XENIAL_START],
        // Not the image's seccomp profile (traced for the image's own processes) nor its locked-down run: the
        // control is another build, started as root the tutorial's way (it writes its sasldb, then drops to memcache).
        securityOpt: ['seccomp=unconfined'],
        lockedDown: false,
      },
    );
    return original;
  };

  beforeAll(async () => {
    if (target.tlsImage) secret = bench.keep(issueTlsSecret());
    if (xenial) {
      const dockerfile = xenialControlDockerfile(target.baseImage, profile.apt.suites, profile.apt.components);
      const tag = `memcached-hardened-test/vuln-control:xenial-${XENIAL_ORIGINAL}`;
      originalImage = await cachedTestImage(dockerfile, tag);
    }
    const listen = ['-p', '11211', '-l', '0.0.0.0'];
    const started = Promise.all([
      bench.start(target),
      // 1.4.25 takes SASL and UDP together (issue 501); 1.6 refuses them together, so its UDP control has SASL off.
      // Not under the image's seccomp profile: it is traced for the image's own configuration (UDP off) and
      // leaves out what a UDP listener needs, which would hide the behaviour this control is there to show.
      bench.control(target, [...(xenial ? ['-S'] : []), '-U', '11211', ...listen], {
        securityOpt: ['seccomp=unconfined'],
      }),
      bench.control(target, ['-U', '0', ...listen]),
    ]);
    if (xenial) await originalServer();
    unguarded = (await startOn('plain', await unguardedImage('plain'))).s;
    [server, udpControl, plainControl] = await started;
    serverPid = (await memcachedPid(server.container.getId()))!;
    expect(serverPid).toBeGreaterThan(0);
  });

  it('has a table of every entry issue V names, for the memcached the image ships, each probed here', async () => {
    const ids = table.entries.map((e) => e.id);
    expect(REQUIRED_IDS.filter((id) => !ids.includes(id))).toEqual([]);
    expect(table.entries.map((e) => e.probe).filter((probe) => !PROBES.includes(probe))).toEqual([]);
    const version = await execIn(server.container, ['dpkg-query', '-W', '-f=${Version}', 'memcached']);
    expect(version.output.trim()).toBe(table.packageVersion);
  });

  it('CVE-2016-8706: SASL_AUTH with a body shorter than its key', async () => {
    const image = await binaryExchange(server.ip, TRIGGERS.saslAuthBodyShorterThanKey());
    expect(image.frames.map((f) => f.status)).toEqual([Status.unknownCommand]);
    await stillServing();
    let control: string | undefined;
    if (xenial) {
      const c = await binaryExchange((await originalServer()).ip, TRIGGERS.saslAuthBodyShorterThanKey());
      // The original build resets the connection without any answer.
      expect(c).toEqual({ frames: [], closed: true });
      control = describeExchange(c);
    }
    record(['CVE-2016-8706'], 'fixed', describeExchange(image), control);
  });

  it.each([
    ['CVE-2016-8704', 'APPEND with a key longer than the body', TRIGGERS.appendKeyLongerThanBody],
    ['CVE-2016-8705', 'SET with key and extras longer than the body', TRIGGERS.setKeyLongerThanBody],
  ] as const)('%s: %s, before and after authentication', async (id, _what, trigger) => {
    const before = await binaryExchange(server.ip, trigger());
    const after = await binaryExchange(server.ip, trigger(), user);
    // The fix checks the lengths before authentication: UNKNOWN_COMMAND either way.
    expect(before.frames.map((f) => f.status)).toEqual([Status.unknownCommand]);
    expect(after.frames.map((f) => f.status)).toEqual([Status.unknownCommand]);
    await stillServing();
    let control: string | undefined;
    if (xenial) {
      const ip = (await originalServer()).ip;
      const controlBefore = await binaryExchange(ip, trigger());
      const controlAfter = await binaryExchange(ip, trigger(), user);
      // Unfixed, authentication comes first (0x20), and the authenticated client reaches the overflow.
      expect(controlBefore.frames.map((f) => f.status)).toEqual([Status.authError]);
      expect(controlAfter.frames.map((f) => f.status)).not.toContain(Status.unknownCommand);
      control = `before auth: ${describeExchange(controlBefore)}; after: ${describeExchange(controlAfter)}`;
    }
    record([id], 'fixed', `before auth: ${describeExchange(before)}; after: ${describeExchange(after)}`, control);
  });

  it('CVE-2017-9951: an authenticated SET announcing 4 GiB: the guard resets it, the package refuses it', async () => {
    const image = await binaryExchange(server.ip, TRIGGERS.setBodyLength4GiB(), user);
    // The guard resets the connection at the header: memcached never reads it.
    expect(image).toEqual({ frames: [], closed: true });
    await stillServing();
    // Without the guard the package's own fix shows: an error status, not the original's silent reset.
    const bare = await binaryExchange(unguarded.ip, TRIGGERS.setBodyLength4GiB(), user);
    expect(bare.frames.length).toBeGreaterThan(0);
    expect(bare.frames[0]!.status).not.toBe(Status.ok);
    let control: string | undefined;
    if (xenial) {
      const c = await binaryExchange((await originalServer()).ip, TRIGGERS.setBodyLength4GiB(), user);
      expect(c).toEqual({ frames: [], closed: true });
      control = describeExchange(c);
    }
    const said = `${describeExchange(image)} (the guard's reset); without the guard: ${describeExchange(bare)}`;
    record(['CVE-2017-9951'], 'fixed', said, control);
  });

  it('CVE-2020-10931: a binary header with 255 bytes of extras, before authentication', async () => {
    const image = await binaryExchange(server.ip, TRIGGERS.extrasLength255());
    expect(image.frames.length).toBeGreaterThan(0);
    expect(image.frames.every((f) => f.status !== Status.ok)).toBe(true);
    await stillServing();
    record(['CVE-2020-10931'], 'fixed', describeExchange(image));
  });

  it('1.6.42 bodylen fix: SASL_AUTH announcing over 2^31 bytes: the guard resets it; unguarded, desync', async () => {
    const desynchronised = (e: Exchange) => e.frames.some((f) => f.opcode === Op.version && f.status === Status.ok);
    // Whatever the framing, the smuggled GET is never served unauthenticated.
    const getRefused = (e: Exchange) => e.frames.every((f) => f.opcode !== Op.get || f.status === Status.authError);
    const seen: Array<{ surface: Surface; image: Exchange }> = [];
    const controls: string[] = [];
    for (const surface of surfaces) {
      const tls = surface === 'tls' ? tlsOptions() : undefined;
      const guarded = surface === 'plain' ? { s: server, pid: serverPid } : await startOn(surface);
      const bare = surface === 'plain' ? unguarded : (await startOn(surface, await unguardedImage(surface))).s;
      try {
        const image = await binaryExchange(guarded.s.ip, TRIGGERS.saslAuthBodyAbove2GiB(), undefined, tls);
        expect(getRefused(image)).toBe(true);
        seen.push({ surface, image });
        await stillServingOn(guarded.s, guarded.pid, surface);
        const c = await binaryExchange(bare.ip, TRIGGERS.saslAuthBodyAbove2GiB(), undefined, tls);
        expect({ surface, desynchronised: desynchronised(c), getRefused: getRefused(c) }).toEqual({
          surface,
          desynchronised: true,
          getRefused: true,
        });
        controls.push(`${surface}, guard not preloaded: ${describeExchange(c)}`);
      } finally {
        if (surface === 'tls') await Promise.all([guarded.s.stop(), bare.stop()]);
      }
    }
    if (xenial) {
      const c = await binaryExchange((await originalServer()).ip, TRIGGERS.saslAuthBodyAbove2GiB());
      expect(desynchronised(c)).toBe(true);
      controls.push(`original ${XENIAL_ORIGINAL}: ${describeExchange(c)}`);
    }
    const affected = seen.some(({ image }) => desynchronised(image));
    const images = seen.map(({ surface, image }) => `${surface}: ${describeExchange(image)}`).join('; ');
    record(['memcached-binprot-bodylen-above-2gib'], affected ? 'affected' : 'fixed', images, controls.join('; '));
    // The guard resets the connection at the header: memcached reads none of what follows.
    const reset = { frames: [], closed: true };
    expect(seen).toEqual(seen.map(({ surface }) => ({ surface, image: reset })));
  });

  it('the guard follows legitimate frames: item-sized, oversized, pipelined and split requests served', async () => {
    for (const surface of surfaces) {
      const tls = surface === 'tls' ? tlsOptions() : undefined;
      const guarded = surface === 'plain' ? { s: server, pid: serverPid } : await startOn(surface);
      const client = await (tls ? BinaryClient.connectTls(guarded.s.ip, tls) : BinaryClient.connect(guarded.s.ip));
      try {
        expect((await client.authenticate(user.name, user.password))?.status).toBe(Status.ok);
        // A value just under the item size limit, read by memcached in many pieces, round-trips.
        const big = randomBytes(ITEM_SIZE_LIMIT - 1024);
        expect((await client.request(Op.set, 'big', big, SET_EXTRAS, 20_000))?.status).toBe(Status.ok);
        expect((await client.request(Op.get, 'big', '', undefined, 20_000))?.value.equals(big)).toBe(true);
        // Over the limit: memcached swallows the body and answers E2BIG; the guard must skip it too.
        const over = Buffer.alloc(2 * ITEM_SIZE_LIMIT, 0x80);
        expect((await client.request(Op.set, 'over', over, SET_EXTRAS, 20_000))?.status).toBe(E2BIG);
        // Pipelined in one write: a value that looks like a header announcing 4 GiB, then a GET and a VERSION.
        const lookalike = TRIGGERS.setBodyLength4GiB();
        client.write(
          Buffer.concat([
            encodeRequest(Op.set, 'lookalike', lookalike, SET_EXTRAS),
            encodeRequest(Op.get, 'lookalike'),
            encodeRequest(Op.version),
          ]),
        );
        const pipelined = [];
        for (let i = 0; i < 3; i++) pipelined.push(await readResponse(client, 5000));
        expect(pipelined.map((f) => [f?.opcode, f?.status])).toEqual([
          [Op.set, 0],
          [Op.get, 0],
          [Op.version, 0],
        ]);
        expect(pipelined[1]!.value.equals(lookalike)).toBe(true);
        // Headers cut mid-way, each piece read on its own.
        await writeInPieces(client, encodeRequest(Op.set, 'split', 'abc', SET_EXTRAS), [5, 13, 30]);
        await writeInPieces(client, encodeRequest(Op.get, 'split'), [1, 23]);
        const split = [await readResponse(client, 5000), await readResponse(client, 5000)];
        const answered = split.map((f) => [f?.opcode, f?.status, f?.value.toString()]);
        expect(answered).toEqual([
          [Op.set, 0, ''],
          [Op.get, 0, 'abc'],
        ]);
        // After all that the guard is still at a frame boundary: a header announcing over 2^31, cut in two,
        // is reset without an answer (the positive control of this check's framing).
        await writeInPieces(client, TRIGGERS.saslAuthBodyAbove2GiB(), [10]);
        expect(await readResponse(client, 1500)).toBeUndefined();
        await client.read(1, 1000);
        expect(client.isClosed).toBe(true);
        await stillServingOn(guarded.s, guarded.pid, surface);
      } finally {
        client.close();
        if (surface === 'tls') await guarded.s.stop();
      }
    }
  });

  it('issue 501 / CVE-2018-1000115: no UDP; with UDP on, data without authentication and amplified stats', async () => {
    const key = `udp-${Math.random().toString(36).slice(2, 8)}`;
    const set = udpFrame(`set ${key} 0 60 5\r\nhello\r\n`);
    const get = udpFrame(`get ${key}\r\n`, 2);
    const stats = udpFrame('stats\r\n', 3);
    const image = await Promise.all([set, get, stats].map((d) => udpExchange(server.ip, d)));
    expect(image.map((r) => r.text)).toEqual(['', '', '']);
    await stillServing();
    const onUdp = await udpExchange(udpControl.ip, set);
    const value = await udpExchange(udpControl.ip, get);
    const amplified = await udpExchange(udpControl.ip, stats);
    expect(onUdp.text).toBe('STORED\r\n');
    expect(value.text).toContain(`VALUE ${key} 0 5\r\nhello\r\nEND`);
    expect(amplified.bytes).toBeGreaterThan(10 * stats.length);
    const saslOn = xenial ? ' (SASL on)' : ' (SASL off)';
    const control =
      `UDP on${saslOn}: set ${onUdp.text.trim()}, get returned the value, ` +
      `stats ${amplified.bytes} bytes for a ${stats.length}-byte request`;
    if (!xenial) {
      // 1.6 refuses SASL with UDP at start: the issue-501 fix, shown on the same image.
      const entrypoint = ['memcached', '-S', '-U', '11211', '-p', '11211'];
      const refused = await runToExit(target, bench.network.name, { entrypoint });
      expect(refused.exitCode).not.toBe(0);
      expect(refused.output).toMatch(/udp/i);
      const said = `-S with UDP on: exit ${refused.exitCode}: ${refused.output.trim()}`;
      record(['memcached-issue-501'], 'not-reachable', 'no UDP answer', said);
    } else {
      // The original xenial build, SASL and UDP on: the same data without authentication.
      const ip = (await originalServer()).ip;
      expect((await udpExchange(ip, set)).text).toBe('STORED\r\n');
      expect((await udpExchange(ip, get)).text).toContain(`VALUE ${key} 0 5\r\nhello\r\nEND`);
      const both = `${control}; original ${XENIAL_ORIGINAL} (SASL and UDP on): set STORED, get returned the value`;
      record(['memcached-issue-501'], 'not-reachable', 'no UDP answer to set, get or stats', both);
    }
    record(['CVE-2018-1000115'], 'not-reachable', 'no UDP answer to stats', control);
  });

  it('CVE-2022-48571: a multi-packet UDP upload', async () => {
    const upload = udpFrame('set k 0 0 1\r\n', 7, 2);
    expect((await udpExchange(server.ip, upload)).text).toBe('');
    await stillServing();
    const control = await udpExchange(udpControl.ip, upload);
    // 1.4.25 queues an error it never sends; 1.6.8+ drops the datagram (1.6.0-1.6.7 crashed): the control lives.
    expect(control.text).toMatch(/^(SERVER_ERROR multi-packet request not supported\r\n)?$/);
    expect((await udpExchange(udpControl.ip, udpFrame('version\r\n', 8))).text).toMatch(/^VERSION 1\./);
    const said = `UDP on: ${JSON.stringify(control.text.trim())}, then answers version`;
    record(['CVE-2022-48571'], 'not-reachable', 'no UDP answer', said);
  });

  it('CVE-2018-1000127: one ASCII get naming the same key thousands of times', async () => {
    const key = 'refcount-key';
    const multiget = `get ${Array.from({ length: 3000 }, () => key).join(' ')}\r\n`;
    const image = xenial
      ? (await udpExchange(server.ip, udpFrame(multiget))).text
      : (await asciiExchange(server.ip, multiget)).reply;
    expect(image).not.toContain('VALUE');
    await stillServing();
    let control: string;
    if (xenial) {
      await udpExchange(udpControl.ip, udpFrame(`set ${key} 0 60 1\r\nx\r\n`));
      control = (await udpExchange(udpControl.ip, udpFrame(multiget, 9))).text;
    } else {
      control = (await asciiExchange(plainControl.ip, `set ${key} 0 60 1\r\nx\r\n${multiget}`, /END\r\n$/)).reply;
    }
    expect(control).toContain(`VALUE ${key} 0 1`);
    const how = xenial ? 'over UDP' : 'over TCP';
    record(
      ['CVE-2018-1000127'],
      'not-reachable',
      `no value ${how} (${JSON.stringify(image.slice(0, 40))})`,
      `${xenial ? 'UDP on' : 'SASL off'}: the values came back`,
    );
  });

  it.each([
    ['CVE-2019-11596', 'lru mode without its argument', 'lru mode\r\nlru temp_ttl\r\n', /ERROR/],
    ['CVE-2019-15026', 'stats conns', 'stats conns\r\n', /STAT \d+:addr /],
    ['CVE-2023-46852', 'a multiget of 2000 keys', `get ${MANY_KEYS}\r\n`, /^END\r\n$/],
    ['CVE-2023-46853', 'a request ending in a bare newline', 'get k\n', /^END\r\n$/],
  ] as const)('%s: ASCII %s: nothing from the image, an answer from the SASL-off control', async (...row) => {
    const [id, , text, answer] = row;
    const image = await asciiExchange(server.ip, text);
    expect(image.reply).not.toMatch(/^(OK|STAT|VALUE|END)/m);
    await stillServing();
    const control = await asciiExchange(plainControl.ip, text, answer);
    expect(control.reply).toMatch(answer);
    expect(await memcachedPid(plainControl.container.getId())).toBeDefined();
    // The image gave no data: the ASCII trigger does not reach its memcached.
    const imageSaid = `${JSON.stringify(image.reply.slice(0, 60))}, connection ${image.closed ? 'closed' : 'open'}`;
    record([id], 'not-reachable', imageSaid, `SASL off: ${JSON.stringify(control.reply.slice(0, 60))}`);
  });

  it('CVE-2026-47783/47784: the binary has no SASL password database (MEMCACHED_SASL_PWDB)', async () => {
    const grep = (what: string) =>
      execIn(server.container, ['sh', '-c', `grep -c ${what} "$(command -v memcached)" || true`]);
    const pwdb = await grep('MEMCACHED_SASL_PWDB');
    // The same grep finds what a SASL-enabled memcached does contain.
    const sasl = await grep('sasl_server_new');
    expect(Number(pwdb.output.trim())).toBe(0);
    expect(Number(sasl.output.trim())).toBeGreaterThan(0);
    record(
      ['CVE-2026-47783', 'CVE-2026-47784'],
      'not-reachable',
      'MEMCACHED_SASL_PWDB absent from the binary',
      'the same grep finds sasl_server_new',
    );
  });

  it('1.6.42 huge ASCII auth token: the image ignores it; with -Y (1.6) it is the bug', async () => {
    const trigger = 'set foo 0 0 2147483646\r\nasfd\r\n';
    const image = await asciiExchange(server.ip, trigger);
    expect(image.reply).not.toMatch(/STORED/);
    await stillServing();
    let control: string | undefined;
    if (!xenial) {
      const script =
        `printf '%s\\n' '${user.name}:${user.password}' > /run/memcached/auth && ` +
        'exec memcached -Y /run/memcached/auth -U 0 -p 11211';
      const withAuthFile = await startServer(target, bench.network.name, {
        entrypoint: ['sh', '-c', script],
        unreachableFromHost: true,
      });
      try {
        const pid = await pollUntil(() => memcachedPid(withAuthFile.container.getId()), {
          timeoutMs: 10_000,
          what: '-Y control runs',
        });
        await pollUntil(async () => ((await asciiExchange(withAuthFile.ip, 'version\r\n')).reply ? true : undefined), {
          timeoutMs: 10_000,
          what: 'the -Y control answers',
        });
        const c = await asciiExchange(withAuthFile.ip, trigger);
        const after = await memcachedPid(withAuthFile.container.getId());
        control = `-Y: ${JSON.stringify(c.reply.slice(0, 40))}, memcached ${after === pid ? 'still running' : 'gone'}`;
        // 1.6.18 has the unchecked size: the control's memcached dies (fixed, it answers CLIENT_ERROR).
        expect({ reply: c.reply, running: after === pid }).toEqual({ reply: '', running: false });
      } finally {
        await withAuthFile.stop();
      }
    }
    const imageSaid = `${JSON.stringify(image.reply.slice(0, 40))}, connection ${image.closed ? 'closed' : 'open'}`;
    record(['memcached-ascii-auth-huge-token'], 'not-reachable', imageSaid, control);
  });

  it("writes the run's OpenVEX document: every entry of the table with its probe result", () => {
    const vex = openVex({
      table,
      results,
      product: `pkg:oci/memcached-hardened@${encodeURIComponent(target.image)}`,
      documentId: `urn:memcached-hardened:vex:${inject('runId')}:${target.profile}:${target.credentials}`,
      author: 'memcached-hardened test suite',
      timestamp: new Date().toISOString(),
      runId: inject('runId'),
    });
    expect(vex.statements.map((s) => s.vulnerability.name)).toEqual(table.entries.map((e) => e.id));
    const unproven = vex.statements.filter((s) => s.status === 'under_investigation');
    expect(unproven.map((s) => s.vulnerability.name)).toEqual([]);
    const file = runVexPath(inject('runId'), target.profile, target.credentials);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(vex, null, 2)}\n`);
  });
});
