import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BinaryClient,
  encodeRequest,
  Op,
  plainAuthMessage,
  Status,
  tryAuthenticatedRoundTrip,
} from '../../lib/binary-client.js';
import { createIsolatedNetwork, docker } from '../helpers/docker.js';
import { recordFigure } from '../helpers/figures.js';
import { scaled } from '../helpers/scale.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';

/** A binary header with fields that may lie about what follows. */
function header(fields: {
  magic?: number;
  opcode?: number;
  keyLength?: number;
  extrasLength?: number;
  bodyLength?: number;
}): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt8(fields.magic ?? 0x80, 0);
  h.writeUInt8(fields.opcode ?? Op.get, 1);
  h.writeUInt16BE(fields.keyLength ?? 0, 2);
  h.writeUInt8(fields.extrasLength ?? 0, 4);
  h.writeUInt32BE(fields.bodyLength ?? 0, 8);
  return h;
}

/** The kinds of malformed frame, each a generator of one frame. */
const MALFORMED: Record<string, () => Buffer> = {
  'bad magic': () => Buffer.concat([header({ magic: randomBytes(1)[0]! & 0x7f }), randomBytes(8)]),
  'key longer than body': () => Buffer.concat([header({ keyLength: 200, bodyLength: 10 }), randomBytes(10)]),
  'extras longer than body': () => Buffer.concat([header({ extrasLength: 40, bodyLength: 4 }), randomBytes(4)]),
  'huge announced body': () => header({ opcode: Op.set, extrasLength: 8, keyLength: 3, bodyLength: 0xffffffff }),
  'truncated body': () =>
    Buffer.concat([header({ opcode: Op.set, extrasLength: 8, keyLength: 3, bodyLength: 1000 }), randomBytes(50)]),
  'SASL step without start': () => encodeRequest(Op.saslStep, 'PLAIN', plainAuthMessage('sammy', 'x'.repeat(20))),
  'unknown mechanism': () => encodeRequest(Op.saslAuth, 'CRAM-MD5', randomBytes(32)),
  'empty mechanism': () => encodeRequest(Op.saslAuth, '', 'abc'),
  'PLAIN without NULs': () => encodeRequest(Op.saslAuth, 'PLAIN', 'no-separators-here'),
  'oversized SASL payload': () => encodeRequest(Op.saslAuth, 'PLAIN', randomBytes(64 * 1024)),
  'unknown opcode': () => encodeRequest(0xee, 'k', 'v'),
  'random bytes': () => randomBytes(1 + (randomBytes(1)[0]! % 200)),
};

describe.each(targetRows())('%s', (profile, target) => {
  const user = firstUser(target);
  let network: Awaited<ReturnType<typeof createIsolatedNetwork>>;
  let server: RunningServer;

  const restartCount = async () => (await docker.getContainer(server.container.getId()).inspect()).RestartCount;
  const running = async () => (await docker.getContainer(server.container.getId()).inspect()).State.Running;

  beforeAll(async () => {
    network = await createIsolatedNetwork('abuse');
    server = await startServer(target, network.name);
  });

  afterAll(async () => {
    await server?.stop();
    await network?.remove();
  });

  it('survives thousands of malformed binary frames with auth still enforced and working', async () => {
    const connections = scaled(300, 1500);
    const framesPerConnection = 10;
    const kinds = Object.values(MALFORMED);
    let frames = 0;
    const started = Date.now();
    for (let batch = 0; batch < connections; batch += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, connections - batch) }, async (_, i) => {
          const client = await BinaryClient.connect(server.ip);
          for (let f = 0; f < framesPerConnection && !client.isClosed; f++) {
            client.write(kinds[(batch + i + f) % kinds.length]!());
            frames++;
          }
          await client.read(1, 20);
          client.close();
        }),
      );
    }
    expect(frames).toBeGreaterThanOrEqual(2000);
    expect(await running()).toBe(true);
    expect(await restartCount()).toBe(0);
    expect(await tryAuthenticatedRoundTrip(server.ip, user.name, user.password)).toEqual({
      authStatus: Status.ok,
      roundTrip: true,
    });
    expect((await tryAuthenticatedRoundTrip(server.ip, user.name, 'wrong-password-after-abuse')).roundTrip).toBe(false);
    expect((await tryAuthenticatedRoundTrip(server.ip, undefined, '')).roundTrip).toBe(false);
    recordFigure(profile, 'malformed frames sent (server up, restarts 0)', frames, 'frames');
    recordFigure(profile, 'malformed-frame connections', connections, 'connections');
    recordFigure(profile, 'malformed-frame phase duration', Date.now() - started, 'ms');
  });

  it('an auth flood: the server stays up, a legitimate client is served, failures are logged', async () => {
    const failures = scaled(300, 2000);
    const logBefore = await server.logs();
    const started = Date.now();
    const legit = await BinaryClient.connect(server.ip);
    expect((await legit.authenticate(user.name, user.password))?.status).toBe(Status.ok);
    const attacker = await BinaryClient.connect(server.ip);
    let refused = 0;
    let attackerConnection = attacker;
    for (let i = 0; i < failures; i++) {
      let response = await attackerConnection.authenticate(user.name, `guess-${i}-${'x'.repeat(8)}`);
      if (!response) {
        attackerConnection.close();
        attackerConnection = await BinaryClient.connect(server.ip);
        response = await attackerConnection.authenticate(user.name, `guess-${i}-${'x'.repeat(8)}`);
      }
      if (response?.status === Status.authError) refused++;
      if (i % 50 === 0) {
        // The legitimate client, authenticated before the flood, keeps being served during it.
        expect((await legit.set(`legit-${i}`, 'value'))?.status).toBe(Status.ok);
      }
    }
    attackerConnection.close();
    legit.close();
    const seconds = (Date.now() - started) / 1000;
    expect(refused).toBe(failures);
    expect(await running()).toBe(true);
    expect(await restartCount()).toBe(0);
    expect(await tryAuthenticatedRoundTrip(server.ip, user.name, user.password)).toEqual({
      authStatus: Status.ok,
      roundTrip: true,
    });
    const newLog = (await server.logs()).slice(logBefore.length);
    const failureLines = newLog
      .split('\n')
      .filter((line) => /sasl|auth/i.test(line) && !/result code:\s+0$/.test(line)).length;
    expect(failureLines).toBeGreaterThanOrEqual(failures);
    recordFigure(profile, 'failed authentications in the flood (all refused)', failures, 'attempts');
    recordFigure(profile, 'auth flood rate', Math.round(failures / seconds), 'attempts/s');
    recordFigure(profile, 'auth-failure log lines at default verbosity', failureLines, 'lines');
  });
});
