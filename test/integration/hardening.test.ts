import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { createIsolatedNetwork, docker } from '../helpers/docker.js';
import { execIn, runToExit, startServer, type RunningServer } from '../helpers/server.js';
import { loadProfile } from '../../src/profiles.js';
import { parseProcNet, procNetAddress, readableAddress, TCP_LISTEN } from '../helpers/proc-net.js';
import { firstUser, targetRows } from '../helpers/targets.js';

/** Uid and capability sets from /proc/PID/status text. */
function processIdentity(status: string): { uid: number; capEff: bigint; capPrm: bigint } {
  const field = (name: string) => /^\S+:\s*(\S+)/.exec(status.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[1];
  return { uid: Number(field('Uid')), capEff: BigInt(`0x${field('CapEff')}`), capPrm: BigInt(`0x${field('CapPrm')}`) };
}

/** Docker's embedded DNS resolver: its sockets live in every container on a user-defined network. */
const ENGINE_DNS = procNetAddress('127.0.0.11');

/** Every listening TCP socket and every UDP socket in a server's network namespace but the engine's DNS. */
async function openSockets(server: RunningServer): Promise<string[]> {
  const read = async (files: string[]) => parseProcNet((await execIn(server.container, ['cat', ...files])).output);
  const tcp = (await read(['/proc/net/tcp', '/proc/net/tcp6'])).filter((s) => s.state === TCP_LISTEN);
  const udp = await read(['/proc/net/udp', '/proc/net/udp6']);
  return [...tcp.map((s) => ({ ...s, proto: 'tcp' })), ...udp.map((s) => ({ ...s, proto: 'udp' }))]
    .filter((s) => s.localAddress !== ENGINE_DNS)
    .map((s) => `${s.proto} ${readableAddress(s.localAddress)}:${s.localPort}`).sort();
}

/** Where a secret shows up in a JSON-able thing (image config, history, container config), if anywhere. */
function leaks(haystack: unknown, secret: string): boolean {
  return JSON.stringify(haystack).includes(secret);
}

describe.each(targetRows())('%s', (_profile, target) => {
  const user = firstUser(target);
  let network: Awaited<ReturnType<typeof createIsolatedNetwork>>;
  let server: RunningServer;

  beforeAll(async () => {
    network = await createIsolatedNetwork('hardening');
    server = await startServer(target, network.name);
  });

  afterAll(async () => {
    await server?.stop();
    await network?.remove();
  });

  it("runs the profile's OS release and a memcached at least as new as the profile requires", async () => {
    const profile = loadProfile(target.profile);
    const expectedRelease = { 'ubuntu:16.04': 'VERSION_ID="16.04"', 'debian:12': 'VERSION_ID="12"' }[profile.base.image];
    expect((await execIn(server.container, ['cat', '/etc/os-release'])).output).toContain(expectedRelease ?? 'unknown base');
    const compare = (minimum: string) =>
      execIn(server.container, ['sh', '-c', `dpkg --compare-versions "$(dpkg-query -W -f='\${Version}' memcached)" ge "${minimum}" && echo NEW-ENOUGH || echo TOO-OLD`]);
    expect((await compare(profile.memcached.minVersion)).output).toContain('NEW-ENOUGH');
    // Control: the same comparison does reject a requirement the package cannot meet.
    expect((await compare('99:0')).output).toContain('TOO-OLD');
  });

  it('memcached (PID 1) is not root and holds no capabilities; a root exec shows the check can tell', async () => {
    const memcached = processIdentity((await execIn(server.container, ['cat', '/proc/1/status'])).output);
    expect((await execIn(server.container, ['cat', '/proc/1/cmdline'])).output).toMatch(/^memcached\0/);
    expect(memcached).toMatchObject({ capEff: 0n, capPrm: 0n });
    expect(memcached.uid).not.toBe(0);
    const root = processIdentity((await execIn(server.container, ['cat', '/proc/self/status'], 'root')).output);
    expect(root.uid).toBe(0);
    expect(root.capEff).not.toBe(0n);
  });

  it('nothing else listens: one TCP listener, memcached on its address; no UDP socket; a second listener is caught', async () => {
    expect(await openSockets(server)).toEqual([`tcp ${readableAddress(procNetAddress(server.ip))}:11211`]);
    // Control: a server with an extra, unauthenticated memcached beside the real one.
    const doubled = await startServer(target, network.name, {
      entrypoint: ['sh', '-c', 'memcached -U 0 -p 11212 -l 0.0.0.0 & exec memcached -U 0 -p 11211 -l 0.0.0.0'],
    });
    try {
      expect(await openSockets(doubled)).toEqual(['tcp 0.0.0.0:11211', 'tcp 0.0.0.0:11212']);
    } finally {
      await doubled.stop();
    }
  });

  it('the sasldb (baked and runtime copy) belongs to memcache with mode 0600', async () => {
    const files = ['/run/memcached/memcached-sasldb2', '/etc/sasl2/memcached.conf'];
    if (target.credentials === 'baked') files.unshift('/etc/sasl2/memcached-sasldb2');
    const { output } = await execIn(server.container, ['stat', '-c', '%n %U %a', ...files]);
    const expected = ['/run/memcached/memcached-sasldb2 memcache 600', '/etc/sasl2/memcached.conf root 644'];
    if (target.credentials === 'baked') expected.unshift('/etc/sasl2/memcached-sasldb2 memcache 600');
    // The conf line is the control: stat does report other owners and modes.
    expect(output.trim().split('\n')).toEqual(expected);
  });

  it('has no setuid/setgid files, where its base image has some', async () => {
    const find = ['find', '/', '-xdev', '-type', 'f', '-perm', '/6000'];
    expect((await execIn(server.container, find, 'root')).output.trim()).toBe('');
    const base = await runToExit(target.baseImage, network.name, { command: find, user: 'root' });
    expect(base.output.trim()).not.toBe('');
  });

  it('has no compilers, and no saslpasswd2 unless it builds its sasldb at start; the client image has them', async () => {
    const lookFor = ['sh', '-c', 'for tool in gcc cc c++ g++ clang make as ld saslpasswd2; do command -v "$tool"; done; true'];
    const expected = target.credentials === 'runtime' ? expect.stringMatching(/^\S*saslpasswd2$/) : '';
    expect((await execIn(server.container, lookFor)).output.trim()).toEqual(expected);
    expect((await runToExit(target.clientImage, network.name, { command: lookFor })).output).toContain('saslpasswd2');
  });

  it('the image config: non-root user, only 11211/tcp, a health check, OCI labels', async () => {
    const image = await docker.getImage(target.image).inspect();
    expect(image.Config.User).toBe('memcache');
    expect(Object.keys(image.Config.ExposedPorts ?? {})).toEqual(['11211/tcp']);
    expect(image.Config.Healthcheck?.Test).toEqual(['CMD', '/usr/local/bin/memcached-healthcheck']);
    expect(image.Config.Labels).toMatchObject({
      'org.opencontainers.image.title': 'memcached-hardened',
      'org.opencontainers.image.base.name': target.baseImage,
      'memcached-hardened.profile': target.profile,
    });
    for (const key of ['org.opencontainers.image.version', 'org.opencontainers.image.created', 'org.opencontainers.image.revision']) {
      expect(image.Config.Labels?.[key]).toBeTruthy();
    }
    expect((await execIn(server.container, ['/usr/local/bin/memcached-healthcheck'])).exitCode).toBe(0);
  });

  it('no password appears in history, image config, labels, logs or any argv; a planted one is found', async () => {
    const image = docker.getImage(target.image);
    const [history, config] = await Promise.all([image.history(), image.inspect()]);
    const container = await docker.getContainer(server.container.getId()).inspect();
    const argv = (await execIn(server.container, ['sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "'], 'root')).output;
    const logs = await server.logs();
    expect(argv).toContain('memcached');
    for (const u of target.users) {
      expect(leaks(history, u.password)).toBe(false);
      expect(leaks(config, u.password)).toBe(false);
      expect(leaks(container, u.password)).toBe(false);
      expect(argv).not.toContain(u.password);
      expect(logs).not.toContain(u.password);
    }
    // Control: the same scans do find a password that was put where they look.
    const planted = await startServer(target, network.name, { env: { PLANTED: user.password } });
    try {
      expect(leaks(await docker.getContainer(planted.container.getId()).inspect(), user.password)).toBe(true);
    } finally {
      await planted.stop();
    }
  });

  it('runs with --read-only (+ tmpfs), --cap-drop ALL and no-new-privileges', async () => {
    const locked = await startServer(target, network.name, {
      readOnly: true,
      tmpfs: { '/run/memcached': 'uid=11211,gid=11211,mode=0700' },
      capDrop: ['ALL'],
      securityOpt: ['no-new-privileges'],
    });
    try {
      expect(await tryAuthenticatedRoundTrip(locked.ip, user.name, user.password)).toEqual({ authStatus: Status.ok, roundTrip: true });
      const status = processIdentity((await execIn(locked.container, ['cat', '/proc/1/status'])).output);
      expect(status.capEff).toBe(0n);
      const write = await execIn(locked.container, ['sh', '-c', 'touch /etc/probe 2>&1; echo rc=$?']);
      expect(write.output).toMatch(/Read-only file system[\s\S]*rc=1/);
    } finally {
      await locked.stop();
    }
  });
});
