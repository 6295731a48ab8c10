import { connect, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';

/** memcached binary protocol opcodes the suite and the bench use. */
export const Op = {
  get: 0x00,
  set: 0x01,
  stat: 0x10,
  version: 0x0b,
  flush: 0x08,
  saslListMechs: 0x20,
  saslAuth: 0x21,
  saslStep: 0x22,
} as const;

/** Response status codes: 0 ok, 0x01 not found, 0x20 auth error, 0x21 auth continue, 0x81 unknown command. */
export const Status = {
  ok: 0x00,
  keyNotFound: 0x01,
  authError: 0x20,
  authContinue: 0x21,
  unknownCommand: 0x81,
} as const;

export interface Response {
  readonly opcode: number;
  readonly status: number;
  readonly key: Buffer;
  readonly extras: Buffer;
  readonly value: Buffer;
}

/** Encodes one binary-protocol request frame. */
export function encodeRequest(
  opcode: number,
  key: Buffer | string = '',
  value: Buffer | string = '',
  extras: Buffer = Buffer.alloc(0),
): Buffer {
  const keyBytes = Buffer.from(key);
  const valueBytes = Buffer.from(value);
  const header = Buffer.alloc(24);
  header.writeUInt8(0x80, 0);
  header.writeUInt8(opcode, 1);
  header.writeUInt16BE(keyBytes.length, 2);
  header.writeUInt8(extras.length, 4);
  header.writeUInt32BE(extras.length + keyBytes.length + valueBytes.length, 8);
  return Buffer.concat([header, extras, keyBytes, valueBytes]);
}

/** The SASL PLAIN message: authzid NUL authcid NUL password. */
export function plainAuthMessage(user: string, password: string): Buffer {
  return Buffer.from(`\0${user}\0${password}`);
}

/**
 * The suite's own minimal binary-protocol client: it knows exactly what went over the wire, so a check
 * never rests on a library's interpretation or exit code.
 */
export class BinaryClient {
  private buffer = Buffer.alloc(0);
  private closed = false;
  private closedAtMs: number | undefined;
  private failure: Error | undefined;
  private waiters: Array<() => void> = [];

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.closedAtMs = Date.now();
      this.wake();
    });
    socket.on('error', (error) => {
      this.failure = error;
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  static connect(host: string, port = 11211, timeoutMs = 3000): Promise<BinaryClient> {
    return BinaryClient.opened(connect({ host, port }), 'connect', `connect to ${host}:${port}`, timeoutMs);
  }

  /**
   * Over TLS: resolves once the handshake is done (certificates as in `tls`); rejects with the TLS error
   * (an alert from the server, a certificate that does not verify) or on the time limit.
   */
  static connectTls(host: string, tls: ConnectionOptions, port = 11211, timeoutMs = 3000): Promise<BinaryClient> {
    return BinaryClient.opened(
      connectTls({ ...tls, host, port }),
      'secureConnect',
      `TLS connect to ${host}:${port}`,
      timeoutMs,
    );
  }

  /** A client once `socket` emits `ready`; rejects with the socket's error or on the time limit. */
  private static opened(
    socket: Socket,
    ready: 'connect' | 'secureConnect',
    what: string,
    timeoutMs: number,
  ): Promise<BinaryClient> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`${what} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once(ready, () => {
        clearTimeout(timer);
        resolve(new BinaryClient(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Bytes arriving within the time limit; resolves early once `count` bytes are here or the peer closed. */
  async read(count: number, timeoutMs = 3000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length < count && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const taken = this.buffer.subarray(0, Math.min(count, this.buffer.length));
    this.buffer = this.buffer.subarray(taken.length);
    return Buffer.from(taken);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The error that ended the connection, if one did (a TLS alert from the server, say). */
  get error(): Error | undefined {
    return this.failure;
  }

  /** When the connection closed (ms since the epoch), if it has. */
  get closedAt(): number | undefined {
    return this.closedAtMs;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends a request and reads one response; undefined when the server closed or stayed silent. */
  async request(
    opcode: number,
    key: Buffer | string = '',
    value: Buffer | string = '',
    extras?: Buffer,
    timeoutMs = 3000,
  ): Promise<Response | undefined> {
    this.write(encodeRequest(opcode, key, value, extras));
    const header = await this.read(24, timeoutMs);
    if (header.length < 24 || header[0] !== 0x81) return undefined;
    const extrasLength = header.readUInt8(4);
    const keyLength = header.readUInt16BE(2);
    const body = await this.read(header.readUInt32BE(8), timeoutMs);
    return {
      opcode: header.readUInt8(1),
      status: header.readUInt16BE(6),
      extras: body.subarray(0, extrasLength),
      key: body.subarray(extrasLength, extrasLength + keyLength),
      value: body.subarray(extrasLength + keyLength),
    };
  }

  listMechanisms(): Promise<Response | undefined> {
    return this.request(Op.saslListMechs);
  }

  authenticate(user: string, password: string, mechanism = 'PLAIN'): Promise<Response | undefined> {
    return this.request(Op.saslAuth, mechanism, plainAuthMessage(user, password));
  }

  set(key: string, value: string): Promise<Response | undefined> {
    return this.request(Op.set, key, value, Buffer.alloc(8));
  }

  get(key: string): Promise<Response | undefined> {
    return this.request(Op.get, key);
  }

  /** The general stats as a map (binary STAT: one response per stat, then an empty one). */
  async stats(): Promise<Map<string, string>> {
    this.write(encodeRequest(Op.stat));
    const stats = new Map<string, string>();
    for (;;) {
      const header = await this.read(24);
      if (header.length < 24) throw new Error('connection closed during stats');
      const body = await this.read(header.readUInt32BE(8));
      if (header.readUInt16BE(6) !== Status.ok) throw new Error(`stats refused: status ${header.readUInt16BE(6)}`);
      const keyLength = header.readUInt16BE(2);
      if (keyLength === 0) return stats;
      stats.set(body.subarray(0, keyLength).toString(), body.subarray(keyLength).toString());
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Outcome of one authenticate-then-round-trip attempt, as seen on the wire. */
export interface AuthAttempt {
  readonly authStatus: number | 'closed';
  readonly roundTrip: boolean;
}

/** Authenticates (unless `user` is undefined) and tries a set/get round trip with a fresh value. */
export async function tryAuthenticatedRoundTrip(
  host: string,
  user: string | undefined,
  password: string,
): Promise<AuthAttempt> {
  const client = await BinaryClient.connect(host);
  try {
    let authStatus: number | 'closed' = 'closed';
    if (user !== undefined) {
      const auth = await client.authenticate(user, password);
      authStatus = auth ? auth.status : 'closed';
    }
    const key = `k${Math.random().toString(36).slice(2)}`;
    const value = `v${Math.random().toString(36).slice(2)}`;
    const set = await client.set(key, value);
    const got = set?.status === Status.ok ? await client.get(key) : undefined;
    return { authStatus, roundTrip: got?.status === Status.ok && got.value.toString() === value };
  } finally {
    client.close();
  }
}
