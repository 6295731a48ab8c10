import type { StartedTestContainer } from 'testcontainers';
import { inject } from 'vitest';
import type { SaslUser } from '../../src/credentials.js';
import { BinaryClient, Status } from '../../lib/binary-client.js';

/** The round-trip clients of the clients image (test/clients/run), one library each. */
export const CLIENTS = ['php', 'python', 'ruby', 'java', 'c', 'node'] as const;
export type ClientName = (typeof CLIENTS)[number];

/** The clients image id, built by the global setup. */
export function clientsImage(): string {
  const id = inject('clientsImage');
  if (!id) throw new Error('no clients image: run the integration tests through vitest (its global setup builds it)');
  return id;
}

/**
 * Runs `/clients/run ARGS` in a host started from the clients image and returns its stdout. The
 * credentials (and `settings`, e.g. a client's TLS files) go in through the exec's environment, never its
 * argv; `timeout` bounds a hung client.
 */
export async function runClient(
  host: StartedTestContainer,
  args: string[],
  credentials?: SaslUser,
  timeoutSeconds = 40,
  settings: Record<string, string> = {},
): Promise<string> {
  const env: Record<string, string> = {
    ...settings,
    ...(credentials ? { MEMCACHED_USERNAME: credentials.name, MEMCACHED_PASSWORD: credentials.password } : {}),
  };
  const result = await host.exec(['timeout', String(timeoutSeconds), '/clients/run', ...args], { env });
  return result.stdout;
}

/** The verdict of a round-trip client: its one "ROUNDTRIP ..." line, without the prefix. */
export function roundTripVerdict(stdout: string): string {
  const lines = stdout.split('\n').filter((line) => line.startsWith('ROUNDTRIP '));
  if (lines.length !== 1) throw new Error(`expected one ROUNDTRIP line, got ${lines.length}:\n${stdout}`);
  return lines[0]!.slice('ROUNDTRIP '.length).trim();
}

/** "client library version" lines of `/clients/run versions`, as client → "library version". */
export function parseLibraryVersions(stdout: string): Map<string, string> {
  const versions = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const match = /^(\S+) (\S+ \S+)$/.exec(line.trim());
    if (match) versions.set(match[1]!, match[2]!);
  }
  return versions;
}

/**
 * What the server itself holds under each key, read directly by the suite over one authenticated
 * connection: found keys only. Throws unless the suite authenticated, so an absence is never a refusal.
 */
export async function storedValues(ip: string, user: SaslUser, keys: readonly string[]): Promise<Map<string, string>> {
  const client = await BinaryClient.connect(ip);
  try {
    const auth = await client.authenticate(user.name, user.password);
    if (auth?.status !== Status.ok)
      throw new Error(`the suite could not authenticate to ${ip} (status ${auth?.status ?? 'closed'})`);
    const found = new Map<string, string>();
    for (const key of keys) {
      const got = await client.get(key);
      if (got?.status === Status.ok) found.set(key, got.value.toString());
      else if (got?.status !== Status.keyNotFound)
        throw new Error(`get ${key} from ${ip}: status ${got?.status ?? 'closed'}`);
    }
    return found;
  } finally {
    client.close();
  }
}
