import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { engineAddress, httpTransport, modemTransport, parseAnswer, type EngineAddress } from '../src/engine/transport.js';

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

  it("prefers the user's Docker Desktop socket when there is one, and leaves Windows' default pipe to dockerode", () => {
    const home = mkdtempSync(join(tmpdir(), 'mh-home-'));
    try {
      mkdirSync(join(home, '.docker', 'run'), { recursive: true });
      writeFileSync(join(home, '.docker', 'run', 'docker.sock'), '');
      expect(engineAddress({}, home, 'linux')).toStrictEqual({ kind: 'unix', socketPath: join(home, '.docker', 'run', 'docker.sock') });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    expect(engineAddress({}, noHome, 'win32')).toBeUndefined();
  });

  it('is the unix:// path as given; TLS settings mean nothing for a socket', () => {
    expect(address({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toStrictEqual({ kind: 'unix', socketPath: '/run/user/1000/docker.sock' });
    expect(address({ DOCKER_HOST: 'unix:///s.sock', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' })).toStrictEqual({ kind: 'unix', socketPath: '/s.sock' });
  });

  it("is plain TCP for tcp:// and a bare host:port; without a port, the protocol's own", () => {
    expect(address({ DOCKER_HOST: 'tcp://10.0.0.2:2375' })).toStrictEqual({ kind: 'tcp', host: '10.0.0.2', port: 2375, tls: false });
    expect(address({ DOCKER_HOST: 'localhost:2375' })).toStrictEqual({ kind: 'tcp', host: 'localhost', port: 2375, tls: false });
    expect(address({ DOCKER_HOST: 'tcp://engine.example' })).toStrictEqual({ kind: 'tcp', host: 'engine.example', tls: false });
    expect(address({ DOCKER_HOST: 'tcp://[::1]:2375' })).toStrictEqual({ kind: 'tcp', host: '::1', port: 2375, tls: false });
  });

  it('is TLS on port 2376 or with DOCKER_TLS_VERIFY=1 (only 1) whatever the port', () => {
    expect(address({ DOCKER_HOST: 'tcp://h:2376' })).toStrictEqual({ kind: 'tcp', host: 'h', port: 2376, tls: true });
    expect(address({ DOCKER_HOST: 'h:2376' })).toStrictEqual({ kind: 'tcp', host: 'h', port: 2376, tls: true });
    expect(address({ DOCKER_HOST: 'tcp://h:2375', DOCKER_TLS_VERIFY: '1' })).toStrictEqual({ kind: 'tcp', host: 'h', port: 2375, tls: true });
    expect(address({ DOCKER_HOST: 'tcp://h', DOCKER_TLS_VERIFY: '1' })).toStrictEqual({ kind: 'tcp', host: 'h', tls: true });
    expect(address({ DOCKER_HOST: 'tcp://h:2375', DOCKER_TLS_VERIFY: '0' })).toStrictEqual({ kind: 'tcp', host: 'h', port: 2375, tls: false });
  });

  it('carries DOCKER_CERT_PATH, and has no certPath without it', () => {
    expect(address({ DOCKER_HOST: 'tcp://h:2376', DOCKER_CERT_PATH: '/home/u/.docker/machine/certs' })).toStrictEqual({
      kind: 'tcp',
      host: 'h',
      port: 2376,
      tls: true,
      certPath: '/home/u/.docker/machine/certs',
    });
    expect(address({ DOCKER_HOST: 'tcp://h:2376', DOCKER_CERT_PATH: '' })).not.toHaveProperty('certPath');
  });

  it('is undefined for what is left to dockerode (ssh, npipe, http(s), fd, other schemes) and for an unparsable host', () => {
    for (const host of ['ssh://me@engine.example', 'ssh://me@engine.example:2222', 'npipe:////./pipe/docker_engine', 'npipe://', 'fd://', 'http://h:8080', 'https://h:3000', 'tcp://[bad', '[bad']) {
      expect(address({ DOCKER_HOST: host }), host).toBeUndefined();
    }
  });
});

describe('parseAnswer', () => {
  const answer = (...parts: string[]) => parseAnswer(Buffer.from(parts.join('\r\n'), 'latin1'));

  it('reads the status and a body of Content-Length bytes', () => {
    expect(answer('HTTP/1.1 200 OK', 'Content-Type: application/json', 'Content-Length: 7', '', '{"a":1}')).toEqual({ status: 200, body: Buffer.from('{"a":1}') });
    expect(answer('HTTP/1.1 204 No Content', 'Connection: close', '', '')).toEqual({ status: 204, body: Buffer.alloc(0) });
    // Without a length or chunking, the body is whatever came before the connection closed.
    expect(answer('HTTP/1.0 404 Not Found', '', 'page not found')).toEqual({ status: 404, body: Buffer.from('page not found') });
  });

  it('decodes a chunked body, extensions and trailers aside, whatever the header case', () => {
    const chunked = answer('HTTP/1.1 200 OK', 'transfer-encoding: Chunked', '', '3;name=x', 'abc', 'a', '0123456789', '0', 'X-Trailer: t', '', '');
    expect(chunked).toEqual({ status: 200, body: Buffer.from('abc0123456789') });
    const binary = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n'), Buffer.from([0, 255]), Buffer.from('\r\n0\r\n\r\n')]);
    expect(parseAnswer(binary).body).toEqual(Buffer.from([0, 255]));
  });

  it('refuses what is not a whole HTTP answer', () => {
    expect(() => answer('HTTP/1.1 200 OK', 'Content-Length: 5')).toThrow(/before a complete answer/);
    expect(() => answer('HTTP/1.1 200 OK', 'Content-Length: 10', '', 'short')).toThrow(/middle of its answer/);
    expect(() => answer('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', '', '10', 'short')).toThrow(/middle of its answer/);
    expect(() => answer('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', '', 'zz', '')).toThrow(/malformed chunked/);
    expect(() => answer('SSH-2.0-OpenSSH_9.6', '', '')).toThrow(/not HTTP/);
    expect(() => answer('HTTP/1.1 2000 OK', '', '')).toThrow(/not HTTP/);
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

/**
 * A fake engine: records every request; answers /status/NNN with that status and a JSON message,
 * anything else with 200 and JSON of what it saw.
 */
function fakeEngine(server: Server = createServer()) {
  const seen: Seen[] = [];
  // As the engine: an idle kept-alive connection stays open until the client closes it.
  server.keepAliveTimeout = 0;
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body, socket: request.socket });
      const status = /^\/status\/(\d{3})/.exec(request.url ?? '')?.[1];
      if (status) {
        response.writeHead(Number(status), { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ message: `answered ${status}` }));
      } else {
        response.writeHead(200, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ method: request.method, url: request.url, body }));
      }
    });
  });
  return { server, seen };
}

/** Listening on a unix socket path, or on an ephemeral port of 127.0.0.1. */
const listening = (server: Server, socketPath?: string) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (socketPath !== undefined) server.listen(socketPath, () => resolve());
    else server.listen(0, '127.0.0.1', () => resolve());
  });
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
    for (const path of ['/_ping', '/status/404', '/_ping']) statuses.push((await transport.request('GET', path)).status);
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
    if (failed.killed) throw new Error(`the process did not exit by itself within ${childLimit} ms of its calls (printed ${JSON.stringify(failed.stdout)})`);
    throw new Error(`the child process failed: ${failed.stderr || failed.message}`);
  }
}

const closed = (server: Server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
const portOf = (server: Server) => (server.address() as AddressInfo).port;
const json = (body: Buffer) => JSON.parse(body.toString('utf8')) as unknown;

describe('httpTransport over a unix socket', () => {
  let dir: string;
  let socketPath: string;
  let engine: ReturnType<typeof fakeEngine>;

  beforeAll(() => {
    dir = mkdtempSync(join(scratch, 'unix-'));
  });

  afterEach(async () => {
    // Closes the idle kept-alive connections too, and resolves once every connection is gone.
    await closed(engine.server);
  });

  const start = async (name: string) => {
    engine = fakeEngine();
    socketPath = join(dir, `${name}.sock`);
    await listening(engine.server, socketPath);
    return httpTransport({ kind: 'unix', socketPath });
  };

  it('sends the method, the path and the URL-encoded query on the request line', async () => {
    const transport = await start('query');
    const answer = await transport.request('GET', '/containers/abc/archive', { query: { path: '/etc/memcached/sasl db', repo: 'registry.example:5000/team/memcached' } });
    expect(answer.status).toBe(200);
    expect(engine.seen).toHaveLength(1);
    const [seen] = engine.seen;
    expect(seen!.method).toBe('GET');
    expect(seen!.url).toBe('/containers/abc/archive?path=%2Fetc%2Fmemcached%2Fsasl+db&repo=registry.example%3A5000%2Fteam%2Fmemcached');
    // What the engine's Go side decodes it to.
    const query = new URL(seen!.url, 'http://engine').searchParams;
    expect(query.get('path')).toBe('/etc/memcached/sasl db');
    expect(query.get('repo')).toBe('registry.example:5000/team/memcached');
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
    const transport = await start('json');
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

  it('resolves non-2xx answers with their status and body instead of rejecting', async () => {
    const transport = await start('statuses');
    const missing = await transport.request('GET', '/status/404');
    expect(missing.status).toBe(404);
    expect(json(missing.body)).toEqual({ message: 'answered 404' });
    const broken = await transport.request('POST', '/status/500', { json: {} });
    expect(broken.status).toBe(500);
    expect(json(broken.body)).toEqual({ message: 'answered 500' });
    expect(Buffer.isBuffer(broken.body)).toBe(true);
  });

  it('rejects when nothing listens at the socket', async () => {
    engine = fakeEngine();
    const transport = await httpTransport({ kind: 'unix', socketPath: join(dir, 'absent.sock') });
    await expect(transport.request('GET', '/_ping')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('makes each request on a connection of its own, which the engine closes after answering', async () => {
    const transport = await start('keep-alive');
    const answers = [];
    for (const path of ['/_ping', '/status/404', '/images/x/json', '/status/500', '/_ping']) answers.push(await transport.request('GET', path));
    expect(answers.map((a) => a.status)).toEqual([200, 404, 200, 500, 200]);
    expect(engine.seen.map((s) => s.url)).toEqual(['/_ping', '/status/404', '/images/x/json', '/status/500', '/_ping']);
    expect(new Set(engine.seen.map((s) => s.socket)).size).toBe(5);
    expect(engine.seen.every((s) => s.headers.connection === 'close')).toBe(true);
    expect(engine.seen.every((s) => s.socket.destroyed || s.socket.readableEnded)).toBe(true);
  });

  it('lets the process exit once answered', { timeout: 30_000 }, async () => {
    await start('exit');
    const { statuses } = await exitsOnItsOwn({ kind: 'unix', socketPath });
    expect(statuses).toEqual([200, 404, 200]);
  });
});

describe('httpTransport over TCP', () => {
  let engine: ReturnType<typeof fakeEngine>;
  afterEach(async () => closed(engine.server));

  it('reaches an engine on 127.0.0.1 at the port DOCKER_HOST names', async () => {
    engine = fakeEngine();
    await listening(engine.server);
    const address = engineAddress({ DOCKER_HOST: `tcp://127.0.0.1:${portOf(engine.server)}` });
    expect(address).toStrictEqual({ kind: 'tcp', host: '127.0.0.1', port: portOf(engine.server), tls: false });
    const transport = await httpTransport(address!);
    const answer = await transport.request('POST', '/images/sha256:abc/tag', { query: { repo: 'memcached', tag: 'v1' }, json: { x: 1 } });
    expect(answer.status).toBe(200);
    expect(json(answer.body)).toEqual({ method: 'POST', url: '/images/sha256:abc/tag?repo=memcached&tag=v1', body: '{"x":1}' });
    expect(engine.seen[0]!.headers.host).toBe(`127.0.0.1:${portOf(engine.server)}`);
    expect((await transport.request('GET', '/status/404')).status).toBe(404);
  });

  it('lets the process exit once answered', { timeout: 30_000 }, async () => {
    engine = fakeEngine();
    await listening(engine.server);
    const { statuses } = await exitsOnItsOwn({ kind: 'tcp', host: '127.0.0.1', port: portOf(engine.server), tls: false });
    expect(statuses).toEqual([200, 404, 200]);
  });
});

/** CAs and the leaf certificates they sign, made with the openssl command (EC P-256: quick to make); no skipping without it. */
function openssl(cwd: string, ...args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const failed = error as Error & { stderr?: Buffer };
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed (certificates for the TLS tests): ${failed.stderr?.toString().trim() || failed.message}`);
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
  openssl(dir, 'req', '-x509', '-config', 'openssl.cnf', '-extensions', 'ca', ...ecKey, '-keyout', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`);
}

function makeLeaf(dir: string, ca: string, name: string, extensions: 'server' | 'client', serial: string): void {
  openssl(dir, 'req', '-new', '-config', 'openssl.cnf', ...ecKey, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-set_serial', serial, '-days', '2', '-extfile', 'openssl.cnf', '-extensions', extensions, '-out', `${name}.pem`);
}

describe('httpTransport over TLS with a client certificate', () => {
  const dir = join(scratch, 'tls');
  /** A DOCKER_CERT_PATH folder: ca.pem, cert.pem, key.pem. */
  const certPathOf = (name: string, files: { ca: string; cert: string; key: string }) => {
    const folder = join(dir, name);
    mkdirSync(folder, { recursive: true });
    for (const [target, source] of Object.entries({ 'ca.pem': files.ca, 'cert.pem': files.cert, 'key.pem': files.key })) writeFileSync(join(folder, target), readFileSync(join(dir, source)));
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
    foreignClient = certPathOf('foreign-client', { ca: 'engine-ca.pem', cert: 'stranger.pem', key: 'stranger-key.pem' });
    // A valid client certificate, but the engine's certificate is not from the CA it trusts.
    foreignServerCa = certPathOf('foreign-server-ca', { ca: 'other-ca.pem', cert: 'client.pem', key: 'client-key.pem' });
    const server = createHttpsServer({
      key: readFileSync(join(dir, 'server-key.pem')),
      cert: readFileSync(join(dir, 'server.pem')),
      ca: readFileSync(join(dir, 'engine-ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
    });
    // A refused client certificate ends the handshake with a hang-up: the reason is on the socket.
    server.on('tlsClientError', (error: Error, socket: TLSSocket) => refusals.push(String(socket.authorizationError ?? error.message)));
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
    expect(engine.seen.map((s) => s.url)).toEqual(['/version?a=b', '/status/404']);
  });

  it('is refused with a client certificate from another CA', async () => {
    const before = engine.seen.length;
    const transport = await httpTransport(tls(foreignClient));
    const refusedBefore = refusals.length;
    // Under TLS 1.3 the client learns of it after its own side of the handshake: a reset, the alert, or
    // a connection closed without an answer.
    await expect(transport.request('GET', '/version')).rejects.toThrow(/ECONNRESET|alert|EPIPE|closed the connection/i);
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
  }
  type Callback = (error: unknown, response?: unknown) => void;
  /** A dockerode whose modem records each dial and answers with `answer`. */
  const fakeDocker = (answer: (callback: Callback) => void) => {
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
    const transport = modemTransport(async () => {
      loads += 1;
      return docker;
    });
    return { transport, dialed, loads: () => loads };
  };
  const stream = (status: number, ...chunks: Buffer[]) => Object.assign(Readable.from(chunks), { statusCode: status });

  it('dials path? with the query and body for the modem to send, as a stream', async () => {
    const { transport, dialed, loads } = fakeDocker((callback) => callback(null, stream(201, Buffer.from('{"Id":"c1"}'))));
    const answer = await transport.request('POST', '/containers/create', { query: { name: 'x' }, json: { Image: 'sha256:abc' } });
    expect(answer).toEqual({ status: 201, body: Buffer.from('{"Id":"c1"}') });
    await transport.request('GET', '/images/memcached:1/json');
    expect(dialed).toMatchObject([
      { path: '/containers/create?', method: 'POST', options: { _query: { name: 'x' }, _body: { Image: 'sha256:abc' } }, isStream: true },
      { path: '/images/memcached:1/json?', method: 'GET', options: { _query: {}, _body: {} }, isStream: true },
    ]);
    // Every status is an answer to hand back, not an error for the modem to reword.
    for (const status of [100, 200, 204, 304, 404, 409, 500, 599]) expect(dialed[0]!.statusCodes[status], String(status)).toBe(true);
    expect(loads()).toBe(2);
  });

  it("resolves a success with every byte of the modem's stream", async () => {
    const { transport } = fakeDocker((callback) => callback(null, stream(200, Buffer.from('ab'), Buffer.from([0, 255]), Buffer.alloc(0), Buffer.from('z'))));
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

  describe("through dockerode's own modem, to the fake engine", () => {
    let engine: ReturnType<typeof fakeEngine>;
    let socketPath: string;
    beforeAll(async () => {
      engine = fakeEngine();
      socketPath = join(mkdtempSync(join(scratch, 'modem-')), 'engine.sock');
      await listening(engine.server, socketPath);
    });
    afterAll(async () => closed(engine.server));

    it('sends what httpTransport sends: the same request line and JSON body', async () => {
      const viaModem = modemTransport(async () => new Docker({ socketPath }));
      const viaHttp = await httpTransport({ kind: 'unix', socketPath });
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

    it("resolves a 404 with its status and the engine's own body, as httpTransport does", async () => {
      const viaModem = modemTransport(async () => new Docker({ socketPath }));
      const viaHttp = await httpTransport({ kind: 'unix', socketPath });
      const fromModem = await viaModem.request('GET', '/status/404');
      expect(fromModem.status).toBe(404);
      expect(fromModem.body).toEqual((await viaHttp.request('GET', '/status/404')).body);
    });
  });
});
