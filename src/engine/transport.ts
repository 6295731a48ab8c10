import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { RequestOptions } from 'node:https';
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

/** Where DOCKER_HOST points, read as docker-modem reads it; undefined for what only dockerode speaks (ssh, npipe). */
export type EngineAddress =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly tls: boolean; readonly certPath?: string };

export function engineAddress(env: NodeJS.ProcessEnv): EngineAddress | undefined {
  const host = env.DOCKER_HOST ?? '';
  if (host === '') return { kind: 'unix', socketPath: '/var/run/docker.sock' };
  if (host.startsWith('unix://')) return { kind: 'unix', socketPath: host.slice('unix://'.length) || '/var/run/docker.sock' };
  let url: URL;
  try {
    url = new URL(host.includes('//') ? host : `tcp://${host}`);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'tcp:' && url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  const tls = env.DOCKER_TLS_VERIFY === '1' || url.port === '2376' || url.protocol === 'https:';
  const port = Number(url.port || (tls ? 2376 : 2375));
  return { kind: 'tcp', host: url.hostname, port, tls, ...(env.DOCKER_CERT_PATH ? { certPath: env.DOCKER_CERT_PATH } : {}) };
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
  else if (!address.tls) base = { host: address.host, port: address.port };
  else {
    const https = await import('node:https');
    const certs = address.certPath;
    const read = (name: string) => (certs ? readFileSync(join(certs, name)) : undefined);
    base = { host: address.host, port: address.port, ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
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

/** The same calls through dockerode's modem, for the transports only it speaks (ssh://, npipe://). */
export function modemTransport(docker: () => Promise<Docker>): EngineTransport {
  return {
    async request(method, path, options = {}) {
      const { modem } = await docker();
      return new Promise((resolve, reject) =>
        modem.dial(
          // The modem appends _query to a path ending in '?' and sends _body (when not empty) as JSON.
          { path: `${path}?`, method, options: { _query: options.query ?? {}, _body: options.json ?? {} }, isStream: true, statusCodes: { 200: true, 201: true, 204: true } },
          (dialError, response) => {
            const error = dialError as (Error & { statusCode?: number; json?: unknown }) | null;
            if (!error) answered(response as IncomingMessage).then(resolve, reject);
            else if (error.statusCode !== undefined) resolve({ status: error.statusCode, body: Buffer.from(JSON.stringify(error.json ?? { message: error.message })) });
            else reject(error);
          },
        ),
      );
    },
  };
}
