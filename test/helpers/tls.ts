import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { BinaryClient, Status, type AuthAttempt } from '../../lib/binary-client.js';
import { projectPath } from '../../src/paths.js';
import type { SaslUser } from '../../src/credentials.js';
import { writeMemcacheSecret } from './secrets.js';

// No vitest import: the unit tests use the parsers and the certificate commands of docs/tls.md too.

/** The certificate commands of docs/tls.md (its tls-pki block): the suite issues its certificates with them. */
export function readmePkiScript(): string {
  const readme = readFileSync(projectPath('docs', 'tls.md'), 'utf8');
  const block = /<!-- tls-pki:start -->\n```sh\n([\s\S]*?)```\n<!-- tls-pki:end -->/.exec(readme)?.[1];
  if (!block) {
    throw new Error('docs/tls.md has no tls-pki block (```sh between <!-- tls-pki:start --> and <!-- tls-pki:end -->)');
  }
  return block;
}

/** What the commands of docs/tls.md leave in their folder. */
export interface IssuedFiles {
  readonly caCertificate: string;
  readonly certificate: string;
  readonly key: string;
  readonly clientCertificate: string;
  readonly clientKey: string;
}

/**
 * Runs the commands of docs/tls.md in `dir` (created) with its SAN line set to `subjectAltName`, using this
 * host's openssl; returns the paths of what they issued.
 */
export function issueWithReadmeCommands(dir: string, subjectAltName: string): IssuedFiles {
  mkdirSync(dir, { recursive: true });
  const script = readmePkiScript().replace(/^SAN=.*$/m, `SAN='${subjectAltName}'`);
  try {
    execFileSync('sh', ['-eu', '-c', script], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const failed = error as { code?: string; stderr?: Buffer };
    if (failed.code === 'ENOENT') throw new Error('no sh on this host');
    const stderr = failed.stderr?.toString() ?? '';
    if (/openssl: (command )?not found/.test(stderr)) {
      throw new Error('the certificate commands of docs/tls.md need openssl (Debian: apt-get install openssl)');
    }
    const tail = stderr.trim().split('\n').slice(-3).join(' / ');
    throw new Error(`the certificate commands of docs/tls.md failed: ${tail}`);
  }
  const file = (name: string) => join(dir, name);
  return {
    caCertificate: file('ca.crt'),
    certificate: file('tls.crt'),
    key: file('tls.key'),
    clientCertificate: file('client.crt'),
    clientKey: file('client.key'),
  };
}

/** The same server key certified again by the same CA, but expired yesterday (for the refusal). */
export function expiredCertificate(issued: IssuedFiles): string {
  const dir = dirname(issued.certificate);
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      'tls.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '-1',
      '-out',
      'expired.crt',
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  return join(dir, 'expired.crt');
}

/**
 * A folder to mount as the container's certificate secret: memcache-owned files (mode 0400) under the
 * given names, in a folder anyone may enter (as a Kubernetes secret volume).
 */
export function mountableSecretDir(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const [name, source] of Object.entries(files))
    writeMemcacheSecret(join(dir, name), readFileSync(source, 'utf8'));
  return dir;
}

/** A folder of files any container user may read (a client's CA, certificates and test-only keys). */
export function readableDir(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const [name, source] of Object.entries(files))
    writeFileSync(join(dir, name), readFileSync(source), { mode: 0o444 });
  return dir;
}

/** What `openssl s_client` printed about one handshake. */
export interface Handshake {
  /** The protocol and cipher it agreed, if the handshake completed. */
  readonly protocol?: string;
  readonly cipher?: string;
  readonly verifyCode?: number;
  /** The alert the peer sent ("protocol version", "certificate required", ...). */
  readonly alert?: string;
  /** The server's certificate (PEM) as it was sent. */
  readonly peerCertificate?: string;
  /** Bytes written to the server: 0 would mean the client never sent its hello. */
  readonly bytesWritten?: number;
}

/** Parses what `openssl s_client` (OpenSSL 3) printed; never its exit code. */
export function parseSClient(output: string): Handshake {
  // "New, <version>, Cipher is <cipher or (NONE)>": the version is the cipher's own minimum one, so the
  // session block's protocol wins where there is one (TLS 1.3 prints none at connect time). That block
  // is printed even when the handshake failed: it counts only with a cipher.
  const [, version, cipher] = /^New, (\S+), Cipher is (\S+)$/m.exec(output) ?? [];
  const agreed = cipher !== undefined && cipher !== '(NONE)';
  const verifyCode = /Verify return code: (\d+)/.exec(output)?.[1];
  const bytesWritten = /SSL handshake has read \d+ bytes and written (\d+) bytes/.exec(output)?.[1];
  return {
    protocol: agreed ? (/^\s*Protocol\s*: (\S+)$/m.exec(output)?.[1] ?? version) : undefined,
    cipher: agreed ? cipher : undefined,
    verifyCode: verifyCode === undefined ? undefined : Number(verifyCode),
    alert: /(?:sslv3|tlsv1|tlsv13) alert ([a-z ]+?)(?::|$)/m.exec(output)?.[1],
    peerCertificate: /-----BEGIN CERTIFICATE-----\n[\s\S]*?\n-----END CERTIFICATE-----/.exec(output)?.[0],
    bytesWritten: bytesWritten === undefined ? undefined : Number(bytesWritten),
  };
}

/** The base64 body of a PEM certificate, to compare certificates whatever their line endings. */
export function pemBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

/** One TCP segment of an IPv4 capture. */
export interface TcpSegment {
  readonly source: string;
  readonly sourcePort: number;
  readonly destination: string;
  readonly destinationPort: number;
  readonly syn: boolean;
  /** FIN or RST: this side ended the connection. */
  readonly end: boolean;
  readonly payload: Buffer;
}

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_LINUX_SLL = 113;

/** The TCP segments of a classic pcap file (Ethernet or Linux cooked capture, IPv4); others are skipped. */
export function tcpSegments(pcap: Buffer): TcpSegment[] {
  if (pcap.length < 24) throw new Error(`not a pcap file: ${pcap.length} bytes`);
  const magic = pcap.readUInt32LE(0);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!little && pcap.readUInt32BE(0) !== 0xa1b2c3d4 && pcap.readUInt32BE(0) !== 0xa1b23c4d)
    throw new Error('not a classic pcap file');
  const u32 = (offset: number) => (little ? pcap.readUInt32LE(offset) : pcap.readUInt32BE(offset));
  const linkType = u32(20);
  const linkHeader = linkType === LINKTYPE_ETHERNET ? 14 : linkType === LINKTYPE_LINUX_SLL ? 16 : undefined;
  if (linkHeader === undefined) throw new Error(`unsupported pcap link type ${linkType}`);
  const segments: TcpSegment[] = [];
  for (let offset = 24; offset + 16 <= pcap.length;) {
    const captured = u32(offset + 8);
    const frame = pcap.subarray(offset + 16, offset + 16 + captured);
    offset += 16 + captured;
    const etherType = frame.length >= linkHeader ? frame.readUInt16BE(linkHeader - 2) : 0;
    if (etherType !== 0x0800) continue;
    const ip = frame.subarray(linkHeader);
    if (ip.length < 20 || ip[9] !== 6) continue;
    const ipHeader = (ip[0]! & 0x0f) * 4;
    const tcp = ip.subarray(ipHeader, ip.readUInt16BE(2));
    if (tcp.length < 20) continue;
    const address = (at: number) => [...ip.subarray(at, at + 4)].join('.');
    const flags = tcp[13]!;
    segments.push({
      source: address(12),
      sourcePort: tcp.readUInt16BE(0),
      destination: address(16),
      destinationPort: tcp.readUInt16BE(2),
      syn: (flags & 0x02) !== 0,
      end: (flags & 0x05) !== 0,
      payload: Buffer.from(tcp.subarray((tcp[12]! >> 4) * 4)),
    });
  }
  return segments;
}

/** What a capture shows of the traffic with one server's port: both directions' bytes, opened and closed. */
export interface Conversation {
  readonly toServer: Buffer;
  readonly fromServer: Buffer;
  /** The client's SYN was captured (the start) and a FIN or RST (the end). */
  readonly complete: boolean;
}

export function conversationWith(segments: readonly TcpSegment[], server: string, port = 11211): Conversation {
  const toServer = segments.filter((s) => s.destination === server && s.destinationPort === port);
  const fromServer = segments.filter((s) => s.source === server && s.sourcePort === port);
  return {
    toServer: Buffer.concat(toServer.map((s) => s.payload)),
    fromServer: Buffer.concat(fromServer.map((s) => s.payload)),
    complete: toServer.some((s) => s.syn) && [...toServer, ...fromServer].some((s) => s.end),
  };
}

/** What one TLS client got from the server: handshake, SASL and a set/get, or the TLS error that ended it. */
export interface TlsAttempt extends AuthAttempt {
  readonly handshake: boolean;
  readonly error?: string;
}

/**
 * A TLS connection from this host (the CA and, for mutual TLS, a client certificate in `tls`), then SASL
 * PLAIN unless `user` is undefined, then a fresh set/get. A server that ends the connection after the
 * handshake (TLS 1.3 refuses a client certificate only then) shows as the error it sent.
 */
export async function tlsRoundTrip(
  ip: string,
  tls: ConnectionOptions,
  user: SaslUser | undefined,
): Promise<TlsAttempt> {
  let client: BinaryClient;
  try {
    client = await BinaryClient.connectTls(ip, tls);
  } catch (error) {
    return { handshake: false, authStatus: 'closed', roundTrip: false, error: (error as Error).message };
  }
  try {
    let authStatus: number | 'closed' = 'closed';
    if (user) authStatus = (await client.authenticate(user.name, user.password))?.status ?? 'closed';
    const key = `tls-${Math.random().toString(36).slice(2)}`;
    const value = `v${Math.random().toString(36).slice(2)}`;
    const set = await client.set(key, value);
    const got = set?.status === Status.ok ? await client.get(key) : undefined;
    return {
      handshake: true,
      authStatus,
      roundTrip: got?.status === Status.ok && got.value.toString() === value,
      error: client.error?.message,
    };
  } finally {
    client.close();
  }
}
