import { BinaryClient, encodeRequest, Op, Status } from '../lib/binary-client.js';
import { quantile } from './stats.js';

export interface LoadResult {
  readonly opsPerSec: number;
  readonly batchP50Ms: number;
  readonly batchP99Ms: number;
  readonly errors: number;
  /** Share of one core the generator used: near 1 means the generator, not the server, was the limit. */
  readonly generatorCpuShare: number;
}

/**
 * Persistent connections, each sending pipelined batches of small mixed operations (90% get, 10% set,
 * 100-byte values) for `seconds`. Authenticates first when credentials are given.
 */
export async function runLoad(
  ip: string,
  options: { connections: number; depth: number; seconds: number; user?: string; password?: string },
): Promise<LoadResult> {
  const clients = await Promise.all(
    Array.from({ length: options.connections }, async () => {
      const client = await BinaryClient.connect(ip);
      if (options.user !== undefined) {
        const auth = await client.authenticate(options.user, options.password ?? '');
        if (auth?.status !== Status.ok) throw new Error('load generator could not authenticate');
      }
      return client;
    }),
  );
  const value = 'v'.repeat(100);
  const setExtras = Buffer.alloc(8);
  // Seed the keys so gets hit.
  for (let k = 0; k < 100; k++) await clients[0]!.set(`bench-${k}`, value);
  const batches: number[] = [];
  let operations = 0;
  let errors = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  await Promise.all(
    clients.map(async (client, c) => {
      let n = c;
      while (performance.now() < deadline) {
        const frames: Buffer[] = [];
        for (let i = 0; i < options.depth; i++, n++) {
          const key = `bench-${n % 100}`;
          frames.push(n % 10 === 0 ? encodeRequest(Op.set, key, value, setExtras) : encodeRequest(Op.get, key));
        }
        const t0 = performance.now();
        client.write(Buffer.concat(frames));
        for (let i = 0; i < options.depth; i++) {
          const header = await client.read(24);
          if (header.length < 24) throw new Error('server closed a load connection');
          await client.read(header.readUInt32BE(8));
          if (header.readUInt16BE(6) !== Status.ok) errors++;
        }
        batches.push(performance.now() - t0);
        operations += options.depth;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  clients.forEach((c) => c.close());
  return {
    opsPerSec: operations / elapsed,
    batchP50Ms: quantile(batches, 0.5),
    batchP99Ms: quantile(batches, 0.99),
    errors,
    generatorCpuShare: (cpu.user + cpu.system) / 1e6 / elapsed,
  };
}

/** Connect + SASL PLAIN + first get, timed end to end, `count` times. */
export async function handshakeTimes(ip: string, user: string, password: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const client = await BinaryClient.connect(ip);
    const auth = await client.authenticate(user, password);
    const got = await client.get('bench-0');
    times.push(performance.now() - t0);
    client.close();
    if (auth?.status !== Status.ok || got === undefined) throw new Error('handshake failed');
  }
  return times;
}
