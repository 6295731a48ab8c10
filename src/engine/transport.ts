import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { failure, type UserError } from '../errors.js';

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
 * How long a request/answer call waits for the engine's next byte: to connect, to answer, and between
 * the parts of its answer. These calls answer in milliseconds; only a hung engine is this silent.
 */
export const ENGINE_ANSWER_TIMEOUT_MS = 60_000;

export interface TransportOptions {
  /** The engine as messages name it (DOCKER_HOST); by default, its address. */
  readonly endpoint?: string;
  /** Milliseconds of silence after which a call fails (ENGINE_ANSWER_TIMEOUT_MS; tests make it short). */
  readonly timeoutMs?: number;
}

/**
 * Where DOCKER_HOST points, read exactly as docker-modem reads it, so this transport and dockerode
 * always reach the same engine. Undefined for what is left to dockerode: ssh://, npipe://, other schemes,
 * and Windows' default pipe.
 */
export type EngineAddress =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | {
      readonly kind: 'tcp';
      readonly host: string;
      readonly port?: number;
      readonly tls: boolean;
      readonly certPath?: string;
    };

export function engineAddress(
  env: NodeJS.ProcessEnv,
  home = homedir(),
  platform = process.platform,
): EngineAddress | undefined {
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

/** The address as DOCKER_HOST would name it, for messages. */
function describeAddress(address: EngineAddress): string {
  if (address.kind === 'unix') return `unix://${address.socketPath}`;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `tcp://${host}${address.port === undefined ? '' : `:${address.port}`}`;
}

/** The one line a silent engine fails a call with (a failure: exit 1). */
function silent(endpoint: string, timeoutMs: number, call: string, answering: boolean): UserError {
  const span = timeoutMs % 1000 === 0 ? `${timeoutMs / 1000} s` : `${timeoutMs} ms`;
  return failure(
    answering
      ? `the Docker engine at ${endpoint} stopped for ${span} in the middle of its answer (${call})`
      : `the Docker engine at ${endpoint} did not answer within ${span} (${call})`,
  );
}

/** The answer's status and its whole body. */
function answered(response: IncomingMessage): Promise<EngineResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
    response.on('error', reject);
  });
}

/**
 * node:http straight to the engine (node:https with DOCKER_CERT_PATH's ca.pem, cert.pem and key.pem, as
 * docker-modem does), one connection per call: nothing idle is left to hold the process once answered.
 */
export async function httpTransport(address: EngineAddress, options: TransportOptions = {}): Promise<EngineTransport> {
  const endpoint = options.endpoint ?? describeAddress(address);
  const timeoutMs = options.timeoutMs ?? ENGINE_ANSWER_TIMEOUT_MS;
  let send = httpRequest;
  let base: RequestOptions;
  if (address.kind === 'unix') base = { socketPath: address.socketPath };
  else {
    base = { host: address.host, ...(address.port === undefined ? {} : { port: address.port }) };
    if (address.tls) {
      // Loaded for TLS engines only.
      const https = await import('node:https');
      const certs = address.certPath;
      const read = (name: string) => (certs ? readFileSync(join(certs, name)) : undefined);
      base = { ...base, ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
      send = https.request;
    }
  }
  return {
    request(method, path, { query, json } = {}) {
      const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
      const target = query ? `${path}?${new URLSearchParams(query).toString()}` : path;
      const headers = body ? { 'Content-Type': 'application/json', 'Content-Length': body.length } : {};
      const call = `${method} ${path}`;
      return new Promise((resolve, reject) => {
        let answering = false;
        // agent: false is a connection of its own, closed with the answer (Connection: close). The timeout
        // is the socket's: it counts from the connect and restarts with every byte the engine sends.
        const request = send({ ...base, agent: false, method, path: target, headers, timeout: timeoutMs });
        request.on('response', (response: IncomingMessage) => {
          answering = true;
          // Node says 'aborted'; what happened is the engine hanging up in the middle of its answer.
          const cut = `the Docker engine at ${endpoint} closed the connection in the middle of its answer (${call})`;
          answered(response).then(resolve, () => reject(failure(cut)));
        });
        request.on('timeout', () => {
          reject(silent(endpoint, timeoutMs, call, answering));
          request.destroy();
        });
        request.on('error', reject);
        request.end(body);
      });
    },
  };
}

const EVERY_STATUS: Record<number, true> = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [100 + i, true]));

/**
 * The same calls through dockerode's modem, for the transports only it speaks (ssh://, npipe://), with
 * the same limit on silence: a timer restarted by every part of the answer, which aborts the call.
 */
export function modemTransport(docker: () => Promise<Docker>, options: TransportOptions = {}): EngineTransport {
  const endpoint = options.endpoint ?? 'DOCKER_HOST';
  const timeoutMs = options.timeoutMs ?? ENGINE_ANSWER_TIMEOUT_MS;
  return {
    async request(method, path, parts = {}) {
      const { modem } = await docker();
      const call = `${method} ${path}`;
      return new Promise((resolve, reject) => {
        const abort = new AbortController();
        let answering = false;
        let timer: NodeJS.Timeout | undefined;
        const done = () => clearTimeout(timer);
        const watch = () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            reject(silent(endpoint, timeoutMs, call, answering));
            abort.abort();
          }, timeoutMs);
        };
        watch();
        modem.dial(
          {
            // The modem appends _query to a path ending in '?' and sends _body (when not empty) as JSON.
            // Every status accepted, so the answer comes back as it is (an error would fold its body into
            // a message).
            path: `${path}?`,
            method,
            options: { _query: parts.query ?? {}, _body: parts.json ?? {} },
            isStream: true,
            statusCodes: EVERY_STATUS,
            abortSignal: abort.signal,
          },
          (error, response) => {
            if (error) {
              done();
              reject(error);
              return;
            }
            const stream = response as IncomingMessage;
            answering = true;
            watch();
            stream.on('data', watch);
            abort.signal.addEventListener('abort', () => stream.destroy());
            answered(stream).finally(done).then(resolve, reject);
          },
        );
      });
    },
  };
}
