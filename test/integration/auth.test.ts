import memjs from 'memjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BinaryClient, Op, plainAuthMessage, Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { docker } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import {
  memcstat,
  memcstatShowsStats,
  podHostname,
  startServer,
  READY_TIMEOUT_MS,
  waitUntilServing,
  type RunningServer,
} from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

/** Binary commands that must be refused before authentication (get, set, stat, flush, delete, incr, noop). */
const COMMANDS = [
  { name: 'get', opcode: Op.get, key: 'key', value: '', extras: undefined },
  { name: 'set', opcode: Op.set, key: 'key', value: 'v', extras: Buffer.alloc(8) },
  { name: 'stat', opcode: Op.stat, key: '', value: '', extras: undefined },
  { name: 'flush', opcode: Op.flush, key: '', value: '', extras: undefined },
  { name: 'delete', opcode: 0x04, key: 'key', value: '', extras: undefined },
  { name: 'incr', opcode: 0x05, key: 'counter', value: '', extras: Buffer.alloc(20) },
  { name: 'noop', opcode: 0x0a, key: '', value: '', extras: undefined },
] as const;

/** A memjs set/get round trip; resolves to what went wrong, or 'ok'. */
async function memjsRoundTrip(ip: string, username: string, password: string): Promise<string> {
  const client = memjs.Client.create(`${ip}:11211`, {
    username,
    password,
    retries: 0,
    timeout: 2,
    conntimeout: 2,
    keepAlive: false,
  });
  try {
    const key = `memjs-${Math.random().toString(36).slice(2)}`;
    await client.set(key, 'value-from-memjs', { expires: 60 });
    const { value } = await client.get(key);
    return value?.toString() === 'value-from-memjs' ? 'ok' : `got ${String(value)}`;
  } catch (error) {
    return `error: ${(error as Error).message}`;
  } finally {
    client.close();
  }
}

describe.each(targetRows())('%s', (_profile, target) => {
  const user = firstUser(target);
  const bench = isolatedServers('auth');
  let server: RunningServer;
  let plain: RunningServer;

  beforeAll(async () => {
    server = await bench.start(target, { hostname: podHostname() });
    // Control: the same image with SASL off, to show the probes below do get data where auth is absent.
    plain = await bench.control(target, ['-U', '0', '-p', '11211', '-l', '0.0.0.0']);
  });

  it('round-trips set/get for every baked user with the right password', async () => {
    // The suite's own images carry three users; an image under test (MEMCACHED_IMAGE) may carry one.
    expect(target.users.length).toBeGreaterThan(0);
    for (const u of target.users) {
      expect(await tryAuthenticatedRoundTrip(server.ip, u.name, u.password)).toEqual({
        authStatus: Status.ok,
        roundTrip: true,
      });
    }
  });

  it.each([
    ['a wrong password', () => [user.name, `${user.password}x`]],
    ['an unknown user', () => ['mallory', user.password]],
    ['an empty password', () => [user.name, '']],
    ['user@otherrealm', () => [`${user.name}@otherrealm`, user.password]],
  ])('refuses %s (status 0x20 or closed) and serves no data', async (_case, credentials) => {
    const [name, password] = credentials() as [string, string];
    const attempt = await tryAuthenticatedRoundTrip(server.ip, name, password);
    expect([Status.authError, 'closed']).toContain(attempt.authStatus);
    expect(attempt.roundTrip).toBe(false);
  });

  it('serves no data without authentication, where the SASL-off control does', async () => {
    expect(await tryAuthenticatedRoundTrip(server.ip, undefined, '')).toEqual({
      authStatus: 'closed',
      roundTrip: false,
    });
    expect(await tryAuthenticatedRoundTrip(plain.ip, undefined, '')).toEqual({ authStatus: 'closed', roundTrip: true });
  });

  it(
    'refuses binary commands other than version and list-mechanisms before auth, ' + 'which the control serves',
    async () => {
      const client = await BinaryClient.connect(server.ip);
      try {
        expect((await client.request(Op.version))?.status).toBe(Status.ok);
        const mechanisms = await client.listMechanisms();
        expect(mechanisms?.status).toBe(Status.ok);
        expect(mechanisms?.value.toString()).toContain('PLAIN');
      } finally {
        client.close();
      }
      // One connection per command: after an auth error memcached may close the connection.
      const unauthenticated = async (ip: string, command: (typeof COMMANDS)[number]) => {
        const c = await BinaryClient.connect(ip);
        try {
          return (await c.request(command.opcode, command.key, command.value, command.extras))?.status ?? 'closed';
        } finally {
          c.close();
        }
      };
      const verdicts = async (ip: string) => {
        const result: Record<string, string> = {};
        for (const command of COMMANDS) {
          const status = await unauthenticated(ip, command);
          result[command.name] =
            status === Status.authError || status === 'closed'
              ? 'refused'
              : status === Status.ok || status === Status.keyNotFound
                ? 'served'
                : `status ${status}`;
        }
        return result;
      };
      expect(await verdicts(server.ip)).toEqual(Object.fromEntries(COMMANDS.map((c) => [c.name, 'refused'])));
      expect(await verdicts(plain.ip)).toEqual(Object.fromEntries(COMMANDS.map((c) => [c.name, 'served'])));
    },
  );

  it('refuses a SASL step that no start preceded and stays up (Cyrus SASL 2.1.26 crashed here)', async () => {
    const client = await BinaryClient.connect(server.ip);
    try {
      const step = await client.request(Op.saslStep, 'PLAIN', plainAuthMessage(user.name, user.password));
      expect(step === undefined || step.status === Status.authError).toBe(true);
    } finally {
      client.close();
    }
    // Control: the server is still there and still authenticates.
    expect(await tryAuthenticatedRoundTrip(server.ip, user.name, user.password)).toEqual({
      authStatus: Status.ok,
      roundTrip: true,
    });
  });

  it('gives the ASCII protocol no data, where the SASL-off control answers it', async () => {
    const ascii = async (ip: string) => {
      const client = await BinaryClient.connect(ip);
      client.write(Buffer.from('set ascii-key 0 60 5\r\nhello\r\nget ascii-key\r\nstats\r\n'));
      const reply = (await client.read(4096, 1500)).toString('latin1');
      client.close();
      return reply;
    };
    const hardened = await ascii(server.ip);
    expect(hardened).not.toMatch(/STORED|VALUE|STAT /);
    expect(await ascii(plain.ip)).toMatch(/STORED[\s\S]*VALUE ascii-key[\s\S]*STAT pid/);
  });

  it("the tutorial's memcstat shows stats with credentials and nothing without or with wrong ones", async () => {
    const right = await memcstat(target, bench.network.name, server.ip, user.name, user.password);
    const none = await memcstat(target, bench.network.name, server.ip);
    const wrong = await memcstat(target, bench.network.name, server.ip, user.name, 'not-the-password');
    const control = await memcstat(target, bench.network.name, plain.ip);
    expect(memcstatShowsStats(right.output, server.ip)).toBe(true);
    expect(memcstatShowsStats(none.output, server.ip)).toBe(false);
    expect(memcstatShowsStats(wrong.output, server.ip)).toBe(false);
    expect(memcstatShowsStats(control.output, plain.ip)).toBe(true);
  });

  it('memjs, a real Node client, works with the right password and fails with a wrong one', async () => {
    expect(await memjsRoundTrip(server.ip, user.name, user.password)).toBe('ok');
    expect(await memjsRoundTrip(server.ip, user.name, `${user.password}-wrong`)).not.toBe('ok');
  });

  it(
    'authenticates plain user names under a pod-like hostname, after a restart, ' + 'and under another hostname',
    async () => {
      const first = await startServer(target, bench.network.name, { hostname: podHostname() });
      try {
        expect((await tryAuthenticatedRoundTrip(first.ip, user.name, user.password)).roundTrip).toBe(true);
        // Straight through the engine: testcontainers' restart re-runs its log wait, which can match too early.
        const engineContainer = docker.getContainer(first.container.getId());
        await engineContainer.restart();
        const ip = (await engineContainer.inspect()).NetworkSettings.Networks[bench.network.name]?.IPAddress ?? '';
        await waitUntilServing(ip, READY_TIMEOUT_MS, () => first.logs());
        expect((await tryAuthenticatedRoundTrip(ip, user.name, user.password)).roundTrip).toBe(true);
      } finally {
        await first.stop();
      }
      const hostname = `memcached-${Math.random().toString(36).slice(2, 12)}.svc.cluster.local`;
      const second = await startServer(target, bench.network.name, { hostname });
      try {
        expect((await tryAuthenticatedRoundTrip(second.ip, user.name, user.password)).roundTrip).toBe(true);
        expect((await tryAuthenticatedRoundTrip(second.ip, user.name, 'wrong-password-123')).roundTrip).toBe(false);
      } finally {
        await second.stop();
      }
    },
  );
});
