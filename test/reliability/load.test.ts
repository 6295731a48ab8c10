import { pollUntil } from '../helpers/poll.js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryClient, Op, plainAuthMessage, Status } from '../../lib/binary-client.js';
import { createIsolatedNetwork } from '../helpers/docker.js';
import { recordFigure } from '../helpers/figures.js';
import { scaled } from '../helpers/scale.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

/** Connects and authenticates; undefined if the server refused or closed. */
async function authenticatedClient(
  ip: string,
  name: string,
  password: string,
  timeoutMs = 5000,
): Promise<BinaryClient | undefined> {
  let client: BinaryClient;
  try {
    client = await BinaryClient.connect(ip, 11211, timeoutMs);
  } catch {
    return undefined;
  }
  const auth = await client
    .request(Op.saslAuth, 'PLAIN', plainAuthMessage(name, password), undefined, timeoutMs)
    .catch(() => undefined);
  if (auth?.status === Status.ok) return client;
  client.close();
  return undefined;
}

describe.each(targetRows())('%s', (profile, target) => {
  const user = firstUser(target);
  let network: Awaited<ReturnType<typeof createIsolatedNetwork>>;
  const servers: RunningServer[] = [];

  beforeAll(async () => {
    network = await createIsolatedNetwork('load');
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await network?.remove();
  });

  it('serves hundreds of concurrent authenticated connections doing set/get with zero errors', async () => {
    // All from this host's one address: the per-client cap (an eighth of -c) is lifted to -c.
    const server = await startServer(target, network.name, { env: { MEMCACHED_MAX_CONNECTIONS_PER_CLIENT: '1024' } });
    servers.push(server);
    const connections = scaled(500, 900);
    const rounds = scaled(20, 50);
    const started = Date.now();
    const clients: BinaryClient[] = [];
    for (let i = 0; i < connections; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, connections - i) }, () =>
          authenticatedClient(server.ip, user.name, user.password),
        ),
      );
      batch.forEach((c) => c && clients.push(c));
    }
    expect(clients).toHaveLength(connections);
    let errors = 0;
    let operations = 0;
    await Promise.all(
      clients.map(async (client, index) => {
        for (let round = 0; round < rounds; round++) {
          const key = `load-${index}-${round % 5}`;
          const value = `${index}:${round}:${randomBytes(8).toString('hex')}`;
          const set = await client.set(key, value);
          const got = await client.get(key);
          operations += 2;
          if (set?.status !== Status.ok || got?.status !== Status.ok || got.value.toString() !== value) errors++;
        }
      }),
    );
    clients.forEach((c) => c.close());
    const seconds = (Date.now() - started) / 1000;
    expect(errors).toBe(0);
    recordFigure(profile, 'concurrent authenticated connections', connections, 'connections');
    recordFigure(profile, 'set/get operations under load (0 errors)', operations, 'ops');
    recordFigure(profile, 'load phase throughput', Math.round(operations / seconds), 'ops/s');
  });

  it('enforces the connection limit gracefully: new connections refused, existing ones keep working', async () => {
    // memcached counts its own descriptors against -c, so fewer clients fit than the number given. Over
    // the limit 1.4.25 stops accepting (connects time out) and 1.6 closes new connections at once;
    // either way the connections already in keep being served.
    const limit = 64;
    // memcached's own limit, so one address may use all of it (test/reliability/connection-cap.test.ts covers the cap).
    const server = await startServer(target, network.name, {
      env: { MEMCACHED_MAX_CONNECTIONS: String(limit), MEMCACHED_MAX_CONNECTIONS_PER_CLIENT: String(limit) },
    });
    servers.push(server);
    const held: BinaryClient[] = [];
    let refused = 0;
    for (let attempt = 0; attempt < limit + 30 && refused < 5; attempt++) {
      const client = await authenticatedClient(server.ip, user.name, user.password, 1000);
      if (client) held.push(client);
      else refused++;
    }
    expect(held.length).toBeGreaterThanOrEqual(10);
    expect(held.length).toBeLessThanOrEqual(limit);
    expect(refused).toBe(5);
    const working = await Promise.all(
      held.map(async (c, i) => (await c.set(`held-${i}`, 'still here'))?.status === Status.ok),
    );
    expect(working.filter((ok) => !ok)).toHaveLength(0);
    // Below the limit again, a newcomer is served.
    held.splice(0, 5).forEach((c) => c.close());
    const newcomer = await pollUntil(() => authenticatedClient(server.ip, user.name, user.password, 1000), {
      timeoutMs: 5_000,
      intervalMs: 250,
      what: 'a newcomer is served below the limit again',
    }).catch(() => undefined);
    expect(newcomer).toBeDefined();
    newcomer?.close();
    held.forEach((c) => c.close());
    recordFigure(profile, `authenticated connections held at -c ${limit}`, held.length + 5, 'connections');
    recordFigure(profile, 'connections refused over the limit (then stopped trying)', refused, 'connections');
  });

  it('holds the memory limit by evicting', async () => {
    const megabytes = 8;
    const server = await startServer(target, network.name, { env: { MEMCACHED_MEMORY_MB: String(megabytes) } });
    servers.push(server);
    const client = await authenticatedClient(server.ip, user.name, user.password);
    if (!client) throw new Error('could not authenticate');
    const value = randomBytes(5000).toString('base64');
    const items = scaled(4000, 8000);
    for (let i = 0; i < items; i++) {
      expect((await client.set(`fill-${i}`, value))?.status).toBe(Status.ok);
    }
    const stats = await client.stats();
    client.close();
    const limitBytes = Number(stats.get('limit_maxbytes'));
    expect(limitBytes).toBe(megabytes * 1024 * 1024);
    expect(Number(stats.get('bytes'))).toBeLessThanOrEqual(limitBytes);
    expect(Number(stats.get('evictions'))).toBeGreaterThan(0);
    recordFigure(profile, `bytes written into a ${megabytes} MB cache`, items * value.length, 'bytes');
    recordFigure(profile, 'evictions (memory limit held)', Number(stats.get('evictions')), 'items');
  });
});
