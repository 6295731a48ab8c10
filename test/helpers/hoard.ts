import { BinaryClient, Op, tryAuthenticatedRoundTrip, type AuthAttempt } from '../../lib/binary-client.js';

/** What one client address got when it opened many connections and never authenticated. */
export interface Hoard {
  /** Connections memcached kept: still open and answering. */
  readonly held: BinaryClient[];
  /** Connections closed by the server (or never established). */
  readonly refused: number;
  /** For each connection the server closed: milliseconds from connected to closed. */
  readonly refusalMs: number[];
  release(): void;
}

/** True when memcached answers an unauthenticated `version` on this connection (any status counts). */
export async function answers(client: BinaryClient, timeoutMs = 3000): Promise<boolean> {
  return (await client.request(Op.version, '', '', undefined, timeoutMs).catch(() => undefined)) !== undefined;
}

/**
 * Opens `attempts` connections from this host to ip:11211 and never authenticates. Each then sends one
 * unauthenticated `version`: memcached answers the connections it keeps, and the ones refused at accept
 * are closed, so the verdict needs no waiting, and every accept is done when this returns.
 */
export async function hoardConnections(ip: string, attempts: number): Promise<Hoard> {
  const opened: Array<{ client: BinaryClient; connectedAt: number } | undefined> = [];
  for (let i = 0; i < attempts; i += 20) {
    const batch = Array.from({ length: Math.min(20, attempts - i) }, () =>
      BinaryClient.connect(ip, 11211, 5000).then(
        (client) => ({ client, connectedAt: Date.now() }),
        () => undefined,
      ),
    );
    opened.push(...(await Promise.all(batch)));
  }
  const verdicts = await Promise.all(
    opened.map(async (entry) => {
      if (entry === undefined) return false;
      if (await answers(entry.client)) return true;
      await entry.client.read(1 << 20); // whatever else the refusal says, up to the server's close
      return false;
    }),
  );
  const held = opened.filter((entry, i) => entry !== undefined && verdicts[i]).map((entry) => entry!.client);
  const refusalMs = opened.flatMap((entry) =>
    entry?.client.closedAt === undefined ? [] : [entry.client.closedAt - entry.connectedAt],
  );
  return {
    held,
    refused: attempts - held.length,
    refusalMs,
    release: () => opened.forEach((entry) => entry?.client.close()),
  };
}

/** Authenticate + set/get from this host; a connection the server refuses (or never accepts) is not served. */
export function served(ip: string, name: string, password: string): Promise<AuthAttempt> {
  return tryAuthenticatedRoundTrip(ip, name, password).catch(() => ({
    authStatus: 'closed' as const,
    roundTrip: false,
  }));
}
