import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ENGINE_ANSWER_TIMEOUT_MS,
  engineAddress,
  httpTransport,
  modemTransport,
  type EngineAddress,
  type EngineTransport,
  type TransportOptions,
} from '../src/engine/transport.js';
import { EXIT_FAILURE, UserError } from '../src/errors.js';

const run = promisify(execFile);
const projectRoot = fileURLToPath(new URL('..', import.meta.url));
const transportModule = fileURLToPath(new URL('../src/engine/transport.ts', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'mh-transport-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('engineAddress (read as docker-modem reads DOCKER_HOST)', () => {
  const noHome = join(tmpdir(), 'mh-no-such-home');
  const address = (env: NodeJS.ProcessEnv) => engineAddress(env, noHome, 'linux');
  const unixDefault = { kind: 'unix', socketPath: '/var/run/docker.sock' };

  it('is the default unix socket when DOCKER_HOST is unset, empty or unix:// without a path', () => {
    expect(address({})).toStrictEqual(unixDefault);
    expect(address({ DOCKER_HOST: '' })).toStrictEqual(unixDefault);
    expect(address({ DOCKER_HOST: 'unix://' })).toStrictEqual(unixDefault);
  });

  it("prefers the user's Docker Desktop socket when there is one; leaves Windows' default pipe to dockerode", () => {
    const home = mkdtempSync(join(tmpdir(), 'mh-home-'));
    try {
      mkdirSync(join(home, '.docker', 'run'), { recursive: true });
      writeFileSync(join(home, '.docker', 'run', 'docker.sock'), '');
      const desktop = join(home, '.docker', 'run', 'docker.sock');
      expect(engineAddress({}, home, 'linux')).toStrictEqual({ kind: 'unix', socketPath: desktop });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    expect(engineAddress({}, noHome, 'win32')).toBeUndefined();
  });

  it('is the unix:// path as given; TLS settings mean nothing for a socket', () => {
    expect(address({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toStrictEqual({
      kind: 'unix',
      socketPath: '/run/user/1000/docker.sock',
    });
    const withTls = { DOCKER_HOST: 'unix:///s.sock', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' };
    expect(address(withTls)).toStrictEqual({ kind: 'unix', socketPath: '/s.sock' });
  });

  it("is plain TCP for tcp:// and a bare host:port; without a port, the protocol's own", () => {
    const tcp = (host: string, port?: number) => ({ kind: 'tcp', host, ...(port ? { port } : {}), tls: false });
    expect(address({ DOCKER_HOST: 'tcp://10.0.0.2:2375' })).toStrictEqual(tcp('10.0.0.2', 2375));
    expect(address({ DOCKER_HOST: 'localhost:2375' })).toStrictEqual(tcp('localhost', 2375));
    expect(address({ DOCKER_HOST: 'tcp://engine.example' })).toStrictEqual(tcp('engine.example'));
    expect(address({ DOCKER_HOST: 'tcp://[::1]:2375' })).toStrictEqual(tcp('::1', 2375));
  });

  it('is TLS on port 2376 or with DOCKER_TLS_VERIFY=1 (only 1) whatever the port', () => {
    const tcp = (port: number | undefined, tls: boolean) => ({
      kind: 'tcp',
      host: 'h',
      ...(port ? { port } : {}),
      tls,
    });
    expect(address({ DOCKER_HOST: 'tcp://h:2376' })).toStrictEqual(tcp(2376, true));
    expect(address({ DOCKER_HOST: 'h:2376' })).toStrictEqual(tcp(2376, true));
    expect(address({ DOCKER_HOST: 'tcp://h:2375', DOCKER_TLS_VERIFY: '1' })).toStrictEqual(tcp(2375, true));
    expect(address({ DOCKER_HOST: 'tcp://h', DOCKER_TLS_VERIFY: '1' })).toStrictEqual(tcp(undefined, true));
    expect(address({ DOCKER_HOST: 'tcp://h:2375', DOCKER_TLS_VERIFY: '0' })).toStrictEqual(tcp(2375, false));
  });

  it('carries DOCKER_CERT_PATH, and has no certPath without it', () => {
    const certPath = '/home/u/.docker/machine/certs';
    expect(address({ DOCKER_HOST: 'tcp://h:2376', DOCKER_CERT_PATH: certPath })).toStrictEqual({
      kind: 'tcp',
      host: 'h',
      port: 2376,
      tls: true,
      certPath,
    });
    expect(address({ DOCKER_HOST: 'tcp://h:2376', DOCKER_CERT_PATH: '' })).not.toHaveProperty('certPath');
  });

  it('is undefined for what is left to dockerode (ssh, npipe, http(s), fd, other schemes) and a bad host', () => {
    const elsewhere = [
      'ssh://me@engine.example',
      'ssh://me@engine.example:2222',
      'npipe:////./pipe/docker_engine',
      'npipe://',
      'fd://',
      'http://h:8080',
      'https://h:3000',
      'tcp://[bad',
      '[bad',
    ];
    for (const host of elsewhere) expect(address({ DOCKER_HOST: host }), host).toBeUndefined();
  });
});

/** One request as the fake engine saw it. */
interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly socket: Socket;
}

/** The pieces /chunked answers with, written apart: binary bytes, and a UTF-8 character split across two. */
const CHUNKS = [Buffer.from('abc'), Buffer.from([0, 0xff, 0xc3]), Buffer.from([0xa9]), Buffer.from('z')];
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fake engine's answer to what it was asked, on the paths below; anything else is echoed as JSON. */
async function answer(request: IncomingMessage, body: string, response: ServerResponse): Promise<void> {
  const url = request.url ?? '';
  // Routed on the path alone: dockerode's modem sends a bare '?' after it.
  const route = url.split('?')[0] ?? url;
  const status = /^\/status\/(\d{3})/.exec(url)?.[1];
  if (status) {
    response.writeHead(Number(status), { 'Content-Type': 'application/json' });
    response.end(JSON.stringify({ message: `answered ${status}` }));
  } else if (route === '/chunked') {
    // Explicitly chunked, each piece its own chunk on the wire.
    response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' });
    for (const chunk of CHUNKS) {
      response.write(chunk);
      await pause(20);
    }
    response.end();
  } else if (route.startsWith('/silent')) {
    // Accepted and read, never answered: a hung engine.
  } else if (route === '/stall') {
    // The head and part of the body, then nothing.
    response.writeHead(200, { 'Content-Length': '10' });
    response.write('01234');
  } else if (route === '/trickle') {
    // Slow but never silent for long: 8 pieces 60 ms apart.
    response.writeHead(200, { 'Content-Type': 'text/plain' });
    for (let i = 0; i < 8; i += 1) {
      response.write(String(i));
      await pause(60);
    }
    response.end();
  } else if (route === '/cut') {
    // Hangs up half-way through the body it announced.
    response.writeHead(200, { 'Content-Length': '10' });
    response.write('01234', () => response.socket?.destroy());
  } else {
    response.writeHead(200, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify({ method: request.method, url, body }));
  }
}

/** A fake engine: records every request and every connection, and answers as `answer` says. */
function fakeEngine(server: Server = createServer()) {
  const seen: Seen[] = [];
  const connections: Socket[] = [];
  // As the engine: an idle kept-alive connection stays open until the client closes it.
  server.keepAliveTimeout = 0;
  server.on('connection', (socket: Socket) => connections.push(socket));
  server.on('secureConnection', (socket: Socket) => connections.push(socket));
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const { method = '', url = '', headers, socket } = request;
      seen.push({ method, url, headers, body, socket });
      void answer(request, body, response);
    });
  });
  return { server, seen, connections };
}

/** Listening on a unix socket path, or on an ephemeral port of 127.0.0.1. */
const listening = (server: Server, socketPath?: string) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (socketPath !== undefined) server.listen(socketPath, () => resolve());
    else server.listen(0, '127.0.0.1', () => resolve());
  });
/** Closed, whatever its connections are doing (a silent route never ends its own). */
const closed = (server: Server) =>
  new Promise<void>((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
const portOf = (server: Server) => (server.address() as AddressInfo).port;
const json = (body: Buffer) => JSON.parse(body.toString('utf8')) as unknown;

/** The error a call fails with, and how long it took to. */
async function failing(call: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  const error = await call.then(
    () => new Error('the call succeeded'),
    (failed: unknown) => failed,
  );
  return { error, ms: performance.now() - started };
}

/** A failure (exit 1) whose message is this one line. */
function expectFailureLine(error: unknown, message: string): void {
  expect(error).toBeInstanceOf(UserError);
  expect((error as UserError).exitCode).toBe(EXIT_FAILURE);
  expect((error as UserError).message).toBe(message);
  expect((error as UserError).message).not.toContain('\n');
}

const childLimit = 15_000;
/**
 * Runs httpTransport in a child process (through tsx) that makes three calls and then has nothing left
 * to do: it must exit by itself, although the engine (this process) keeps idle connections forever.
 */
async function exitsOnItsOwn(address: EngineAddress): Promise<{ statuses: number[] }> {
  const script = `
    const { httpTransport } = await import(process.env.TRANSPORT_MODULE);
    const transport = await httpTransport(JSON.parse(process.env.ENGINE_ADDRESS));
    const statuses = [];
    for (const path of ['/_ping', '/status/404', '/_ping']) {
      statuses.push((await transport.request('GET', path)).status);
    }
    console.log(JSON.stringify(statuses));
  `;
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx/esm', '--input-type=module', '-e', script], {
      cwd: projectRoot,
      env: { ...process.env, TRANSPORT_MODULE: transportModule, ENGINE_ADDRESS: JSON.stringify(address) },
      timeout: childLimit,
      killSignal: 'SIGKILL',
    });
    return { statuses: JSON.parse(stdout.trim()) as number[] };
  } catch (error) {
    const failed = error as Error & { killed?: boolean; stdout?: string; stderr?: string };
    if (failed.killed) {
      const printed = JSON.stringify(failed.stdout);
      throw new Error(`the process did not exit by itself within ${childLimit} ms of its calls (printed ${printed})`);
    }
    throw new Error(`the child process failed: ${failed.stderr || failed.message}`);
  }
}

describe('httpTransport over a unix socket', () => {
  let dir: string;
  let socketPath: string;
  let engine: ReturnType<typeof fakeEngine>;

  beforeAll(() => {
    dir = mkdtempSync(join(scratch, 'unix-'));
  });

  afterEach(async () => {
    await closed(engine.server);
  });

  const start = async (name: string, options?: TransportOptions) => {
    engine = fakeEngine();
    socketPath = join(dir, `${name}.sock`);
    await listening(engine.server, socketPath);
    return httpTransport({ kind: 'unix', socketPath }, options);
  };

  it('resolves a JSON answer with its status and body', async () => {
    const transport = await start('json-answer');
    const answer = await transport.request('GET', '/images/memcached:1/json');
    expect(answer.status).toBe(200);
    expect(Buffer.isBuffer(answer.body)).toBe(true);
    expect(json(answer.body)).toEqual({ method: 'GET', url: '/images/memcached:1/json', body: '' });
  });

  it('sends the method, the path and the URL-encoded query', async () => {
    const transport = await start('query');
    const query = { path: '/etc/memcached/sasl db', repo: 'registry.example:5000/team/memcached' };
    const answer = await transport.request('GET', '/containers/abc/archive', { query });
    expect(answer.status).toBe(200);
    expect(engine.seen).toHaveLength(1);
    const [seen] = engine.seen;
    expect(seen!.method).toBe('GET');
    expect(seen!.url).toBe(
      '/containers/abc/archive?path=%2Fetc%2Fmemcached%2Fsasl+db&repo=registry.example%3A5000%2Fteam%2Fmemcached',
    );
    // What the engine's Go side decodes it to.
    expect(Object.fromEntries(new URL(seen!.url, 'http://engine').searchParams)).toEqual(query);
    // No body, and nothing says there is one.
    expect(seen!.body).toBe('');
    expect(seen!.headers['content-type']).toBeUndefined();
  });

  it('sends the path alone when there is no query', async () => {
    const transport = await start('no-query');
    await transport.request('DELETE', '/images/sha256:abc');
    expect(engine.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['DELETE /images/sha256:abc']);
  });

  it('sends a JSON body with its Content-Type and byte length (multi-byte text included)', async () => {
    const transport = await start('json-body');
    const create = { Image: 'sha256:abc', Cmd: ['true'], Labels: { note: 'ünïcödé ✓' } };
    const answer = await transport.request('POST', '/containers/create', { json: create });
    const [seen] = engine.seen;
    const sent = JSON.stringify(create);
    expect(seen!.method).toBe('POST');
    expect(seen!.headers['content-type']).toBe('application/json');
    expect(seen!.headers['content-length']).toBe(String(Buffer.byteLength(sent)));
    expect(Buffer.byteLength(sent)).toBeGreaterThan(sent.length);
    expect(JSON.parse(seen!.body)).toEqual(create);
    expect(json(answer.body)).toEqual({ method: 'POST', url: '/containers/create', body: sent });
  });

  it('resolves a chunked answer with every byte of every chunk, in order', async () => {
    const transport = await start('chunked');
    const answer = await transport.request('GET', '/chunked');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(Buffer.concat(CHUNKS));
    expect(answer.body.toString('utf8')).toBe('abc\u0000\ufffdéz');
  });

  it('resolves non-2xx answers with their status and body instead of rejecting', async () => {
    const transport = await start('statuses');
    const missing = await transport.request('GET', '/status/404');
    expect(missing.status).toBe(404);
    expect(json(missing.body)).toEqual({ message: 'answered 404' });
    const broken = await transport.request('POST', '/status/500', { json: {} });
    expect(broken.status).toBe(500);
    expect(json(broken.body)).toEqual({ message: 'answered 500' });
  });

  it('rejects with the connection error when nothing listens at the socket', async () => {
    engine = fakeEngine();
    const transport = await httpTransport({ kind: 'unix', socketPath: join(dir, 'absent.sock') });
    await expect(transport.request('GET', '/_ping')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('makes each request on a connection of its own, which is closed after the answer', async () => {
    const transport = await start('one-connection-each');
    const paths = ['/_ping', '/status/404', '/images/x/json', '/status/500', '/_ping'];
    const statuses = [];
    for (const path of paths) statuses.push((await transport.request('GET', path)).status);
    expect(statuses).toEqual([200, 404, 200, 500, 200]);
    expect(engine.seen.map((s) => s.url)).toEqual(paths);
    expect(new Set(engine.seen.map((s) => s.socket)).size).toBe(5);
    expect(engine.seen.every((s) => s.headers.connection === 'close')).toBe(true);
    expect(engine.seen.every((s) => s.socket.destroyed || s.socket.readableEnded)).toBe(true);
  });

  it('lets the process exit once answered', { timeout: 30_000 }, async () => {
    await start('exit');
    const { statuses } = await exitsOnItsOwn({ kind: 'unix', socketPath });
    expect(statuses).toEqual([200, 404, 200]);
  });

  describe('an engine that stops answering', () => {
    it('fails the call with one line (exit 1) once it has said nothing for the timeout', async () => {
      const transport = await start('silent', { timeoutMs: 300 });
      const { error, ms } = await failing(transport.request('GET', '/silent/images/x/json', { query: { a: 'b' } }));
      expectFailureLine(
        error,
        `the Docker engine at unix://${socketPath} did not answer within 300 ms (GET /silent/images/x/json)`,
      );
      expect(ms).toBeGreaterThanOrEqual(290);
      expect(ms).toBeLessThan(5_000);
      // The request was made, then given up: its connection closed, nothing left behind.
      expect(engine.seen.map((s) => s.url)).toEqual(['/silent/images/x/json?a=b']);
      const [connection] = engine.connections;
      if (!connection!.closed) await once(connection!, 'close');
    });

    it('names the engine as it is told to, and counts whole seconds as seconds', async () => {
      const transport = await start('named', { endpoint: 'unix:///as/DOCKER_HOST/says', timeoutMs: 1_000 });
      const { error } = await failing(transport.request('POST', '/silent', { json: { x: 1 } }));
      const message = 'the Docker engine at unix:///as/DOCKER_HOST/says did not answer within 1 s (POST /silent)';
      expectFailureLine(error, message);
    });

    it('fails the call when the engine goes silent in the middle of its answer', async () => {
      const transport = await start('stall', { timeoutMs: 300 });
      const { error, ms } = await failing(transport.request('GET', '/stall'));
      expectFailureLine(
        error,
        `the Docker engine at unix://${socketPath} stopped for 300 ms in the middle of its answer (GET /stall)`,
      );
      expect(ms).toBeGreaterThanOrEqual(290);
    });

    it('counts silence, not the whole call: a slow answer that keeps coming is read to its end', async () => {
      // 8 pieces 60 ms apart take longer than the 300 ms allowed, but no gap is that long.
      const transport = await start('trickle', { timeoutMs: 300 });
      const started = performance.now();
      const answer = await transport.request('GET', '/trickle');
      expect(performance.now() - started).toBeGreaterThan(400);
      expect(answer.body.toString()).toBe('01234567');
    });

    it('fails the call when the engine hangs up in the middle of its answer', async () => {
      const transport = await start('cut');
      const { error } = await failing(transport.request('GET', '/cut'));
      expectFailureLine(
        error,
        `the Docker engine at unix://${socketPath} closed the connection in the middle of its answer (GET /cut)`,
      );
    });
  });
});

describe('httpTransport over TCP', () => {
  let engine: ReturnType<typeof fakeEngine>;
  afterEach(async () => closed(engine.server));

  it('reaches an engine on 127.0.0.1 at the port DOCKER_HOST names', async () => {
    engine = fakeEngine();
    await listening(engine.server);
    const port = portOf(engine.server);
    const address = engineAddress({ DOCKER_HOST: `tcp://127.0.0.1:${port}` });
    expect(address).toStrictEqual({ kind: 'tcp', host: '127.0.0.1', port, tls: false });
    const transport = await httpTransport(address!);
    const query = { repo: 'memcached', tag: 'v1' };
    const answer = await transport.request('POST', '/images/sha256:abc/tag', { query, json: { x: 1 } });
    expect(answer.status).toBe(200);
    const url = '/images/sha256:abc/tag?repo=memcached&tag=v1';
    expect(json(answer.body)).toEqual({ method: 'POST', url, body: '{"x":1}' });
    expect(engine.seen[0]!.headers.host).toBe(`127.0.0.1:${port}`);
    expect((await transport.request('GET', '/status/404')).status).toBe(404);
  });

  it('names the address in the timeout', async () => {
    engine = fakeEngine();
    await listening(engine.server);
    const port = portOf(engine.server);
    const transport = await httpTransport({ kind: 'tcp', host: '127.0.0.1', port, tls: false }, { timeoutMs: 200 });
    const { error } = await failing(transport.request('DELETE', '/silent'));
    const message = `the Docker engine at tcp://127.0.0.1:${port} did not answer within 200 ms (DELETE /silent)`;
    expectFailureLine(error, message);
  });

  it('lets the process exit once answered', { timeout: 30_000 }, async () => {
    engine = fakeEngine();
    await listening(engine.server);
    const address = { kind: 'tcp', host: '127.0.0.1', port: portOf(engine.server), tls: false } as const;
    const { statuses } = await exitsOnItsOwn(address);
    expect(statuses).toEqual([200, 404, 200]);
  });
});

/** CAs and the leaf certificates they sign, made with the openssl command (EC P-256: quick to make). */
function openssl(cwd: string, ...args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const failed = error as Error & { stderr?: Buffer };
    const why = failed.stderr?.toString().trim() || failed.message;
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed (certificates for the TLS tests): ${why}`);
  }
}

const opensslConfig = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): void {
  const files = ['-keyout', `${name}-key.pem`, '-out', `${name}.pem`];
  const subject = ['-days', '2', '-subj', `/CN=${name}`];
  openssl(dir, 'req', '-x509', '-config', 'openssl.cnf', '-extensions', 'ca', ...ecKey, ...files, ...subject);
}

function makeLeaf(dir: string, ca: string, name: string, extensions: 'server' | 'client', serial: string): void {
  const request = ['-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`];
  openssl(dir, 'req', '-new', '-config', 'openssl.cnf', ...ecKey, ...request);
  const signer = ['-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-set_serial', serial, '-days', '2'];
  const extras = ['-extfile', 'openssl.cnf', '-extensions', extensions];
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, ...signer, ...extras, '-out', `${name}.pem`);
}

describe('httpTransport over TLS with a client certificate', () => {
  const dir = join(scratch, 'tls');
  /** A DOCKER_CERT_PATH folder: ca.pem, cert.pem, key.pem. */
  const certPathOf = (name: string, files: { ca: string; cert: string; key: string }) => {
    const folder = join(dir, name);
    mkdirSync(folder, { recursive: true });
    const targets = { 'ca.pem': files.ca, 'cert.pem': files.cert, 'key.pem': files.key };
    for (const [target, source] of Object.entries(targets)) {
      writeFileSync(join(folder, target), readFileSync(join(dir, source)));
    }
    return folder;
  };
  let good: string;
  let foreignClient: string;
  let foreignServerCa: string;
  let engine: ReturnType<typeof fakeEngine>;
  let port: number;
  /** Why the engine broke off handshakes. */
  const refusals: string[] = [];

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'openssl.cnf'), opensslConfig);
    makeCa(dir, 'engine-ca');
    makeCa(dir, 'other-ca');
    makeLeaf(dir, 'engine-ca', 'server', 'server', '0x01');
    makeLeaf(dir, 'engine-ca', 'client', 'client', '0x02');
    makeLeaf(dir, 'other-ca', 'stranger', 'client', '0x03');
    good = certPathOf('good', { ca: 'engine-ca.pem', cert: 'client.pem', key: 'client-key.pem' });
    // Trusts the engine, but its client certificate comes from a CA the engine does not know.
    foreignClient = certPathOf('foreign-client', {
      ca: 'engine-ca.pem',
      cert: 'stranger.pem',
      key: 'stranger-key.pem',
    });
    // A valid client certificate, but the engine's certificate is not from the CA it trusts.
    foreignServerCa = certPathOf('foreign-server-ca', {
      ca: 'other-ca.pem',
      cert: 'client.pem',
      key: 'client-key.pem',
    });
    const server = createHttpsServer({
      key: readFileSync(join(dir, 'server-key.pem')),
      cert: readFileSync(join(dir, 'server.pem')),
      ca: readFileSync(join(dir, 'engine-ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
    });
    // A refused client certificate ends the handshake with a hang-up: the reason is on the socket.
    server.on('tlsClientError', (error: Error, socket: TLSSocket) =>
      refusals.push(String(socket.authorizationError ?? error.message)),
    );
    engine = fakeEngine(server);
    await listening(engine.server);
    port = portOf(engine.server);
  });

  afterAll(async () => closed(engine.server));

  const tls = (certPath: string): EngineAddress => ({ kind: 'tcp', host: '127.0.0.1', port, tls: true, certPath });

  it('answers a client presenting a certificate from the CA the engine trusts', async () => {
    const transport = await httpTransport(tls(good));
    const answer = await transport.request('GET', '/version', { query: { a: 'b' } });
    expect(answer.status).toBe(200);
    expect(json(answer.body)).toEqual({ method: 'GET', url: '/version?a=b', body: '' });
    expect((await transport.request('POST', '/status/404', { json: { k: 'v' } })).status).toBe(404);
    expect((await transport.request('GET', '/chunked')).body).toEqual(Buffer.concat(CHUNKS));
    expect(engine.seen.map((s) => s.url)).toEqual(['/version?a=b', '/status/404', '/chunked']);
  });

  it('is refused with a client certificate from another CA', async () => {
    const before = engine.seen.length;
    const transport = await httpTransport(tls(foreignClient));
    const refusedBefore = refusals.length;
    // Under TLS 1.3 the client learns of it after its own side of the handshake: a reset, the alert, or
    // a connection closed without an answer.
    await expect(transport.request('GET', '/version')).rejects.toThrow(/ECONNRESET|alert|EPIPE|socket hang up/i);
    expect(engine.seen).toHaveLength(before);
    // The engine's side says why: it could not verify the client's certificate.
    expect(refusals.slice(refusedBefore)).toEqual(['UNABLE_TO_VERIFY_LEAF_SIGNATURE']);
  });

  it('refuses an engine whose certificate is not from ca.pem', async () => {
    const before = engine.seen.length;
    const transport = await httpTransport(tls(foreignServerCa));
    await expect(transport.request('GET', '/version')).rejects.toThrow(/certificate/i);
    expect(engine.seen).toHaveLength(before);
  });

  it('fails a call the engine never answers, after the handshake', async () => {
    const transport = await httpTransport(tls(good), { timeoutMs: 300 });
    const { error } = await failing(transport.request('GET', '/silent'));
    expectFailureLine(error, `the Docker engine at tcp://127.0.0.1:${port} did not answer within 300 ms (GET /silent)`);
  });

  it('lets the process exit once answered', { timeout: 30_000 }, async () => {
    const before = engine.seen.length;
    const { statuses } = await exitsOnItsOwn(tls(good));
    expect(statuses).toEqual([200, 404, 200]);
    expect(engine.seen.length - before).toBe(3);
  });

  it('rejects when DOCKER_CERT_PATH lacks the files', async () => {
    await expect(httpTransport(tls(join(dir, 'absent')))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('modemTransport', () => {
  interface Dialed {
    path: string;
    method: string;
    options: { _query: unknown; _body: unknown };
    isStream: boolean;
    statusCodes: Record<number, boolean>;
    abortSignal: AbortSignal;
  }
  type Callback = (error: unknown, response?: unknown) => void;
  /** A dockerode whose modem records each dial and answers with `answer`. */
  const fakeDocker = (answer: (callback: Callback) => void, timeoutMs?: number) => {
    const dialed: Dialed[] = [];
    let loads = 0;
    const docker = {
      modem: {
        dial(options: Dialed, callback: Callback) {
          dialed.push(options);
          answer(callback);
        },
      },
    } as unknown as Docker;
    const load = async () => {
      loads += 1;
      return docker;
    };
    const endpoint = 'ssh://me@engine.example';
    const transport = modemTransport(load, { endpoint, ...(timeoutMs ? { timeoutMs } : {}) });
    return { transport, dialed, loads: () => loads };
  };
  const stream = (status: number, ...chunks: Buffer[]) => Object.assign(Readable.from(chunks), { statusCode: status });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('dials path? with the query and body for the modem to send, as a stream', async () => {
    const created = Buffer.from('{"Id":"c1"}');
    const { transport, dialed, loads } = fakeDocker((callback) => callback(null, stream(201, created)));
    const create = { Image: 'sha256:abc' };
    const answer = await transport.request('POST', '/containers/create', { query: { name: 'x' }, json: create });
    expect(answer).toEqual({ status: 201, body: created });
    await transport.request('GET', '/images/memcached:1/json');
    expect(dialed).toMatchObject([
      {
        path: '/containers/create?',
        method: 'POST',
        options: { _query: { name: 'x' }, _body: create },
        isStream: true,
      },
      { path: '/images/memcached:1/json?', method: 'GET', options: { _query: {}, _body: {} }, isStream: true },
    ]);
    // Every status is an answer to hand back, not an error for the modem to reword.
    for (const status of [100, 200, 204, 304, 404, 409, 500, 599]) {
      expect(dialed[0]!.statusCodes[status], String(status)).toBe(true);
    }
    expect(dialed.every((d) => !d.abortSignal.aborted)).toBe(true);
    expect(loads()).toBe(2);
  });

  it("resolves a success with every byte of the modem's stream", async () => {
    const chunks = [Buffer.from('ab'), Buffer.from([0, 255]), Buffer.alloc(0), Buffer.from('z')];
    const { transport } = fakeDocker((callback) => callback(null, stream(200, ...chunks)));
    const answer = await transport.request('GET', '/containers/c1/archive', { query: { path: '/f' } });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(Buffer.from([0x61, 0x62, 0, 255, 0x7a]));
  });

  it('rejects with an error that carries no status (the connection failed)', async () => {
    const error = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const { transport } = fakeDocker((callback) => callback(error));
    await expect(transport.request('GET', '/_ping')).rejects.toBe(error);
  });

  it('rejects when dockerode cannot be had', async () => {
    const transport = modemTransport(() => Promise.reject(new Error('cannot use DOCKER_HOST')));
    await expect(transport.request('GET', '/_ping')).rejects.toThrow('cannot use DOCKER_HOST');
  });

  it(`fails a call not answered within ${ENGINE_ANSWER_TIMEOUT_MS / 1000} s by default, and aborts it`, async () => {
    vi.useFakeTimers();
    expect(ENGINE_ANSWER_TIMEOUT_MS).toBe(60_000);
    const { transport, dialed } = fakeDocker(() => undefined);
    let outcome: unknown;
    const call = transport.request('GET', '/images/x/json').then(
      () => (outcome = 'answered'),
      (error: unknown) => (outcome = error),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(dialed).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(ENGINE_ANSWER_TIMEOUT_MS - 1);
    expect(outcome).toBeUndefined();
    expect(dialed[0]!.abortSignal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await call;
    expectFailureLine(
      outcome,
      'the Docker engine at ssh://me@engine.example did not answer within 60 s (GET /images/x/json)',
    );
    expect(dialed[0]!.abortSignal.aborted).toBe(true);
  });

  it('fails a call whose answer stops half-way, and destroys that answer', async () => {
    const body = new Readable({ read() {} });
    body.push('part');
    const answering = (callback: Callback) => callback(null, Object.assign(body, { statusCode: 200 }));
    const { transport, dialed } = fakeDocker(answering, 200);
    const { error } = await failing(transport.request('GET', '/containers/c1/archive'));
    expectFailureLine(
      error,
      'the Docker engine at ssh://me@engine.example stopped for 200 ms in the middle of its answer ' +
        '(GET /containers/c1/archive)',
    );
    expect(dialed[0]!.abortSignal.aborted).toBe(true);
    expect(body.destroyed).toBe(true);
  });

  it('counts silence, not the whole call: a slow answer that keeps coming is read to its end', async () => {
    const body = new Readable({ read() {} });
    // 6 pieces 80 ms apart take longer than the 300 ms allowed, but no gap is that long.
    const { transport } = fakeDocker((callback) => callback(null, Object.assign(body, { statusCode: 200 })), 300);
    const call = transport.request('GET', '/trickle');
    for (let i = 0; i < 6; i += 1) {
      await pause(80);
      body.push(String(i));
    }
    body.push(null);
    expect((await call).body.toString()).toBe('012345');
  });

  describe("through dockerode's own modem, to the fake engine", () => {
    let engine: ReturnType<typeof fakeEngine>;
    let socketPath: string;
    let viaHttp: EngineTransport;
    beforeAll(async () => {
      engine = fakeEngine();
      socketPath = join(mkdtempSync(join(scratch, 'modem-')), 'engine.sock');
      await listening(engine.server, socketPath);
      viaHttp = await httpTransport({ kind: 'unix', socketPath });
    });
    afterAll(async () => closed(engine.server));

    it('sends what httpTransport sends: the same request line and JSON body', async () => {
      const viaModem = modemTransport(async () => new Docker({ socketPath }));
      const query = { path: '/etc/x y', repo: 'registry.example:5000/team/memcached' };
      const create = { Image: 'sha256:abc', Labels: { note: 'ünï' } };
      const fromModem = await viaModem.request('POST', '/containers/create', { query, json: create });
      const fromHttp = await viaHttp.request('POST', '/containers/create', { query, json: create });
      expect(fromModem.status).toBe(200);
      expect(fromHttp.status).toBe(200);
      const [modemSeen, httpSeen] = engine.seen.slice(-2);
      const decoded = (url: string) => Object.fromEntries(new URL(url, 'http://engine').searchParams);
      expect(decoded(modemSeen!.url)).toEqual(query);
      expect(decoded(httpSeen!.url)).toEqual(query);
      expect(JSON.parse(modemSeen!.body)).toEqual(create);
      expect(JSON.parse(httpSeen!.body)).toEqual(create);
      expect(modemSeen!.headers['content-type']).toBe('application/json');
      expect(modemSeen!.headers['content-length']).toBe(httpSeen!.headers['content-length']);
      // A POST without a body sends none through the modem either.
      await viaModem.request('POST', '/containers/c1/start');
      expect(engine.seen.at(-1)!.body).toBe('');
    });

    it('resolves a 404 and a chunked answer as httpTransport does', async () => {
      const viaModem = modemTransport(async () => new Docker({ socketPath }));
      const fromModem = await viaModem.request('GET', '/status/404');
      expect(fromModem.status).toBe(404);
      expect(fromModem.body).toEqual((await viaHttp.request('GET', '/status/404')).body);
      expect((await viaModem.request('GET', '/chunked')).body).toEqual(Buffer.concat(CHUNKS));
    });

    it('aborts the call a silent engine never answers', async () => {
      const viaModem = modemTransport(async () => new Docker({ socketPath }), { endpoint: 'here', timeoutMs: 300 });
      const { error } = await failing(viaModem.request('GET', '/silent'));
      expectFailureLine(error, 'the Docker engine at here did not answer within 300 ms (GET /silent)');
      // The modem's connection is closed by the abort, not left open.
      const connection = engine.connections.at(-1)!;
      if (!connection.closed) await once(connection, 'close');
    });
  });
});
