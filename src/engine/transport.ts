import { existsSync, readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { RequestOptions } from 'node:https';
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

function answered(response: IncomingMessage): Promise<EngineResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
    response.on('error', reject);
  });
}

/** node:http (or https with DOCKER_CERT_PATH's client certificate) straight to the engine. */
export async function httpTransport(address: EngineAddress): Promise<EngineTransport> {
  let base: RequestOptions;
  let send = httpRequest;
  if (address.kind === 'unix') base = { socketPath: address.socketPath };
  else if (!address.tls) base = { host: address.host, ...(address.port === undefined ? {} : { port: address.port }) };
  else {
    const https = await import('node:https');
    const certs = address.certPath;
    const read = (name: string) => (certs ? readFileSync(join(certs, name)) : undefined);
    base = { host: address.host, ...(address.port === undefined ? {} : { port: address.port }), ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
    send = https.request;
  }
  // One kept-alive connection for the handful of calls a build makes (an idle one never holds the process).
  const agent = new HttpAgent({ keepAlive: true });
  return {
    request(method, path, { query, json } = {}) {
      return new Promise((resolve, reject) => {
        const body = json === undefined ? undefined : JSON.stringify(json);
        const target = query ? `${path}?${new URLSearchParams(query).toString()}` : path;
        const headers = body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
        const request = send({ ...base, ...(address.kind === 'tcp' && address.tls ? {} : { agent }), method, path: target, headers }, (response) => {
          answered(response).then(resolve, reject);
        });
        request.on('error', reject);
        request.end(body);
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
