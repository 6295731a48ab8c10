import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryClient, encodeRequest, Op, Status } from '../../lib/binary-client.js';
import { loadProfile } from '../../src/profiles.js';
import { TLS_SECRET_DIR } from '../../src/tls.js';
import { clientsImage, roundTripVerdict, runClient } from '../helpers/clients.js';
import { createIsolatedNetwork, docker, suiteLabels, type IsolatedNetwork } from '../helpers/docker.js';
import { pollUntil } from '../helpers/poll.js';
import { parseProcNet, procNetAddress, TCP_LISTEN } from '../helpers/proc-net.js';
import { execIn, runToExit, startServer, type RunningServer, type ServerOptions } from '../helpers/server.js';
import { firstUser, targetRows, type TestTarget } from '../helpers/targets.js';
import {
  conversationWith,
  expiredCertificate,
  issueWithReadmeCommands,
  mountableSecretDir,
  parseSClient,
  pemBody,
  readableDir,
  tcpSegments,
  tlsRoundTrip,
  type Handshake,
  type IssuedFiles,
} from '../helpers/tls.js';
import { buildVariant, type Variant } from '../helpers/variants.js';
import { TLS_NOT_APPLIED } from '../helpers/weakenings.js';

/** Fixed addresses (host numbers on the test network) the servers take: the server certificate names them all. */
const HOST = { tls: 10, mutual: 11, plain: 12, weakened: 13, capped: 14, guarded: 15, lifecycle: 16, killed: 17, killedFront: 18, holder: 20 } as const;
/** Where the client host sees its CA, certificates and keys. */
const PKI = '/pki';

/** What a plaintext client got on the port: nothing (at most a TLS alert), or memcached's answer. */
async function plaintextAnswer(ip: string): Promise<string> {
  const ask = async (request: Buffer) => {
    const client = await BinaryClient.connect(ip);
    try {
      client.write(request);
      // Whatever comes within 3 s (a TLS server closes at once), then the rest of a reply.
      const first = await client.read(1, 3000);
      return first.length === 0 ? first : Buffer.concat([first, await client.read(4096, 300)]);
    } finally {
      client.close();
    }
  };
  const replies = await Promise.all([ask(Buffer.concat([encodeRequest(Op.saslListMechs), encodeRequest(Op.version)])), ask(Buffer.from('stats\r\nversion\r\n'))]);
  const served = replies.filter((reply) => reply.length > 0 && reply[0] !== 0x15);
  return served.length === 0 ? 'nothing' : served.map((reply) => reply.toString('latin1').replace(/[^\x20-\x7e]+/g, '.')).join(' | ');
}

/** The host's process ids of a container's processes, by command name. */
async function hostPids(container: StartedTestContainer, command: string): Promise<number[]> {
  const top = (await docker.getContainer(container.getId()).top()) as { Titles: string[]; Processes: string[][] };
  const pid = top.Titles.indexOf('PID');
  const cmd = top.Titles.indexOf('CMD');
  return top.Processes.filter((row) => (row[cmd] ?? '').split(' ')[0]?.split('/').pop() === command).map((row) => Number(row[pid]));
}

describe.each(targetRows())('%s', (_name, target) => {
  const user = firstUser(target);
  const profile = loadProfile(target.profile);
  // The processes that serve the TLS port: memcached itself, or memcached and the front.
  const serving = profile.tls.via === 'memcached' ? ['memcached'] : ['memcached', profile.tls.via];
  const scratch = mkdtempSync(join(tmpdir(), 'mh-tls-'));
  let tlsTarget: TestTarget;
  let network: IsolatedNetwork;
  let ours: IssuedFiles;
  let foreign: IssuedFiles;
  let secret: string;
  let mutualSecret: string;
  let clientHost: StartedTestContainer;
  let weakened: Variant;
  let tlsServer: RunningServer;
  let mutualServer: RunningServer;
  let plainServer: RunningServer;
  let weakenedServer: RunningServer;
  let cappedServer: RunningServer;
  let guardedServer: RunningServer;
  const servers: RunningServer[] = [];

  const address = (host: number) => network.fixedAddress(host);
  /** How this host's node client trusts the server (the CA; the address is checked against the certificate). */
  const clientTls = (mutual = false): ConnectionOptions => ({
    ca: readFileSync(ours.caCertificate),
    ...(mutual ? { cert: readFileSync(ours.clientCertificate), key: readFileSync(ours.clientKey) } : {}),
  });
  /** The Ruby client's TLS settings in the client host (environment, never argv). */
  const dalliTls = (mutual = false) => ({
    MEMCACHED_TLS_CA_FILE: `${PKI}/ca.crt`,
    ...(mutual ? { MEMCACHED_TLS_CERT_FILE: `${PKI}/client.crt`, MEMCACHED_TLS_KEY_FILE: `${PKI}/client.key` } : {}),
  });
  const dalli = async (ip: string, key: string, value: string, credentials = user, settings: Record<string, string> = dalliTls()) =>
    roundTripVerdict(await runClient(clientHost, ['ruby', ip, key, value], credentials, 40, settings));
  /** What a TLS server holds under a key, read by this host over TLS with the right password. */
  const storedOverTls = async (ip: string, key: string, mutual = false) => {
    const client = await BinaryClient.connectTls(ip, clientTls(mutual));
    try {
      if ((await client.authenticate(user.name, user.password))?.status !== Status.ok) throw new Error(`the suite could not authenticate to ${ip} over TLS`);
      const got = await client.get(key);
      return got?.status === Status.ok ? got.value.toString() : undefined;
    } finally {
      client.close();
    }
  };
  const sClient = async (args: string): Promise<Handshake> =>
    parseSClient((await execIn(clientHost, ['sh', '-c', `timeout 10 openssl s_client ${args} </dev/null 2>&1`])).output);

  /** The TLS image with a certificate secret mounted; ready once a TLS client (this host, or the client host) round-trips. */
  const startTls = async (
    network: string,
    secretDir: string,
    options: ServerOptions & { mutual?: boolean; readyFromClientHost?: boolean } = {},
  ): Promise<RunningServer> => {
    const server = await startServer(tlsTarget, network, { ...options, binds: [...(options.binds ?? []), `${secretDir}:${TLS_SECRET_DIR}:ro`], unreachableFromHost: true });
    servers.push(server);
    await pollUntil(
      async () => {
        if (options.readyFromClientHost) return (await dalli(server.ip, 'ready', 'yes', user, dalliTls(options.mutual))) === 'ok yes' ? true : undefined;
        return (await tlsRoundTrip(server.ip, clientTls(options.mutual), user)).roundTrip ? true : undefined;
      },
      {
        timeoutMs: 20_000,
        what: `TLS at ${server.ip} serves an authenticated round trip`,
        diagnose: async () => `a plaintext client got: ${await plaintextAnswer(server.ip).catch((e: Error) => e.message)}\n${await server.logs()}`,
      },
    );
    return server;
  };
  const started = async (server: Promise<RunningServer>) => {
    const running = await server;
    servers.push(running);
    return running;
  };

  beforeAll(async () => {
    if (!target.tlsImage) throw new Error(`no TLS image for ${target.name}: the global setup builds one for integration runs`);
    tlsTarget = { ...target, name: `${target.name} (TLS)`, image: target.tlsImage };
    network = await createIsolatedNetwork('tls', { fixedAddresses: true });
    // Issued with the README's own commands: one CA for this server and its clients, another CA for a stranger.
    const names = ['DNS:memcached', ...Object.values(HOST).map((host) => `IP:${address(host)}`)].join(',');
    ours = issueWithReadmeCommands(join(scratch, 'ca'), names);
    foreign = issueWithReadmeCommands(join(scratch, 'other-ca'), 'DNS:memcached');
    secret = mountableSecretDir(join(scratch, 'secret'), { 'tls.crt': ours.certificate, 'tls.key': ours.key });
    mutualSecret = mountableSecretDir(join(scratch, 'secret-mutual'), { 'tls.crt': ours.certificate, 'tls.key': ours.key, 'ca.crt': ours.caCertificate });
    const clientFiles = readableDir(join(scratch, 'client'), {
      'ca.crt': ours.caCertificate,
      'client.crt': ours.clientCertificate,
      'client.key': ours.clientKey,
      'foreign.crt': foreign.clientCertificate,
      'foreign.key': foreign.clientKey,
      // For the permissive control server (TLS 1.0 allowed) the client host runs itself.
      'permissive.crt': foreign.certificate,
      'permissive.key': foreign.key,
    });
    clientHost = await new GenericContainer(clientsImage())
      .withNetworkMode(network.name)
      .withLabels(suiteLabels())
      .withEntrypoint(['sleep', 'infinity'])
      .withBindMounts([{ source: clientFiles, target: PKI, mode: 'ro' }])
      .start();
    const clientHostIp = clientHost.getIpAddress(network.name);
    [tlsServer, mutualServer, plainServer, cappedServer, guardedServer, weakened] = await Promise.all([
      startTls(network.name, secret, { ipv4Address: address(HOST.tls) }),
      startTls(network.name, mutualSecret, { ipv4Address: address(HOST.mutual), mutual: true }),
      // Controls: the same image without TLS, and (below) the TLS image weakened to serve plaintext.
      started(startServer(target, network.name, { ipv4Address: address(HOST.plain) })),
      startTls(network.name, secret, { ipv4Address: address(HOST.capped), env: { MEMCACHED_MAX_CONNECTIONS_PER_CLIENT: '3' } }),
      startTls(network.name, secret, {
        ipv4Address: address(HOST.guarded),
        capAdd: ['NET_ADMIN'],
        env: { MEMCACHED_ALLOW_FROM: `${clientHostIp}/32` },
        readyFromClientHost: true,
      }),
      buildVariant(tlsTarget, TLS_NOT_APPLIED),
    ]);
    // The weakened image serves plaintext, so the plaintext probe of startServer is its readiness.
    weakenedServer = await started(startServer(weakened.target, network.name, { ipv4Address: address(HOST.weakened), binds: [`${secret}:${TLS_SECRET_DIR}:ro`] }));
  });

  afterAll(async () => {
    // Some have ended already (stopped or killed by the checks).
    await Promise.all([...servers.map((s) => s.stop().catch(() => undefined)), clientHost?.stop({ remove: true })]);
    await weakened?.remove();
    await network?.remove();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('refuses a missing, unreadable, non-PEM, expired or mismatched certificate or key, or a loopback listen address, in one line (exit 78), before any rule or listener; with the certificate the same start listens and adds its rules', async () => {
    // A namespace the refusals share, so what they leave behind (firewall rules, a listener) can be read.
    const holder = await started(startServer(tlsTarget, network.name, { entrypoint: ['sleep', 'infinity'], capAdd: ['NET_ADMIN'], ipv4Address: address(HOST.holder), unreachableFromHost: true }));
    const namespace = `container:${holder.container.getId()}`;
    const clientHostIp = clientHost.getIpAddress(network.name);
    const unreadable = mountableSecretDir(join(scratch, 'secret-unreadable'), { 'tls.crt': ours.certificate });
    writeFileSync(join(unreadable, 'tls.key'), readFileSync(ours.key), { mode: 0o400 }); // root's, not memcache's
    const cases: Array<{ secretDir?: string; env?: Record<string, string>; refusal: RegExp }> = [
      { refusal: /^memcached-hardened: TLS: \/run\/secrets\/memcached_tls\/tls\.crt is missing or not readable by uid 11211; mount the certificate secret/ },
      { secretDir: unreadable, refusal: /^memcached-hardened: TLS: \/run\/secrets\/memcached_tls\/tls\.key is missing or not readable by uid 11211/ },
      {
        secretDir: mountableSecretDir(join(scratch, 'secret-mismatched'), { 'tls.crt': ours.certificate, 'tls.key': foreign.key }),
        refusal: /^memcached-hardened: TLS: the key \/run\/secrets\/memcached_tls\/tls\.key does not belong to the certificate/,
      },
      {
        secretDir: mountableSecretDir(join(scratch, 'secret-not-pem'), { 'tls.crt': ours.key, 'tls.key': ours.key }),
        refusal: /^memcached-hardened: TLS: \/run\/secrets\/memcached_tls\/tls\.crt is not a PEM certificate$/,
      },
      {
        secretDir: mountableSecretDir(join(scratch, 'secret-expired'), { 'tls.crt': expiredCertificate(ours), 'tls.key': ours.key }),
        refusal: /^memcached-hardened: TLS: the certificate \/run\/secrets\/memcached_tls\/tls\.crt has expired$/,
      },
      {
        secretDir: mountableSecretDir(join(scratch, 'secret-bad-ca'), { 'tls.crt': ours.certificate, 'tls.key': ours.key, 'ca.crt': ours.clientKey }),
        refusal: /^memcached-hardened: TLS: \/run\/secrets\/memcached_tls\/ca\.crt is not a PEM certificate$/,
      },
      { secretDir: secret, env: { MEMCACHED_TLS_CERT_FILE: '/run/secrets/elsewhere/tls.crt' }, refusal: /^memcached-hardened: TLS: \/run\/secrets\/elsewhere\/tls\.crt is missing/ },
      { secretDir: secret, env: { MEMCACHED_LISTEN: '127.0.0.1' }, refusal: /^memcached-hardened: MEMCACHED_LISTEN=127\.0\.0\.1: with TLS, loopback carries memcached's own plaintext listener/ },
    ];
    const refusals = await Promise.all(
      cases.map((c) =>
        runToExit(tlsTarget, namespace, {
          // With the allowlist asked for: a refusal must come before any rule is added.
          env: { MEMCACHED_ALLOW_FROM: `${clientHostIp}/32`, ...c.env },
          capAdd: ['NET_ADMIN'],
          binds: c.secretDir ? [`${c.secretDir}:${TLS_SECRET_DIR}:ro`] : [],
        }),
      ),
    );
    refusals.forEach((refused, i) => {
      expect({ exitCode: refused.exitCode, lines: refused.output.trim().split('\n') }).toEqual({ exitCode: 78, lines: [expect.stringMatching(cases[i]!.refusal)] });
      expect(refused.output).not.toContain('PRIVATE KEY');
    });
    const left = async () => ({
      rules: (await execIn(holder.container, ['iptables', '-w', '-S'])).output.includes('MEMCACHED-ALLOW'),
      listeners: parseProcNet((await execIn(holder.container, ['cat', '/proc/net/tcp'])).output).filter((s) => s.state === TCP_LISTEN && s.localPort === 11211).length,
    });
    expect(await left()).toEqual({ rules: false, listeners: 0 });
    // Control: the same start with the certificate takes the rules and listens (TLS there, plaintext on loopback).
    await startTls(namespace, secret, { capAdd: ['NET_ADMIN'], env: { MEMCACHED_ALLOW_FROM: `${clientHostIp}/32` }, readyFromClientHost: true });
    expect(await left()).toEqual({ rules: true, listeners: 2 });
  });

  it('listens with TLS on its address and in plaintext only on loopback (127.0.0.1), where the plain image listens in plaintext on its address', async () => {
    const listeners = async (server: RunningServer) =>
      parseProcNet((await execIn(server.container, ['cat', '/proc/net/tcp', '/proc/net/tcp6'])).output)
        .filter((s) => s.state === TCP_LISTEN && s.localPort === 11211)
        .map((s) => s.localAddress)
        .sort();
    expect(await listeners(tlsServer)).toEqual([procNetAddress('127.0.0.1'), procNetAddress(tlsServer.ip)].sort());
    expect(await listeners(plainServer)).toEqual([procNetAddress(plainServer.ip)]);
    // The plaintext listener answers in the container only: its own health check (which also wants TLS on the address).
    expect((await execIn(tlsServer.container, ['/usr/local/bin/memcached-healthcheck'])).exitCode).toBe(0);
  });

  it('keeps the private key and the password out of every argv and the log; the key file is named there (control)', async () => {
    const argv = (await execIn(tlsServer.container, ['sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "'], 'root')).output;
    const logs = await tlsServer.logs();
    const keyBody = readFileSync(ours.key, 'utf8').split('\n')[1]!;
    for (const secretText of [keyBody, user.password]) {
      expect(argv).not.toContain(secretText);
      expect(logs).not.toContain(secretText);
    }
    // Control: the scan reads the real configuration, which names the key's path.
    expect(profile.tls.via === 'memcached' ? argv : (await execIn(tlsServer.container, ['cat', '/run/memcached/stunnel.conf'])).output).toContain(`${TLS_SECRET_DIR}/tls.key`);
  });

  it('completes a TLS 1.2+ handshake with the mounted certificate, verified against the CA for its address (openssl s_client)', async () => {
    const ip = tlsServer.ip;
    const mounted = pemBody(readFileSync(ours.certificate, 'utf8'));
    for (const version of ['', '-tls1_2']) {
      const handshake = await sClient(`-connect ${ip}:11211 ${version} -CAfile ${PKI}/ca.crt -verify_return_error -verify_ip ${ip}`);
      expect({ version, protocol: handshake.protocol, verifyCode: handshake.verifyCode }).toEqual({
        version,
        protocol: version === '-tls1_2' ? 'TLSv1.2' : expect.stringMatching(/^TLSv1\.[23]$/),
        verifyCode: 0,
      });
      expect(pemBody(handshake.peerCertificate ?? '')).toBe(mounted);
    }
    // Control: the same verification fails against an address the certificate does not name.
    const wrongAddress = await sClient(`-connect ${ip}:11211 -tls1_2 -CAfile ${PKI}/ca.crt -verify_return_error -verify_ip 192.0.2.1`);
    expect(wrongAddress.protocol).toBeUndefined();
  });

  it('refuses TLS 1.0 and 1.1 with a protocol-version alert; the same command with -tls1_2 succeeds, and with -tls1/-tls1_1 against a server that allows them', async () => {
    // The old versions need OpenSSL 3's security level 0 on the client, or it would not even offer them.
    const old = '-cipher DEFAULT@SECLEVEL=0';
    // Control: a permissive server in the client host shows this client does speak TLS 1.0 and 1.1.
    await execIn(clientHost, ['sh', '-c', `sleep infinity | openssl s_server -accept 4433 -min_protocol TLSv1 ${old} -cert ${PKI}/permissive.crt -key ${PKI}/permissive.key >/tmp/s_server.log 2>&1 &`]);
    for (const version of ['-tls1', '-tls1_1']) {
      const permissive = await pollUntil(async () => (await sClient(`-connect 127.0.0.1:4433 ${version} ${old}`)).protocol, {
        timeoutMs: 10_000,
        what: `the permissive server accepts ${version}`,
      });
      expect(permissive).toBe(version === '-tls1' ? 'TLSv1' : 'TLSv1.1');
      for (const server of [tlsServer, mutualServer]) {
        const refused = await sClient(`-connect ${server.ip}:11211 ${version} ${old} -CAfile ${PKI}/ca.crt`);
        expect({ version, protocol: refused.protocol, alert: refused.alert }).toEqual({ version, protocol: undefined, alert: 'protocol version' });
        expect(refused.bytesWritten).toBeGreaterThan(0);
      }
      const current = await sClient(`-connect ${tlsServer.ip}:11211 -tls1_2 ${old} -CAfile ${PKI}/ca.crt`);
      expect(current).toMatchObject({ protocol: 'TLSv1.2', verifyCode: 0 });
    }
  });

  it('gives a plaintext client nothing on the port (no SASL exchange, no data), where the image weakened to serve plaintext and the plain image answer', async () => {
    const [tls, mutual, weakenedAnswer, plain] = await Promise.all([tlsServer, mutualServer, weakenedServer, plainServer].map((s) => plaintextAnswer(s.ip)));
    expect({ tls, mutual }).toEqual({ tls: 'nothing', mutual: 'nothing' });
    expect(weakenedAnswer).toContain('PLAIN');
    expect(plain).toContain('PLAIN');
    // The weakened image says TLS at start all the same: the start-up line proves nothing.
    expect(await weakenedServer.logs()).toContain('TLS 1.2+ only');
  });

  it('still requires SASL inside TLS: no data without authentication or with a wrong password; the right one round-trips', async () => {
    const tls = clientTls();
    expect(await tlsRoundTrip(tlsServer.ip, tls, undefined)).toMatchObject({ handshake: true, roundTrip: false });
    const wrong = await tlsRoundTrip(tlsServer.ip, tls, { name: user.name, password: `${user.password}-wrong` });
    expect(wrong).toMatchObject({ handshake: true, roundTrip: false });
    expect([Status.authError, 'closed']).toContain(wrong.authStatus);
    expect(await tlsRoundTrip(tlsServer.ip, tls, user)).toMatchObject({ handshake: true, authStatus: Status.ok, roundTrip: true });
  });

  it('Dalli (Ruby, ssl_context verifying the address) authenticates over TLS and round-trips; with a wrong password it stores nothing', async () => {
    const key = `dalli-tls-${Math.random().toString(36).slice(2)}`;
    expect(await dalli(tlsServer.ip, key, 'over-tls')).toBe('ok over-tls');
    expect(await storedOverTls(tlsServer.ip, key)).toBe('over-tls');
    const refusedKey = `${key}-wrong`;
    expect(await dalli(tlsServer.ip, refusedKey, 'never', { name: user.name, password: `${user.password}-wrong` })).not.toMatch(/^ok /);
    expect(await storedOverTls(tlsServer.ip, refusedKey)).toBeUndefined();
  });

  it('with ca.crt, refuses a client without a certificate and one from another CA; a certificate from that CA authenticates (node and Dalli)', async () => {
    const ip = mutualServer.ip;
    const withoutCertificate = await tlsRoundTrip(ip, clientTls(), user);
    expect(withoutCertificate).toMatchObject({ authStatus: 'closed', roundTrip: false });
    expect(withoutCertificate.error).toMatch(/alert (handshake failure|certificate required)/);
    const stranger = await tlsRoundTrip(ip, { ...clientTls(), cert: readFileSync(foreign.clientCertificate), key: readFileSync(foreign.clientKey) }, user);
    expect(stranger).toMatchObject({ authStatus: 'closed', roundTrip: false });
    expect(stranger.error).toMatch(/alert unknown ca/);
    expect(await tlsRoundTrip(ip, clientTls(true), user)).toMatchObject({ handshake: true, authStatus: Status.ok, roundTrip: true });
    const key = `dalli-mutual-${Math.random().toString(36).slice(2)}`;
    expect(await dalli(ip, key, 'mutual', user, dalliTls(true))).toBe('ok mutual');
    expect(await storedOverTls(ip, key, true)).toBe('mutual');
    expect(await dalli(ip, `${key}-anonymous`, 'never', user, dalliTls(false))).not.toMatch(/^ok /);
    const foreignSettings = { ...dalliTls(), MEMCACHED_TLS_CERT_FILE: `${PKI}/foreign.crt`, MEMCACHED_TLS_KEY_FILE: `${PKI}/foreign.key` };
    expect(await dalli(ip, `${key}-stranger`, 'never', user, foreignSettings)).not.toMatch(/^ok /);
  });

  it("puts no password on the wire: a capture in the client's network namespace shows it in clear for the plain image and nowhere with TLS", async () => {
    const capture = await new GenericContainer(clientsImage())
      .withNetworkMode(`container:${clientHost.getId()}`)
      .withLabels(suiteLabels())
      .withUser('root')
      .withAddedCapabilities('NET_RAW', 'NET_ADMIN')
      .withEntrypoint(['tcpdump'])
      .withCommand(['-i', 'eth0', '-n', '-U', '--immediate-mode', '-w', '/tmp/capture.pcap', 'tcp port 11211'])
      .withWaitStrategy(Wait.forLogMessage(/listening on eth0/))
      .start();
    try {
      const key = `wire-${Math.random().toString(36).slice(2)}`;
      expect(await dalli(plainServer.ip, key, 'plain', user, {})).toBe('ok plain');
      expect(await dalli(tlsServer.ip, key, 'encrypted')).toBe('ok encrypted');
      const password = Buffer.from(user.password);
      // Both sessions, start to end, before anything is concluded from them.
      const captured = async () => tcpSegments(Buffer.from((await execIn(capture, ['base64', '-w0', '/tmp/capture.pcap'], 'root')).output.trim(), 'base64'));
      const [plain, encrypted] = await pollUntil(
        async () => {
          const segments = await captured();
          const sessions = [plainServer.ip, tlsServer.ip].map((ip) => conversationWith(segments, ip));
          return sessions.every((s) => s.complete) ? sessions : undefined;
        },
        {
          timeoutMs: 15_000,
          what: 'the capture holds both sessions from SYN to FIN or RST',
          diagnose: async () => (await captured()).map((s) => `${s.source}:${s.sourcePort} > ${s.destination}:${s.destinationPort}${s.syn ? ' SYN' : ''}${s.end ? ' END' : ''} ${s.payload.length} bytes`).join('\n'),
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
  });

  it('caps connections per client address at the TLS port: 3 held, the rest refused at once, another address served; the default cap holds them all', async () => {
    const hoard = async (ip: string, attempts: number) => {
      const outcomes = await Promise.all(
        Array.from({ length: attempts }, async () => {
          const opened = Date.now();
          try {
            return { client: await BinaryClient.connectTls(ip, clientTls()), ms: Date.now() - opened };
          } catch {
            return { client: undefined, ms: Date.now() - opened };
          }
        }),
      );
      const held = outcomes.flatMap((o) => (o.client ? [o.client] : []));
      return { held: held.length, refusedMs: outcomes.filter((o) => !o.client).map((o) => o.ms), release: () => held.forEach((c) => c.close()) };
    };
    // The readiness probe's connection may still be counted for a moment: wait until the cap is all free.
    const capped = await pollUntil(
      async () => {
        const attempt = await hoard(cappedServer.ip, 5);
        if (attempt.held === 3) return attempt;
        attempt.release();
        return undefined;
      },
      { timeoutMs: 10_000, what: 'the host holds exactly 3 TLS connections of 5 to the capped server', diagnose: cappedServer.logs },
    );
    try {
      expect(capped.refusedMs).toHaveLength(2);
      expect(Math.max(...capped.refusedMs)).toBeLessThan(1000);
      expect(await dalli(cappedServer.ip, `capped-${Math.random().toString(36).slice(2)}`, 'other-address')).toBe('ok other-address');
      expect(await cappedServer.logs()).toMatch(/client [0-9.]+ holds 3 connections \(MEMCACHED_MAX_CONNECTIONS_PER_CLIENT=3\)/);
    } finally {
      capped.release();
    }
    const uncapped = await hoard(tlsServer.ip, 5);
    uncapped.release();
    expect(uncapped.held).toBe(5);
  });

  it('applies the allowlist at the TLS port: the allowed client is served, this host is dropped, and is served where no allowlist is set', async () => {
    expect(await dalli(guardedServer.ip, `allowed-${Math.random().toString(36).slice(2)}`, 'allowed')).toBe('ok allowed');
    const dropped = await tlsRoundTrip(guardedServer.ip, clientTls(), user);
    expect(dropped).toMatchObject({ handshake: false, roundTrip: false });
    expect(dropped.error).toMatch(/timed out/);
    expect(await tlsRoundTrip(tlsServer.ip, clientTls(), user)).toMatchObject({ roundTrip: true });
  });

  it(`health check, signals and exit codes with ${serving.join(' and ')} serving: unhealthy while one is frozen, healthy after; docker stop exits 0; killing one ends the container non-zero`, async () => {
    const server = await startTls(network.name, secret, { ipv4Address: address(HOST.lifecycle) });
    const healthy = async () => (await execIn(server.container, ['/usr/local/bin/memcached-healthcheck'])).exitCode === 0;
    expect(await healthy()).toBe(true);
    for (const command of serving) {
      const [pid] = await hostPids(server.container, command);
      if (pid === undefined) throw new Error(`no ${command} process in ${server.container.getId()}`);
      process.kill(pid, 'SIGSTOP');
      try {
        expect({ command, healthy: await healthy() }).toEqual({ command, healthy: false });
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await pollUntil(async () => ((await healthy()) ? true : undefined), { timeoutMs: 10_000, what: `healthy again after ${command} resumes` });
    }
    const container = docker.getContainer(server.container.getId());
    const stopping = Date.now();
    await container.stop({ t: 10 });
    const stopMs = Date.now() - stopping;
    expect({ exitCode: (await container.inspect()).State.ExitCode, promptly: stopMs < 5000 }).toEqual({ exitCode: 0, promptly: true });
    for (const [index, command] of serving.entries()) {
      const victim = await startTls(network.name, secret, { ipv4Address: address(index === 0 ? HOST.killed : HOST.killedFront) });
      const [pid] = await hostPids(victim.container, command);
      if (pid === undefined) throw new Error(`no ${command} process in ${victim.container.getId()}`);
      process.kill(pid, 'SIGKILL');
      const { StatusCode } = (await docker.getContainer(victim.container.getId()).wait()) as { StatusCode: number };
      expect({ command, exitCode: StatusCode === 0 ? 0 : 'non-zero' }).toEqual({ command, exitCode: 'non-zero' });
      if (serving.length > 1) expect(await victim.logs()).toContain(`memcached-hardened: ${command} exited with status 137; stopping the rest`);
    }
  });
});
