import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { printfEscaped, tlsProbeHello } from '../src/tls.js';
import { conversationWith, issueWithReadmeCommands, parseSClient, pemBody, tcpSegments } from './helpers/tls.js';

const scratch = mkdtempSync(join(tmpdir(), 'mh-tls-unit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
// The commands of docs/tls.md, run twice: two unrelated CAs.
const ours = issueWithReadmeCommands(join(scratch, 'ours'), 'DNS:memcached,IP:10.0.0.5');
const theirs = issueWithReadmeCommands(join(scratch, 'theirs'), 'DNS:memcached');
const certificate = (path: string) => new X509Certificate(readFileSync(path));

/** The first bytes a server sends back to the health check's probe (at most 6). */
async function replyToProbe(server: Server): Promise<Buffer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1', () => socket.write(tlsProbeHello()));
      let reply = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        reply = Buffer.concat([reply, chunk]);
        if (reply.length >= 6) socket.destroy();
      });
      socket.on('close', () => resolve(reply.subarray(0, 6)));
      socket.on('error', reject);
      socket.setTimeout(3000, () => socket.destroy());
    });
  } finally {
    server.close();
  }
}

describe("the health check's TLS probe", () => {
  it('is one TLS 1.2 ClientHello record whose lengths add up', () => {
    const hello = tlsProbeHello();
    expect([...hello.subarray(0, 3)]).toEqual([0x16, 0x03, 0x01]);
    expect(hello.readUInt16BE(3)).toBe(hello.length - 5);
    expect(hello[5]).toBe(0x01);
    expect(hello.readUIntBE(6, 3)).toBe(hello.length - 9);
    expect(hello.readUInt16BE(9)).toBe(0x0303);
  });

  it('is written for printf as \\xNN escapes of exactly those bytes', () => {
    const escaped = printfEscaped(tlsProbeHello());
    expect(escaped).toMatch(/^(\\x[0-9a-f]{2})+$/);
    expect(Buffer.from(escaped.replace(/\\x/g, ''), 'hex')).toEqual(tlsProbeHello());
  });

  it(
    'gets a ServerHello from a TLS server that wants client ' + 'certificates, and none from a plaintext one (control)',
    async () => {
      const tls = createTlsServer({
        cert: readFileSync(ours.certificate),
        key: readFileSync(ours.key),
        ca: readFileSync(ours.caCertificate),
        requestCert: true,
        rejectUnauthorized: true,
      });
      tls.on('tlsClientError', () => undefined);
      const reply = await replyToProbe(tls);
      // The health check's test: handshake record, TLS 1.2, ServerHello.
      expect(reply.toString('hex').slice(0, 6)).toBe('160303');
      expect(reply[5]).toBe(0x02);
      const plain = await replyToProbe(createTcpServer((socket) => socket.end('SERVER_ERROR not TLS\r\n')));
      expect(plain.toString('hex').slice(0, 6)).not.toBe('160303');
    },
  );
});

describe('the certificate commands of docs/tls.md', () => {
  it(
    'issue a server certificate for the names asked, signed ' + 'by their CA, for its key, for server authentication',
    () => {
      const server = certificate(ours.certificate);
      expect(server.checkIssued(certificate(ours.caCertificate))).toBe(true);
      expect(server.verify(certificate(ours.caCertificate).publicKey)).toBe(true);
      expect(server.subjectAltName).toBe('DNS:memcached, IP Address:10.0.0.5');
      expect(server.checkPrivateKey(createPrivateKey(readFileSync(ours.key)))).toBe(true);
      expect(server.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
      expect(certificate(ours.caCertificate).ca).toBe(true);
    },
  );

  it(
    'issue a client certificate for client authentication ' +
      'from the same CA; another run makes another CA (control)',
    () => {
      const client = certificate(ours.clientCertificate);
      expect(client.verify(certificate(ours.caCertificate).publicKey)).toBe(true);
      expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
      expect(client.checkPrivateKey(createPrivateKey(readFileSync(ours.clientKey)))).toBe(true);
      expect(certificate(theirs.clientCertificate).verify(certificate(ours.caCertificate).publicKey)).toBe(false);
      expect(certificate(ours.certificate).checkPrivateKey(createPrivateKey(readFileSync(theirs.key)))).toBe(false);
    },
  );
});

describe('parseSClient', () => {
  const session = (protocol: string) => `SSL-Session:\n    Protocol  : ${protocol}\n    Cipher    : X\n`;
  it('reads an agreed TLS 1.2 session, its verification and the certificate the server sent', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\nAbCd==\n-----END CERTIFICATE-----';
    const output =
      `CONNECTED(00000003)\nServer certificate\n${pem}\nSSL handshake has read 3079 bytes and written 2125 bytes\n` +
      `---\nNew, TLSv1.0, Cipher is ECDHE-RSA-AES256-SHA\n${session('TLSv1.2')}    Verify return code: 0 (ok)\n`;
    expect(parseSClient(output)).toEqual({
      protocol: 'TLSv1.2',
      cipher: 'ECDHE-RSA-AES256-SHA',
      verifyCode: 0,
      alert: undefined,
      peerCertificate: pem,
      bytesWritten: 2125,
    });
    expect(pemBody(pem)).toBe('MIIBAbCd==');
  });

  it('takes TLS 1.3 from the New line, which prints no session block at connect time', () => {
    expect(parseSClient('New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384\nVerify return code: 0 (ok)\n')).toMatchObject({
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
    });
  });

  it(
    'reports a refused handshake as no protocol, with the ' + 'alert, although a session block names the version tried',
    () => {
      const output =
        '4007:error:0A00042E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version:' +
        '../ssl/record/rec_layer_s3.c:1601:SSL alert number 70\n' +
        `SSL handshake has read 7 bytes and written 104 bytes\nNew, (NONE), Cipher is (NONE)\n${session('TLSv1')}`;
      expect(parseSClient(output)).toMatchObject({
        protocol: undefined,
        cipher: undefined,
        alert: 'protocol version',
        bytesWritten: 104,
      });
      expect(
        parseSClient('error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:ssl'),
      ).toMatchObject({ alert: 'certificate required' });
    },
  );
});

describe('tcpSegments and conversationWith', () => {
  /** A pcap (little-endian, Ethernet) of IPv4/TCP frames. */
  function pcap(
    frames: Array<{ from: string; to: string; sport: number; dport: number; flags: number; payload?: string }>,
  ): Buffer {
    const header = Buffer.alloc(24);
    header.writeUInt32LE(0xa1b2c3d4, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(262144, 16);
    header.writeUInt32LE(1, 20);
    const records = frames.map((f) => {
      const payload = Buffer.from(f.payload ?? '');
      const tcp = Buffer.alloc(20);
      tcp.writeUInt16BE(f.sport, 0);
      tcp.writeUInt16BE(f.dport, 2);
      tcp[12] = 5 << 4;
      tcp[13] = f.flags;
      const ip = Buffer.alloc(20);
      ip[0] = 0x45;
      ip.writeUInt16BE(40 + payload.length, 2);
      ip[9] = 6;
      Buffer.from(f.from.split('.').map(Number)).copy(ip, 12);
      Buffer.from(f.to.split('.').map(Number)).copy(ip, 16);
      const ethernet = Buffer.alloc(14);
      ethernet.writeUInt16BE(0x0800, 12);
      // Ethernet pads short frames: the IP total length, not the frame, ends the segment.
      const frame = Buffer.concat([ethernet, ip, tcp, payload, Buffer.alloc(payload.length ? 0 : 6)]);
      const record = Buffer.alloc(16);
      record.writeUInt32LE(frame.length, 8);
      record.writeUInt32LE(frame.length, 12);
      return Buffer.concat([record, frame]);
    });
    return Buffer.concat([header, ...records]);
  }
  const client = '10.1.0.5';
  const server = '10.1.0.2';

  it('reassembles what each side sent and sees the start and end of the connection', () => {
    const capture = pcap([
      { from: client, to: server, sport: 40000, dport: 11211, flags: 0x02 },
      { from: server, to: client, sport: 11211, dport: 40000, flags: 0x12 },
      { from: client, to: server, sport: 40000, dport: 11211, flags: 0x18, payload: 'secret-' },
      { from: client, to: server, sport: 40000, dport: 11211, flags: 0x18, payload: 'password' },
      { from: server, to: client, sport: 11211, dport: 40000, flags: 0x18, payload: 'ok' },
      { from: client, to: '10.1.0.9', sport: 40001, dport: 11211, flags: 0x18, payload: 'elsewhere' },
    ]);
    expect(tcpSegments(capture)).toHaveLength(6);
    const open = conversationWith(tcpSegments(capture), server);
    expect(open).toEqual({ toServer: Buffer.from('secret-password'), fromServer: Buffer.from('ok'), complete: false });
    const closed = pcap([
      { from: client, to: server, sport: 40000, dport: 11211, flags: 0x02 },
      { from: server, to: client, sport: 11211, dport: 40000, flags: 0x14 },
    ]);
    expect(conversationWith(tcpSegments(closed), server).complete).toBe(true);
  });

  it('refuses what is not a classic pcap', () => {
    expect(() => tcpSegments(Buffer.from('not a capture at all, just text'))).toThrow(/not a classic pcap/);
  });
});
