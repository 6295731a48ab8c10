import { beforeAll, describe, expect, it } from 'vitest';
import { Status } from '../../lib/binary-client.js';
import { docker } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import { execIn, lockedDownPidsLimit, runToExit, type RunningServer } from '../helpers/server.js';
import { loadProfile } from '../../src/profiles.js';
import { pollUntil } from '../helpers/poll.js';
import {
  buildSurfaceVariant,
  issueTlsSecret,
  startSurface,
  surfaceRoundTrip,
  surfaceRows,
  surfaceTarget,
  type TlsSecret,
} from '../helpers/surface.js';
import { firstUser } from '../helpers/targets.js';
import { edit, ENTRYPOINT, type Weakening } from '../helpers/weakenings.js';

/** One process of a container: its command line, uid and capability sets (from /proc/PID/status). */
interface ProcessIdentity {
  readonly command: string;
  readonly uid: number;
  readonly capEff: bigint;
  readonly capPrm: bigint;
}

/** Every process of the server's container, as `user` (the image's own by default) reads them, PID order. */
async function processes(server: RunningServer, user?: string): Promise<ProcessIdentity[]> {
  const script =
    'for d in $(ls -d /proc/[0-9]* | sort -t/ -k3 -n); ' +
    'do echo "=== $(tr "\\0" " " < $d/cmdline)"; cat $d/status; done 2>/dev/null';
  const { output } = await execIn(server.container, ['sh', '-c', script], user);
  return output
    .split(/^=== /m)
    .slice(1)
    .map((block) => {
      const [command = '', ...status] = block.split('\n');
      const field = (name: string) => /^\S+:\s*(\S+)/.exec(status.find((l) => l.startsWith(`${name}:`)) ?? '')?.[1];
      return {
        command: command.trim(),
        uid: Number(field('Uid')),
        capEff: BigInt(`0x${field('CapEff') ?? 0}`),
        capPrm: BigInt(`0x${field('CapPrm') ?? 0}`),
      };
    })
    .filter((p) => p.command !== '');
}

/**
 * How locked down a server runs, by what its processes meet: PID 1's bounding set and no_new_privs, which of
 * its run folder and /tmp a write reaches (as the image's user), and the container's pids limit.
 */
async function lockdown(server: RunningServer): Promise<{
  anyCapability: boolean;
  noNewPrivileges: boolean;
  writable: string[];
  pids: string;
}> {
  const script =
    'grep -E "^(CapBnd|NoNewPrivs):" /proc/1/status; ' +
    'for dir in /run/memcached /tmp; do touch "$dir/lockdown-probe" 2>/dev/null && echo "writable $dir"; done; ' +
    'echo "pids $(cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null)"';
  const { output } = await execIn(server.container, ['sh', '-c', script]);
  const field = (name: string) => new RegExp(`^${name}:?\\s+(\\S+)$`, 'm').exec(output)?.[1];
  const bounding = field('CapBnd');
  const noNewPrivileges = field('NoNewPrivs');
  const pids = field('pids');
  if (bounding === undefined || noNewPrivileges === undefined || pids === undefined) {
    throw new Error(`the lockdown probe read no bounding set, no_new_privs or pids limit: ${output}`);
  }
  return {
    anyCapability: BigInt(`0x${bounding}`) !== 0n,
    noNewPrivileges: noNewPrivileges === '1',
    writable: [...output.matchAll(/^writable (\S+)$/gm)].map((m) => m[1]!),
    pids,
  };
}

/** The processes running as root or holding any capability. */
function privileged(all: readonly ProcessIdentity[]): string[] {
  return all.filter((p) => p.uid === 0 || p.capEff !== 0n || p.capPrm !== 0n).map((p) => `${p.command} (uid ${p.uid})`);
}

/** The places a secret must never reach, each as text: image history and config, container config, argv, logs. */
async function secretPlaces(server: RunningServer, image: string): Promise<Record<string, string>> {
  const [history, config, container, argv, logs] = await Promise.all([
    docker.getImage(image).history(),
    docker.getImage(image).inspect(),
    docker.getContainer(server.container.getId()).inspect(),
    execIn(server.container, ['sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "'], 'root'),
    server.logs(),
  ]);
  if (!argv.output.includes('memcached')) throw new Error(`the argv scan saw no memcached: ${argv.output}`);
  return {
    history: JSON.stringify(history),
    'image config': JSON.stringify(config),
    'container config': JSON.stringify(container),
    argv: argv.output,
    logs,
  };
}

/** The places where a secret shows up. */
function sightings(places: Record<string, string>, secret: string): string[] {
  return Object.entries(places)
    .filter(([, text]) => text.includes(secret))
    .map(([place]) => place);
}

describe.each(surfaceRows())('%s', (_name, target, surface) => {
  const user = firstUser(target);
  const image = surfaceTarget(target, surface).image;
  const bench = isolatedServers('hardening');
  let server: RunningServer;
  let secret: TlsSecret | undefined;

  beforeAll(async () => {
    secret = surface === 'tls' ? bench.keep(issueTlsSecret()) : undefined;
    // The engine's defaults, not the suite's locked-down run: the image's own privilege drop is judged where
    // nothing else takes capabilities away (under --cap-drop ALL every process would hold none, even as root).
    server = bench.keep(await startSurface(target, surface, bench.network.name, { secret, lockedDown: false }));
  });

  it("runs the profile's OS release and a memcached at least as new as the profile requires", async () => {
    const profile = loadProfile(target.profile);
    const expectedRelease = { 'ubuntu:16.04': 'VERSION_ID="16.04"', 'debian:12': 'VERSION_ID="12"' }[
      profile.base.image
    ];
    expect((await execIn(server.container, ['cat', '/etc/os-release'])).output).toContain(
      expectedRelease ?? 'unknown base',
    );
    const compare = (minimum: string) =>
      execIn(server.container, [
        'sh',
        '-c',
        `dpkg --compare-versions "$(dpkg-query -W -f='\${Version}' memcached)" ge "${minimum}" ` +
          '&& echo NEW-ENOUGH || echo TOO-OLD',
      ]);
    expect((await compare(profile.memcached.minVersion)).output).toContain('NEW-ENOUGH');
    // Control: the same comparison does reject a requirement the package cannot meet.
    expect((await compare('99:0')).output).toContain('TOO-OLD');
  });

  it(
    'memcached and every other process are not root and hold no capabilities; ' +
      'a root exec shows the check can tell',
    async () => {
      const all = await processes(server);
      const commands = all.map((p) => p.command.split(' ')[0]?.split('/').pop());
      expect(commands).toContain('memcached');
      // Without TLS, or with memcached's own, memcached is PID 1 (signals reach it); a TLS front runs beside it.
      if (surface === 'plain' || loadProfile(target.profile).tls.via === 'memcached')
        expect(all[0]?.command).toMatch(/^memcached /);
      expect(privileged(all)).toEqual([]);
      // Control: the same inventory read by a root exec lists that exec's own processes.
      expect(privileged(await processes(server, 'root')).length).toBeGreaterThan(0);
    },
  );

  it('the sasldb (baked and runtime copy) belongs to memcache with mode 0600', async () => {
    const files = ['/run/memcached/memcached-sasldb2', '/etc/sasl2/memcached.conf'];
    if (target.credentials === 'baked') files.unshift('/etc/sasl2/memcached-sasldb2');
    const { output } = await execIn(server.container, ['stat', '-c', '%n %U %a', ...files]);
    const expected = ['/run/memcached/memcached-sasldb2 memcache 600', '/etc/sasl2/memcached.conf root 644'];
    if (target.credentials === 'baked') expected.unshift('/etc/sasl2/memcached-sasldb2 memcache 600');
    // The conf line is the control: stat does report other owners and modes.
    expect(output.trim().split('\n')).toEqual(expected);
  });

  it(
    'has no compilers, and no saslpasswd2 unless it builds its sasldb at start; ' + 'the client image has them',
    async () => {
      const lookFor = [
        'sh',
        '-c',
        'for tool in gcc cc c++ g++ clang make as ld saslpasswd2; do command -v "$tool"; done; true',
      ];
      const expected = target.credentials === 'runtime' ? expect.stringMatching(/^\S*saslpasswd2$/) : '';
      expect((await execIn(server.container, lookFor)).output.trim()).toEqual(expected);
      const onClient = await runToExit(target.clientImage, bench.network.name, { command: lookFor });
      expect(onClient.output).toContain('saslpasswd2');
    },
  );

  it('the image config: non-root user, only 11211/tcp, a health check, OCI labels', async () => {
    const config = await docker.getImage(image).inspect();
    expect(config.Config.User).toBe('memcache');
    expect(Object.keys(config.Config.ExposedPorts ?? {})).toEqual(['11211/tcp']);
    expect(config.Config.Healthcheck?.Test).toEqual(['CMD', '/usr/local/bin/memcached-healthcheck']);
    expect(config.Config.Labels).toMatchObject({
      'org.opencontainers.image.title': 'memcached-hardened',
      'org.opencontainers.image.base.name': target.baseImage,
      'memcached-hardened.profile': target.profile,
    });
    for (const key of [
      'org.opencontainers.image.version',
      'org.opencontainers.image.created',
      'org.opencontainers.image.revision',
    ]) {
      expect(config.Config.Labels?.[key]).toBeTruthy();
    }
    expect((await execIn(server.container, ['/usr/local/bin/memcached-healthcheck'])).exitCode).toBe(0);
  });

  it(
    'no password appears in history, image config, labels, logs or any argv; ' + 'one planted in each is found',
    async () => {
      const places = await secretPlaces(server, image);
      for (const u of target.users)
        expect({ user: u.name, seen: sightings(places, u.password) }).toEqual({ user: u.name, seen: [] });
      // Control: the same scans over a server with the password planted in each place: a label (history and
      // config), the container's environment, a process's argv and the entrypoint's log.
      const plant: Weakening = {
        name: 'planted-secret',
        weakness: 'a password in a label, the environment, an argv and the log',
        caughtBy: { file: 'hardening', test: 'no password appears in history' },
        lines: () => [
          `LABEL org.example.planted="${user.password}"`,
          ...edit(
            `sed -i 's/^set -eu$/&\\necho "planted: $PLANTED" >\\&2/' ${ENTRYPOINT}`,
            `grep -q 'planted: ' ${ENTRYPOINT}`,
          ),
        ],
      };
      const variant = await buildSurfaceVariant(target, surface, plant);
      const network = bench.network.name;
      const planted = await startSurface(variant.target, surface, network, { secret, env: { PLANTED: user.password } });
      try {
        const exec = await docker
          .getContainer(planted.container.getId())
          .exec({ Cmd: ['tail', '-f', '/dev/null', user.password] });
        await exec.start({ Detach: true });
        const seen = await pollUntil(
          async () => {
            const found = sightings(await secretPlaces(planted, variant.target.image), user.password);
            return found.includes('argv') ? found : undefined;
          },
          { timeoutMs: 5000, what: 'the planted argv shows up' },
        );
        expect(seen.sort()).toEqual(['argv', 'container config', 'history', 'image config', 'logs']);
      } finally {
        await planted.stop();
        await variant.remove();
      }
    },
  );

  it(
    "runs as every server of the suite runs, docs/image.md's locked-down run: read-only root, no capabilities, " +
      'no privilege gain, a pids limit; a server on the engine defaults shows each check can tell',
    async () => {
      const expectedPids = String(lockedDownPidsLimit(surfaceTarget(target, surface)));
      const locked = await startSurface(target, surface, bench.network.name, { secret });
      try {
        expect(await surfaceRoundTrip(locked, surface, user, secret)).toEqual({
          authStatus: Status.ok,
          roundTrip: true,
        });
        expect(await lockdown(locked)).toEqual({
          anyCapability: false,
          noNewPrivileges: true,
          writable: ['/run/memcached'],
          pids: expectedPids,
        });
      } finally {
        await locked.stop();
      }
      // Control: this file's server, on the engine's defaults.
      expect(await lockdown(server)).toEqual({
        anyCapability: true,
        noNewPrivileges: false,
        writable: ['/run/memcached', '/tmp'],
        pids: 'max',
      });
    },
  );
});
