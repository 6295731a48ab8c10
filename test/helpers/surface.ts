import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLS_SECRET_DIR } from '../../src/tls.js';
import { tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import type { SaslUser } from '../../src/credentials.js';
import { pollUntil } from './poll.js';
import { execIn, READY_TIMEOUT_MS, startServer, type RunningServer, type ServerOptions } from './server.js';
import { targetRows, type TestTarget } from './targets.js';
import { issueWithReadmeCommands, mountableSecretDir, tlsRoundTrip } from './tls.js';
import { buildVariant, type Variant } from './variants.js';
import type { Weakening } from './weakenings.js';

// The surface checks (listeners, TLS parameters, layers, files, logs) inventory every variant of an image
// the suite was given: the plain image and its TLS build, each in its credential mode.

export type Surface = 'plain' | 'tls';

/** The target's image for one surface: the TLS build carries the name suffix the TLS checks use. */
export function surfaceTarget(target: TestTarget, surface: Surface): TestTarget {
  if (surface === 'plain') return target;
  if (!target.tlsImage)
    throw new Error(`no TLS image for ${target.name}: the global setup builds one for integration runs`);
  return { ...target, name: `${target.name} (TLS)`, image: target.tlsImage };
}

/** `describe.each` rows: every target, plain and TLS (where the run built TLS images: see global-setup). */
export function surfaceRows(): Array<[string, TestTarget, Surface]> {
  return targetRows().flatMap(([name, target]): Array<[string, TestTarget, Surface]> => [
    [name, target, 'plain'],
    ...(target.tlsImage ? [[`${name} (TLS)`, target, 'tls'] as [string, TestTarget, Surface]] : []),
  ]);
}

/** A certificate secret issued with the commands of docs/tls.md, mountable into a TLS server. */
export interface TlsSecret {
  /** The folder to mount at the image's certificate secret path. */
  readonly dir: string;
  /** The server's private key, as PEM text: key material no log or layer may hold. */
  readonly keyPem: string;
  /** The CA certificate clients trust the server by (for the name `memcached`). */
  readonly caPem: string;
  remove(): void;
}

/** Issues a server certificate (for `DNS:memcached` and the given IPv4 addresses) and its secret folder. */
export function issueTlsSecret(addresses: readonly string[] = []): TlsSecret {
  const scratch = mkdtempSync(join(tmpdir(), 'mh-surface-tls-'));
  const names = ['DNS:memcached', ...addresses.map((address) => `IP:${address}`)].join(',');
  const issued = issueWithReadmeCommands(join(scratch, 'ca'), names);
  const dir = mountableSecretDir(join(scratch, 'secret'), { 'tls.crt': issued.certificate, 'tls.key': issued.key });
  const keyPem = readFileSync(issued.key, 'utf8');
  return {
    dir,
    keyPem,
    caPem: readFileSync(issued.caCertificate, 'utf8'),
    remove: () => rmSync(scratch, { recursive: true, force: true }),
  };
}

/**
 * Starts a target's image for one surface on `network`. A TLS server gets `secret` mounted and is waited
 * for until the image's own health check passes (the TLS port answers a ClientHello and memcached's
 * loopback listener refuses an unauthenticated GET): the host cannot speak plaintext to it. A server that
 * never gets healthy (an image weakened to serve plaintext, say) is returned all the same, for the checks
 * to judge what it serves.
 */
export async function startSurface(
  target: TestTarget,
  surface: Surface,
  network: string,
  options: ServerOptions & { readonly secret?: TlsSecret } = {},
): Promise<RunningServer> {
  if (surface === 'plain') return startServer(target, network, options);
  if (!options.secret) throw new Error('a TLS server needs a certificate secret (issueTlsSecret)');
  const binds = [...(options.binds ?? []), `${options.secret.dir}:${TLS_SECRET_DIR}:ro`];
  const server = await startServer(surfaceTarget(target, 'tls'), network, {
    ...options,
    binds,
    unreachableFromHost: true,
  });
  if (options.entrypoint) return server;
  await pollUntil(
    async () =>
      (await execIn(server.container, ['/usr/local/bin/memcached-healthcheck'])).exitCode === 0 ? true : undefined,
    { timeoutMs: READY_TIMEOUT_MS, what: `the TLS server at ${server.ip} passes its health check` },
  ).catch(() => undefined);
  return server;
}

/** A weakened variant of one surface's image, as a target that startSurface starts on that surface. */
export async function buildSurfaceVariant(
  target: TestTarget,
  surface: Surface,
  ...weakenings: Weakening[]
): Promise<Variant> {
  const variant = await buildVariant(surfaceTarget(target, surface), ...weakenings);
  const image = variant.target.image;
  return { ...variant, target: { ...variant.target, image, tlsImage: surface === 'tls' ? image : undefined } };
}

/** An authenticated set/get from this host: in plaintext, or over TLS trusting the secret's CA. */
export async function surfaceRoundTrip(
  server: RunningServer,
  surface: Surface,
  user: SaslUser,
  secret?: TlsSecret,
): Promise<{ authStatus: number | 'closed'; roundTrip: boolean }> {
  if (surface === 'plain') return tryAuthenticatedRoundTrip(server.ip, user.name, user.password);
  if (!secret) throw new Error('a TLS round trip needs the certificate secret the server was started with');
  const { authStatus, roundTrip } = await tlsRoundTrip(server.ip, { ca: secret.caPem, servername: 'memcached' }, user);
  return { authStatus, roundTrip };
}
