import { beforeAll, describe, expect, it } from 'vitest';
import { BinaryClient, Op, Status } from '../../lib/binary-client.js';
import { loadProfile } from '../../src/profiles.js';
import { isolatedServers, type ClientHost } from '../helpers/fixture.js';
import { execIn, type RunningServer, runToExit, udpStatsProbe } from '../helpers/server.js';
import { socketsOnPort } from '../helpers/proc-net.js';
import { targetRows } from '../helpers/targets.js';

const procNetUdp = async (server: RunningServer) =>
  (await execIn(server.container, ['cat', '/proc/net/udp', '/proc/net/udp6'])).output;
const UDP_AND_SASL = ['-U', '11211', '-p', '11211', '-S', '-l', '0.0.0.0'];

describe.each(targetRows())('%s', (_profile, target) => {
  const quirk = loadProfile(target.profile).memcached.udpWithSasl;
  const bench = isolatedServers('udp');
  let server: RunningServer;
  let udpControl: RunningServer;
  let peer: ClientHost;

  beforeAll(async () => {
    server = await bench.start(target);
    // Control: the same image with UDP on. 1.4.25 allows SASL on too, and then answers `stats` over UDP
    // to anyone (SASL does not cover UDP): the reason the image turns UDP off. Later versions refuse that
    // combination, so their control runs UDP without SASL.
    const udpOn = quirk === 'answers-unauthenticated' ? UDP_AND_SASL : ['-U', '11211', '-p', '11211', '-l', '0.0.0.0'];
    udpControl = await bench.control(target, udpOn);
    peer = await bench.clientHost(target);
  });

  it('has no UDP socket on port 11211, where the UDP-enabled control has one', async () => {
    expect(socketsOnPort(await procNetUdp(server))).toEqual([]);
    expect(socketsOnPort(await procNetUdp(udpControl)).length).toBeGreaterThan(0);
  });

  it('gives a UDP stats datagram from a peer no reply, where the control replies', async () => {
    expect(await udpStatsProbe(peer.container, server.ip)).not.toContain('STAT');
    expect(await udpStatsProbe(peer.container, udpControl.ip)).toMatch(/STAT pid \d+/);
  });

  it(`documents this memcached's UDP-with-SASL behaviour: ${quirk}`, async () => {
    if (quirk === 'answers-unauthenticated') {
      // The control has SASL on: over TCP it refuses an unauthenticated GET, yet over UDP it answers anyone.
      const client = await BinaryClient.connect(udpControl.ip);
      try {
        expect((await client.request(Op.get, 'k'))?.status).toBe(Status.authError);
      } finally {
        client.close();
      }
      expect(await udpStatsProbe(peer.container, udpControl.ip)).toMatch(/STAT pid \d+/);
    } else {
      const refused = await runToExit(target, bench.network.name, { entrypoint: ['memcached', ...UDP_AND_SASL] });
      expect(refused.exitCode).not.toBe(0);
      expect(refused.output).toMatch(/UDP/i);
    }
  });
});
