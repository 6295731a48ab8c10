import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/profiles.js';
import { isolatedServers, type ClientHost } from '../helpers/fixture.js';
import {
  allowlistCapabilities,
  execIn,
  memcstatIn,
  memcstatShowsStats,
  type RunningServer,
  runToExit,
  startServer,
  tcpProbe,
} from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

// What --network host would be, without ever touching the host: the server joins the network namespace
// of a container this test created (`--network container:ID`), where the test is free to add rules.
const FOREIGN_RULE = ['-p', 'tcp', '--dport', '2222', '-j', 'ACCEPT'];

describe.each(targetRows())('%s', (_profile, target) => {
  const user = firstUser(target);
  const bench = isolatedServers('shared-netns');
  let scratch: string;
  let allowed: ClientHost;
  let other: ClientHost;

  /** A container that only holds a network namespace; root with NET_ADMIN, so the test can edit its firewall. */
  const namespaceOwner = () =>
    bench.start(target, {
      entrypoint: ['sleep', 'infinity'],
      user: 'root',
      capAdd: allowlistCapabilities(target),
      unreachableFromHost: true,
    });
  const inNamespaceOf = (owner: RunningServer) => `container:${owner.container.getId()}`;
  const firewall = async (owner: RunningServer) => ({
    ipv4: (await execIn(owner.container, ['iptables', '-w', '-S'], 'root')).output,
    ipv6: (await execIn(owner.container, ['ip6tables', '-w', '-S'], 'root')).output,
  });
  const memcstatFrom = (client: typeof allowed, ip: string) => memcstatIn(client.container, ip, user);
  const allowlisted = (env: Record<string, string> = {}) => ({
    capAdd: allowlistCapabilities(target),
    env: { MEMCACHED_ALLOW_FROM: `${allowed.ip}/32`, ...env },
  });

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'mh-shared-namespace-'));
    bench.keep({ remove: () => rmSync(scratch, { recursive: true, force: true }) });
    [allowed, other] = await Promise.all([bench.clientHost(target), bench.clientHost(target)]);
  });

  it(
    'refuses the allowlist where the namespace holds a rule it did not write and leaves it as it was; ' +
      'applies it where the namespace is clean',
    async () => {
      const owner = await namespaceOwner();
      expect((await execIn(owner.container, ['iptables', '-w', '-I', 'INPUT', ...FOREIGN_RULE], 'root')).exitCode).toBe(
        0,
      );
      const before = await firewall(owner);
      const refused = await runToExit(target, inNamespaceOf(owner), allowlisted());
      expect(refused.exitCode).toBe(78);
      const lines = refused.output.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('this network namespace has firewall rules this image did not write');
      expect(lines[0]).toContain('-A INPUT -p tcp -m tcp --dport 2222 -j ACCEPT');
      expect(await firewall(owner)).toEqual(before);
      expect(await tcpProbe(allowed.container, owner.ip)).toBe('failed');

      // Control: the same namespace without the foreign rule takes the allowlist, which then works there.
      expect((await execIn(owner.container, ['iptables', '-w', '-D', 'INPUT', ...FOREIGN_RULE], 'root')).exitCode).toBe(
        0,
      );
      const server = await startServer(target, inNamespaceOf(owner), { ...allowlisted(), unreachableFromHost: true });
      expect(memcstatShowsStats(await memcstatFrom(allowed, owner.ip), owner.ip)).toBe(true);
      expect(await tcpProbe(other.container, owner.ip)).toBe('failed');
      await server.stop();
      // Its restart finds only its own chain, so it starts again (with the rules replaced, not doubled).
      const restarted = await startServer(target, inNamespaceOf(owner), {
        ...allowlisted(),
        unreachableFromHost: true,
      });
      expect(memcstatShowsStats(await memcstatFrom(allowed, owner.ip), owner.ip)).toBe(true);
      expect((await firewall(owner)).ipv4.match(/-j MEMCACHED-ALLOW$/gm)).toHaveLength(2);
      await restarted.stop();
    },
  );

  it('when a later rule fails, removes every rule already added (IPv4 and IPv6) and starts no listener', async () => {
    const owner = await namespaceOwner();
    const before = await firewall(owner);
    // An ip6tables that refuses the last rule (the DROP) and runs the real one otherwise: the IPv6 half
    // fails after all the IPv4 rules and part of the IPv6 ones are in.
    const realIp6tables = join(dirname(loadProfile(target.profile).iptablesBinary), 'ip6tables');
    const failing = join(scratch, 'ip6tables');
    writeFileSync(
      failing,
      '#!/bin/sh\ncase "$*" in *DROP*) echo "ip6tables: injected failure" >&2; exit 1 ;; esac\n' +
        `exec ${realIp6tables} "$@"\n`,
    );
    chmodSync(failing, 0o755);
    const env = { MEMCACHED_ALLOW_FROM: `${allowed.ip}/32,fd00::/8` };
    const refused = await runToExit(target, inNamespaceOf(owner), {
      ...allowlisted(env),
      binds: [`${failing}:/usr/local/sbin/ip6tables:ro`],
    });
    expect(refused.exitCode).toBe(78);
    expect(refused.output.trim().split('\n')).toEqual([
      expect.stringMatching(
        /MEMCACHED_ALLOW_FROM: the firewall refused a rule, so none is left in place.*injected failure$/,
      ),
    ]);
    expect(await firewall(owner)).toEqual(before);
    expect(await tcpProbe(allowed.container, owner.ip)).toBe('failed');

    // Control: without the injected failure both families' rules go in, where the check above looked.
    const server = await startServer(target, inNamespaceOf(owner), { ...allowlisted(env), unreachableFromHost: true });
    const applied = await firewall(owner);
    expect(applied.ipv4).toMatch(/^-A MEMCACHED-ALLOW -j DROP$/m);
    expect(applied.ipv6).toMatch(/^-A MEMCACHED-ALLOW -s fd00::\/8 -j ACCEPT$/m);
    expect(memcstatShowsStats(await memcstatFrom(allowed, owner.ip), owner.ip)).toBe(true);
    await server.stop();
  });
});
