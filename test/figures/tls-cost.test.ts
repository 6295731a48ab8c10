import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoad, type LoadResult } from '../../bench/load.js';
import { tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { TLS_SECRET_DIR } from '../../src/tls.js';
import { createIsolatedNetwork, docker, type IsolatedNetwork } from '../helpers/docker.js';
import { recordFigure } from '../helpers/figures.js';
import { pollUntil } from '../helpers/poll.js';
import { containerSpec } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';
import { issueWithReadmeCommands, mountableSecretDir, tlsRoundTrip } from '../helpers/tls.js';

/**
 * What TLS costs, as figures beside the plaintext image's in the same run: image size, start to the first
 * authenticated set/get, and throughput. Not part of the verification suite (src/verify.ts): it measures,
 * the TLS checks (tls-certificates, tls-protocol, tls-operations) prove.
 */

const SERVER_HOST = 10;
const ROUNDS = 2;
const SECONDS = 3;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * A plaintext listener on this host at ADDRESS:11211 that relays each connection to the server, as is or
 * over TLS: runLoad (bench/load.ts) then drives both images through the same relay, so the ratio is TLS's.
 */
async function relay(upstream: () => Socket): Promise<{ address: string; close: () => Promise<void> }> {
  const address = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
  const server = createServer((client) => {
    const far = upstream();
    for (const socket of [client, far]) {
      socket.setNoDelay(true);
      socket.on('error', () => [client, far].forEach((s) => s.destroy()));
      socket.on('close', () => [client, far].forEach((s) => s.destroy()));
    }
    client.pipe(far).pipe(client);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(11211, address, resolve));
  return { address, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe.each(targetRows())('%s', (profile, target) => {
  const user = firstUser(target);
  const scratch = mkdtempSync(join(tmpdir(), 'mh-tls-cost-'));
  let network: IsolatedNetwork;
  let secret: string;
  let tls: ConnectionOptions;
  const started: string[] = [];

  /** Starts a container of the image at the server address and times it to its first authenticated set/get. */
  const timedStart = async (image: 'plain' | 'tls'): Promise<number> => {
    const address = network.fixedAddress(SERVER_HOST);
    const spec = containerSpec({ ...target, image: image === 'tls' ? target.tlsImage! : target.image }, network.name, {
      ipv4Address: address,
      binds: image === 'tls' ? [`${secret}:${TLS_SECRET_DIR}:ro`] : [],
    });
    const container = await docker.createContainer(spec);
    started.push(container.id);
    const t0 = performance.now();
    await container.start();
    await pollUntil(
      async () =>
        (image === 'tls'
          ? await tlsRoundTrip(address, tls, user)
          : await tryAuthenticatedRoundTrip(address, user.name, user.password)
        ).roundTrip
          ? true
          : undefined,
      { timeoutMs: 20_000, intervalMs: 10, what: `the ${image} server answers an authenticated set/get` },
    );
    return performance.now() - t0;
  };
  const remove = async (id: string) =>
    docker
      .getContainer(id)
      .remove({ force: true })
      .catch(() => undefined);

  beforeAll(async () => {
    if (!target.tlsImage)
      throw new Error(`no TLS image for ${target.name}: the global setup builds one for integration runs`);
    network = await createIsolatedNetwork('tls-cost', { fixedAddresses: true });
    const issued = issueWithReadmeCommands(join(scratch, 'ca'), `IP:${network.fixedAddress(SERVER_HOST)}`);
    secret = mountableSecretDir(join(scratch, 'secret'), { 'tls.crt': issued.certificate, 'tls.key': issued.key });
    tls = { ca: readFileSync(issued.caCertificate) };
  });

  afterAll(async () => {
    await Promise.all(started.map(remove));
    await network?.remove();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('costs: image size, start to the first authenticated set/get, and throughput, TLS against plaintext', async () => {
    const megabytes = async (image: string) => Math.round((await docker.getImage(image).inspect()).Size / 1e5) / 10;
    recordFigure(profile, 'image size, plaintext', await megabytes(target.image), 'MB');
    recordFigure(profile, 'image size, --tls', await megabytes(target.tlsImage!), 'MB');
    const starts: Record<'plain' | 'tls', number[]> = { plain: [], tls: [] };
    const loads: Record<'plain' | 'tls', LoadResult[]> = { plain: [], tls: [] };
    // Alternating, one server at a time at the same address, so both see the same machine.
    for (let round = 0; round < ROUNDS; round++) {
      for (const image of ['plain', 'tls'] as const) {
        starts[image].push(await timedStart(image));
        const server = network.fixedAddress(SERVER_HOST);
        const through = await relay(() =>
          image === 'tls' ? connectTls({ ...tls, host: server, port: 11211 }) : connect(11211, server),
        );
        try {
          loads[image].push(
            await runLoad(through.address, {
              connections: 8,
              depth: 16,
              seconds: SECONDS,
              user: user.name,
              password: user.password,
            }),
          );
        } finally {
          await through.close();
          await remove(started.pop()!);
        }
      }
    }
    for (const image of ['plain', 'tls'] as const) {
      expect(loads[image].map((l) => l.errors)).toEqual(loads[image].map(() => 0));
      recordFigure(profile, `start to first authenticated set/get, ${image}`, Math.round(median(starts[image])), 'ms');
      recordFigure(
        profile,
        `throughput through a local relay, ${image}`,
        Math.round(median(loads[image].map((l) => l.opsPerSec))),
        'ops/s',
      );
    }
    const ratio = median(loads.tls.map((l) => l.opsPerSec)) / median(loads.plain.map((l) => l.opsPerSec));
    recordFigure(profile, 'throughput TLS / plaintext', Math.round(ratio * 1000) / 1000, 'x');
    expect(ratio).toBeGreaterThan(0);
  });
});
