import { GenericContainer, Wait } from 'testcontainers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Status } from '../../lib/binary-client.js';
import { TLS_SECRET_DIR } from '../../src/tls.js';
import { clientsImage } from '../helpers/clients.js';
import { suiteLabels } from '../helpers/docker.js';
import { pollUntil } from '../helpers/poll.js';
import { parseProcNet, procNetAddress, TCP_LISTEN } from '../helpers/proc-net.js';
import { execIn, startServer, type RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';
import { conversationWith, tcpSegments, tlsRoundTrip } from '../helpers/tls.js';
import { PKI, plaintextAnswer, tlsBench } from '../helpers/tls-bench.js';
import { buildVariant, type Variant } from '../helpers/variants.js';
import { TLS_NOT_APPLIED } from '../helpers/weakenings.js';

/** Fixed addresses (host numbers on the test network) the servers take: the server certificate names them all. */
const HOST = { tls: 10, mutual: 11, plain: 12, weakened: 13 } as const;

// TLS, the port and the wire: what listens, which versions, what a plaintext client gets, SASL inside TLS.
describe.each(targetRows())('%s', (_name, target) => {
  const user = firstUser(target);
  const bench = tlsBench('tls-protocol', target, HOST);
  let tlsServer: RunningServer;
  let mutualServer: RunningServer;
  let plainServer: RunningServer;
  let weakenedServer: RunningServer;

  beforeAll(async () => {
    const network = bench.network.name;
    let weakened: Variant;
    [tlsServer, mutualServer, plainServer, weakened] = await Promise.all([
      bench.startTls(network, bench.secret, { ipv4Address: bench.address(HOST.tls) }),
      bench.startTls(network, bench.mutualSecret, { ipv4Address: bench.address(HOST.mutual), mutual: true }),
      // Controls: the same image without TLS, and (below) the TLS image weakened to serve plaintext.
      bench.started(startServer(target, network, { ipv4Address: bench.address(HOST.plain) })),
      buildVariant(bench.tlsTarget, TLS_NOT_APPLIED).then((variant) => bench.bench.keep(variant)),
    ]);
    // The weakened image serves plaintext, so the plaintext probe of startServer is its readiness.
    const binds = [`${bench.secret}:${TLS_SECRET_DIR}:ro`];
    weakenedServer = await bench.started(
      startServer(weakened.target, network, { ipv4Address: bench.address(HOST.weakened), binds }),
    );
  });

  it(
    'listens with TLS on its address and in plaintext only on loopback (127.0.0.1), where the plain ' +
      'image listens in plaintext on its address',
    async () => {
      const listeners = async (server: RunningServer) =>
        parseProcNet((await execIn(server.container, ['cat', '/proc/net/tcp', '/proc/net/tcp6'])).output)
          .filter((s) => s.state === TCP_LISTEN && s.localPort === 11211)
          .map((s) => s.localAddress)
          .sort();
      expect(await listeners(tlsServer)).toEqual([procNetAddress('127.0.0.1'), procNetAddress(tlsServer.ip)].sort());
      expect(await listeners(plainServer)).toEqual([procNetAddress(plainServer.ip)]);
      // The plaintext listener answers in the container only: its own health check (which also wants TLS on
      // the address).
      expect((await execIn(tlsServer.container, ['/usr/local/bin/memcached-healthcheck'])).exitCode).toBe(0);
    },
  );

  it(
    'refuses TLS 1.0 and 1.1 with a protocol-version alert; the same command with -tls1_2 succeeds, ' +
      'and with -tls1/-tls1_1 against a server that allows them',
    async () => {
      // The old versions need OpenSSL 3's security level 0 on the client, or it would not even offer them.
      const old = '-cipher DEFAULT@SECLEVEL=0';
      // Control: a permissive server in the client host shows this client does speak TLS 1.0 and 1.1.
      await execIn(bench.clientHost, [
        'sh',
        '-c',
        `sleep infinity | openssl s_server -accept 4433 -min_protocol TLSv1 ${old} ` +
          `-cert ${PKI}/permissive.crt -key ${PKI}/permissive.key >/tmp/s_server.log 2>&1 &`,
      ]);
      for (const version of ['-tls1', '-tls1_1']) {
        const permissive = await pollUntil(
          async () => (await bench.sClient(`-connect 127.0.0.1:4433 ${version} ${old}`)).protocol,
          {
            timeoutMs: 10_000,
            what: `the permissive server accepts ${version}`,
          },
        );
        expect(permissive).toBe(version === '-tls1' ? 'TLSv1' : 'TLSv1.1');
        for (const server of [tlsServer, mutualServer]) {
          const refused = await bench.sClient(`-connect ${server.ip}:11211 ${version} ${old} -CAfile ${PKI}/ca.crt`);
          expect({ version, protocol: refused.protocol, alert: refused.alert }).toEqual({
            version,
            protocol: undefined,
            alert: 'protocol version',
          });
          expect(refused.bytesWritten).toBeGreaterThan(0);
        }
        const current = await bench.sClient(`-connect ${tlsServer.ip}:11211 -tls1_2 ${old} -CAfile ${PKI}/ca.crt`);
        expect(current).toMatchObject({ protocol: 'TLSv1.2', verifyCode: 0 });
      }
    },
  );

  it(
    'gives a plaintext client nothing on the port (no SASL exchange, no data), where the image ' +
      'weakened to serve plaintext and the plain image answer',
    async () => {
      const [tls, mutual, weakenedAnswer, plain] = await Promise.all(
        [tlsServer, mutualServer, weakenedServer, plainServer].map((s) => plaintextAnswer(s.ip)),
      );
      expect({ tls, mutual }).toEqual({ tls: 'nothing', mutual: 'nothing' });
      expect(weakenedAnswer).toContain('PLAIN');
      expect(plain).toContain('PLAIN');
      // The weakened image says TLS at start all the same: the start-up line proves nothing.
      expect(await weakenedServer.logs()).toContain('TLS 1.2+ only');
    },
  );

  it(
    'still requires SASL inside TLS: no data without authentication or with a wrong password; the ' +
      'right one round-trips',
    async () => {
      const tls = bench.clientTls();
      expect(await tlsRoundTrip(tlsServer.ip, tls, undefined)).toMatchObject({ handshake: true, roundTrip: false });
      const wrong = await tlsRoundTrip(tlsServer.ip, tls, { name: user.name, password: `${user.password}-wrong` });
      expect(wrong).toMatchObject({ handshake: true, roundTrip: false });
      expect([Status.authError, 'closed']).toContain(wrong.authStatus);
      expect(await tlsRoundTrip(tlsServer.ip, tls, user)).toMatchObject({
        handshake: true,
        authStatus: Status.ok,
        roundTrip: true,
      });
    },
  );

  it(
    'Dalli (Ruby, ssl_context verifying the address) authenticates over TLS and round-trips; with a ' +
      'wrong password it stores nothing',
    async () => {
      const key = `dalli-tls-${Math.random().toString(36).slice(2)}`;
      expect(await bench.dalli(tlsServer.ip, key, 'over-tls')).toBe('ok over-tls');
      expect(await bench.storedOverTls(tlsServer.ip, key)).toBe('over-tls');
      const refusedKey = `${key}-wrong`;
      expect(
        await bench.dalli(tlsServer.ip, refusedKey, 'never', { name: user.name, password: `${user.password}-wrong` }),
      ).not.toMatch(/^ok /);
      expect(await bench.storedOverTls(tlsServer.ip, refusedKey)).toBeUndefined();
    },
  );

  it(
    "puts no password on the wire: a capture in the client's network namespace shows it in clear for " +
      'the plain image and nowhere with TLS',
    async () => {
      const capture = await new GenericContainer(clientsImage())
        .withNetworkMode(`container:${bench.clientHost.getId()}`)
        .withLabels(suiteLabels())
        .withUser('root')
        .withAddedCapabilities('NET_RAW', 'NET_ADMIN')
        .withEntrypoint(['tcpdump'])
        .withCommand(['-i', 'eth0', '-n', '-U', '--immediate-mode', '-w', '/tmp/capture.pcap', 'tcp port 11211'])
        .withWaitStrategy(Wait.forLogMessage(/listening on eth0/))
        .start();
      try {
        const key = `wire-${Math.random().toString(36).slice(2)}`;
        expect(await bench.dalli(plainServer.ip, key, 'plain', user, {})).toBe('ok plain');
        expect(await bench.dalli(tlsServer.ip, key, 'encrypted')).toBe('ok encrypted');
        const password = Buffer.from(user.password);
        // Both sessions, start to end, before anything is concluded from them.
        const captured = async () =>
          tcpSegments(
            Buffer.from(
              (await execIn(capture, ['base64', '-w0', '/tmp/capture.pcap'], 'root')).output.trim(),
              'base64',
            ),
          );
        const [plain, encrypted] = await pollUntil(
          async () => {
            const segments = await captured();
            const sessions = [plainServer.ip, tlsServer.ip].map((ip) => conversationWith(segments, ip));
            return sessions.every((s) => s.complete) ? sessions : undefined;
          },
          {
            timeoutMs: 15_000,
            what: 'the capture holds both sessions from SYN to FIN or RST',
            diagnose: async () =>
              (await captured())
                .map(
                  (s) =>
                    `${s.source}:${s.sourcePort} > ${s.destination}:${s.destinationPort}` +
                    `${s.syn ? ' SYN' : ''}${s.end ? ' END' : ''} ${s.payload.length} bytes`,
                )
                .join('\n'),
          },
        );
        // Control: in clear text the password is right there in the SASL exchange.
        expect(plain!.toServer.includes(password)).toBe(true);
        // With TLS: TLS records both ways (handshake, then application data), and no password anywhere.
        expect([...encrypted!.toServer.subarray(0, 3)]).toEqual([0x16, 0x03, 0x01]);
        expect(encrypted!.fromServer.subarray(0, 2)).toEqual(Buffer.from([0x16, 0x03]));
        expect(encrypted!.toServer.includes(Buffer.from([0x17, 0x03, 0x03]))).toBe(true);
        expect(encrypted!.toServer.includes(password) || encrypted!.fromServer.includes(password)).toBe(false);
        expect(encrypted!.toServer.includes(Buffer.from(key))).toBe(false);
      } finally {
        await capture.stop({ remove: true });
      }
    },
  );
});
