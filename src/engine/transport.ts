import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { connect as netConnect, isIP, isIPv6, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';

/** An engine answer held in memory: inspections, ids and single files are small. */
export interface EngineResponse {
  readonly status: number;
  readonly body: Buffer;
}

export interface RequestParts {
  readonly query?: Readonly<Record<string, string>>;
  readonly json?: unknown;
}

/**
 * Plain request/answer calls to the engine API. The calls a no-change rebuild needs go through this,
 * so such a rebuild never loads dockerode (a tenth of a second of start-up on its own).
 */
export interface EngineTransport {
  request(method: 'GET' | 'POST' | 'DELETE', path: string, options?: RequestParts): Promise<EngineResponse>;
}

/**
 * Where DOCKER_HOST points, read exactly as docker-modem reads it, so this transport and dockerode
 * always reach the same engine. Undefined for what is left to dockerode: ssh://, npipe://, other schemes,
 * and Windows' default pipe.
 */
export type EngineAddress =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port?: number; readonly tls: boolean; readonly certPath?: string };

export function engineAddress(env: NodeJS.ProcessEnv, home = homedir(), platform = process.platform): EngineAddress | undefined {
  const host = env.DOCKER_HOST ?? '';
  if (host === '' || host === 'unix://') {
    if (platform === 'win32') return undefined;
    // As docker-modem: Docker Desktop's per-user socket when there is one.
    const userSocket = join(home, '.docker', 'run', 'docker.sock');
    return { kind: 'unix', socketPath: existsSync(userSocket) ? userSocket : '/var/run/docker.sock' };
  }
  if (host.startsWith('unix://')) return { kind: 'unix', socketPath: host.slice('unix://'.length) };
  let url: URL;
  try {
    url = new URL(host.includes('//') ? host : `tcp://${host}`);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'tcp:') return undefined;
  const tls = env.DOCKER_TLS_VERIFY === '1' || url.port === '2376';
  return {
    kind: 'tcp',
    // URL keeps an IPv6 address in brackets; the socket API wants it bare.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    // Without a port, the protocol's own (docker-modem does not default to 2375/2376 either).
    ...(url.port === '' ? {} : { port: Number(url.port) }),
    tls,
    ...(env.DOCKER_CERT_PATH ? { certPath: env.DOCKER_CERT_PATH } : {}),
  };
}

/** The answer a modem stream carries: its status and its whole body. */
function answered(response: IncomingMessage): Promise<EngineResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
    response.on('error', reject);
  });
}

/** A chunked body decoded (chunk extensions and trailers ignored). */
function dechunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let offset = 0; ; ) {
    const lineEnd = data.indexOf('\r\n', offset);
    const sizeField = lineEnd < 0 ? '' : (data.subarray(offset, lineEnd).toString('latin1').split(';')[0] ?? '').trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeField)) throw new Error('the engine sent a malformed chunked answer');
    const size = Number.parseInt(sizeField, 16);
    if (size === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (start + size + 2 > data.length) throw new Error('the engine closed the connection in the middle of its answer');
    parts.push(data.subarray(start, start + size));
    offset = start + size + 2;
  }
}

/** An HTTP/1.1 answer read to the end of its connection: the status and the body (chunked or not). */
export function parseAnswer(raw: Buffer): EngineResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) throw new Error('the engine closed the connection before a complete answer');
  const [statusLine = '', ...headerLines] = raw.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine)?.[1];
  if (status === undefined) throw new Error(`the engine's answer is not HTTP: '${statusLine.slice(0, 40)}'`);
  const headers = new Map(
    headerLines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const;
    }),
  );
  const rest = raw.subarray(headEnd + 4);
  let body = rest;
  if (/(^|,)\s*chunked\s*$/i.test(headers.get('transfer-encoding') ?? '')) body = dechunked(rest);
  else if (headers.has('content-length')) {
    const length = Number(headers.get('content-length'));
    if (!Number.isSafeInteger(length) || length < 0 || rest.length < length) throw new Error('the engine closed the connection in the middle of its answer');
    body = rest.subarray(0, length);
  }
  return { status: Number(status), body: Buffer.from(body) };
}

/**
 * A small HTTP/1.1 client straight to the engine, one connection per call (Connection: close; the answer
 * ends with it): the calls a no-change rebuild makes answer before node:http would have finished
 * loading. TLS with DOCKER_CERT_PATH's client certificate, as docker-modem does.
 */
export async function httpTransport(address: EngineAddress): Promise<EngineTransport> {
  let connect: () => Socket;
  let host = 'docker';
  if (address.kind === 'unix') connect = () => netConnect(address.socketPath);
  else {
    const port = address.port ?? (address.tls ? 443 : 80);
    host = `${isIPv6(address.host) ? `[${address.host}]` : address.host}:${port}`;
    if (!address.tls) connect = () => netConnect(port, address.host);
    else {
      const { connect: tlsConnect } = await import('node:tls');
      const certs = address.certPath;
      const read = (name: string) => (certs ? readFileSync(join(certs, name)) : undefined);
      const [ca, cert, key] = [read('ca.pem'), read('cert.pem'), read('key.pem')];
      connect = () => tlsConnect({ host: address.host, port, ca, cert, key, ...(isIP(address.host) ? {} : { servername: address.host }) });
    }
  }
  return {
    request(method, path, { query, json } = {}) {
      const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
      const target = query ? `${path}?${new URLSearchParams(query).toString()}` : path;
      const head = [`${method} ${target} HTTP/1.1`, `Host: ${host}`, 'Connection: close', ...(body ? ['Content-Type: application/json', `Content-Length: ${body.length}`] : []), '', ''];
      return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        const socket = connect();
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => {
          socket.destroy();
          try {
            resolve(parseAnswer(Buffer.concat(chunks)));
          } catch (error) {
            reject(error as Error);
          }
        });
        socket.on('error', reject);
        // Written at once (queued until connected); never half-closed, which the engine takes for a client gone.
        socket.write(Buffer.concat([Buffer.from(head.join('\r\n'), 'latin1'), ...(body ? [body] : [])]));
      });
    },
  };
}

const EVERY_STATUS: Record<number, true> = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [100 + i, true]));

/** The same calls through dockerode's modem, for the transports only it speaks (ssh://, npipe://). */
export function modemTransport(docker: () => Promise<Docker>): EngineTransport {
  return {
    async request(method, path, options = {}) {
      const { modem } = await docker();
      return new Promise((resolve, reject) =>
        modem.dial(
          // The modem appends _query to a path ending in '?' and sends _body (when not empty) as JSON.
          // Every status accepted, so the answer comes back as it is (an error would fold its body into a message).
          { path: `${path}?`, method, options: { _query: options.query ?? {}, _body: options.json ?? {} }, isStream: true, statusCodes: EVERY_STATUS },
          (error, response) => (error ? reject(error) : answered(response as IncomingMessage).then(resolve, reject)),
        ),
      );
    },
  };
}
