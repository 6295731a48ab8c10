import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { GenericContainer, type StartedTestContainer } from 'testcontainers';
import { beforeAll } from 'vitest';
import { BinaryClient, encodeRequest, Op, Status } from '../../lib/binary-client.js';
import type { SaslUser } from '../../src/credentials.js';
import { TLS_SECRET_DIR } from '../../src/tls.js';
import { clientsImage, roundTripVerdict, runClient } from './clients.js';
import { suiteLabels, type IsolatedNetwork } from './docker.js';
import { isolatedServers, type ServerBench } from './fixture.js';
import { pollUntil } from './poll.js';
import { startServer, type RunningServer, type ServerOptions } from './server.js';
import { firstUser, type TestTarget } from './targets.js';
import {
  issueWithReadmeCommands,
  mountableSecretDir,
  parseSClient,
  readableDir,
  tlsRoundTrip,
  type Handshake,
  type IssuedFiles,
} from './tls.js';

/** Where the client host sees its CA, certificates and keys. */
export const PKI = '/pki';

/** What a plaintext client got on the port: nothing (at most a TLS alert), or memcached's answer. */
export async function plaintextAnswer(ip: string): Promise<string> {
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
  const replies = await Promise.all([
    ask(Buffer.concat([encodeRequest(Op.saslListMechs), encodeRequest(Op.version)])),
    ask(Buffer.from('stats\r\nversion\r\n')),
  ]);
  const served = replies.filter((reply) => reply.length > 0 && reply[0] !== 0x15);
  if (served.length === 0) return 'nothing';
  return served.map((reply) => reply.toString('latin1').replace(/[^\x20-\x7e]+/g, '.')).join(' | ');
}

/** How `startTls` starts and waits for a TLS server. */
export type TlsServerOptions = ServerOptions & { mutual?: boolean; readyFromClientHost?: boolean };

/**
 * The set-up the TLS files share, on an isolated network with fixed addresses: one CA for the servers and
 * their clients (issued with the README's commands, the server certificate naming every address of
 * `hosts`), another CA for a stranger, the certificate secrets, a client host holding the client files,
 * and the clients this host and the client host run. Call `tlsBench` in the describe block, before the
 * block's own hooks; the servers it starts are ended with the block.
 */
export class TlsBench {
  readonly user: SaslUser;
  /** The target with its TLS image as the image. */
  readonly tlsTarget: TestTarget;
  readonly scratch = mkdtempSync(join(tmpdir(), 'mh-tls-'));
  ours!: IssuedFiles;
  foreign!: IssuedFiles;
  /** The secret folder with the certificate and its key; `mutualSecret` adds the CA (clients must show one). */
  secret!: string;
  mutualSecret!: string;
  clientHost!: StartedTestContainer;

  constructor(
    readonly bench: ServerBench,
    readonly target: TestTarget,
    private readonly hosts: Readonly<Record<string, number>>,
  ) {
    this.user = firstUser(target);
    this.tlsTarget = { ...target, name: `${target.name} (TLS)`, image: target.tlsImage ?? target.image };
    bench.keep({ remove: () => rmSync(this.scratch, { recursive: true, force: true }) });
  }

  get network(): IsolatedNetwork {
    return this.bench.network;
  }

  /** The fixed address of a host number on the bench's network. */
  address(host: number): string {
    return this.network.fixedAddress(host);
  }

  async setUp(): Promise<void> {
    if (!this.target.tlsImage) {
      throw new Error(`no TLS image for ${this.target.name}: the global setup builds one for integration runs`);
    }
    const scratch = this.scratch;
    const names = ['DNS:memcached', ...Object.values(this.hosts).map((host) => `IP:${this.address(host)}`)].join(',');
    this.ours = issueWithReadmeCommands(join(scratch, 'ca'), names);
    this.foreign = issueWithReadmeCommands(join(scratch, 'other-ca'), 'DNS:memcached');
    const ours = this.ours;
    this.secret = mountableSecretDir(join(scratch, 'secret'), { 'tls.crt': ours.certificate, 'tls.key': ours.key });
    this.mutualSecret = mountableSecretDir(join(scratch, 'secret-mutual'), {
      'tls.crt': ours.certificate,
      'tls.key': ours.key,
      'ca.crt': ours.caCertificate,
    });
    const clientFiles = readableDir(join(scratch, 'client'), {
      'ca.crt': ours.caCertificate,
      'client.crt': ours.clientCertificate,
      'client.key': ours.clientKey,
      'foreign.crt': this.foreign.clientCertificate,
      'foreign.key': this.foreign.clientKey,
      // For the permissive control server (TLS 1.0 allowed) the client host runs itself.
      'permissive.crt': this.foreign.certificate,
      'permissive.key': this.foreign.key,
    });
    const host = await new GenericContainer(clientsImage())
      .withNetworkMode(this.network.name)
      .withLabels(suiteLabels())
      .withEntrypoint(['sleep', 'infinity'])
      .withBindMounts([{ source: clientFiles, target: PKI, mode: 'ro' }])
      .start();
    this.bench.keep({ stop: () => host.stop({ remove: true }), container: host });
    this.clientHost = host;
  }

  /** How this host's node client trusts the server (the CA; the address is checked against the certificate). */
  clientTls(mutual = false): ConnectionOptions {
    return {
      ca: readFileSync(this.ours.caCertificate),
      ...(mutual ? { cert: readFileSync(this.ours.clientCertificate), key: readFileSync(this.ours.clientKey) } : {}),
    };
  }

  /** The Ruby client's TLS settings in the client host (environment, never argv). */
  dalliTls(mutual = false): Record<string, string> {
    return {
      MEMCACHED_TLS_CA_FILE: `${PKI}/ca.crt`,
      ...(mutual ? { MEMCACHED_TLS_CERT_FILE: `${PKI}/client.crt`, MEMCACHED_TLS_KEY_FILE: `${PKI}/client.key` } : {}),
    };
  }

  /** A Dalli round trip from the client host: "ok <value>", or what went wrong. */
  async dalli(
    ip: string,
    key: string,
    value: string,
    credentials = this.user,
    settings = this.dalliTls(),
  ): Promise<string> {
    return roundTripVerdict(await runClient(this.clientHost, ['ruby', ip, key, value], credentials, 40, settings));
  }

  /** What a TLS server holds under a key, read by this host over TLS with the right password. */
  async storedOverTls(ip: string, key: string, mutual = false): Promise<string | undefined> {
    const client = await BinaryClient.connectTls(ip, this.clientTls(mutual));
    try {
      if ((await client.authenticate(this.user.name, this.user.password))?.status !== Status.ok) {
        throw new Error(`the suite could not authenticate to ${ip} over TLS`);
      }
      const got = await client.get(key);
      return got?.status === Status.ok ? got.value.toString() : undefined;
    } finally {
      client.close();
    }
  }

  /** openssl s_client in the client host, parsed. */
  async sClient(args: string): Promise<Handshake> {
    const script = `timeout 10 openssl s_client ${args} </dev/null 2>&1`;
    return parseSClient((await this.clientHost.exec(['sh', '-c', script])).output);
  }

  /** The TLS image with a certificate secret mounted; ready once a TLS client (this host, or the client host)
   * round-trips. */
  async startTls(network: string, secretDir: string, options: TlsServerOptions = {}): Promise<RunningServer> {
    const binds = [...(options.binds ?? []), `${secretDir}:${TLS_SECRET_DIR}:ro`];
    const server = await this.started(
      startServer(this.tlsTarget, network, { ...options, binds, unreachableFromHost: true }),
    );
    await pollUntil(
      async () => {
        if (options.readyFromClientHost) {
          const verdict = await this.dalli(server.ip, 'ready', 'yes', this.user, this.dalliTls(options.mutual));
          return verdict === 'ok yes' ? true : undefined;
        }
        return (await tlsRoundTrip(server.ip, this.clientTls(options.mutual), this.user)).roundTrip ? true : undefined;
      },
      {
        timeoutMs: 20_000,
        what: `TLS at ${server.ip} serves an authenticated round trip`,
        diagnose: async () =>
          `a plaintext client got: ${await plaintextAnswer(server.ip).catch((e: Error) => e.message)}\n` +
          (await server.logs()),
      },
    );
    return server;
  }

  /** A server started some other way, ended with the bench. */
  async started(server: Promise<RunningServer>): Promise<RunningServer> {
    return this.bench.keep(await server);
  }
}

/** A TLS bench on its own isolated network, set up in a beforeAll (see TlsBench). */
export function tlsBench(purpose: string, target: TestTarget, hosts: Readonly<Record<string, number>>): TlsBench {
  const tls = new TlsBench(isolatedServers(purpose, { fixedAddresses: true }), target, hosts);
  beforeAll(() => tls.setUp());
  return tls;
}
