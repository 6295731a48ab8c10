import { BinaryClient, Op, Status } from '../../lib/binary-client.js';
import { SASL_OFF, withoutFlag, type Weakening } from './weakenings.js';

export type FlagVerdict = 'enforced' | 'not enforced';

/**
 * How one memcached hardening flag is proven by behaviour: a probe against a server, run on the image as
 * built (expected: enforced) and on a control without the flag (expected: not enforced).
 */
export interface FlagCheck {
  /** What the flag forbids, for test names. */
  readonly forbids: string;
  /** Weakenings every server of this check gets first (e.g. SASL off, to reach an ASCII-only command). */
  readonly setup: readonly Weakening[];
  /** The control: the same image without the flag. */
  readonly control: Weakening;
  probe(ip: string, user: { name: string; password: string }): Promise<FlagVerdict>;
}

const freshKey = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;

/** -F: an authenticated client's flush leaves the cache as it was. */
async function flushProbe(ip: string, user: { name: string; password: string }): Promise<FlagVerdict> {
  const client = await BinaryClient.connect(ip);
  try {
    const auth = await client.authenticate(user.name, user.password);
    if (auth?.status !== Status.ok)
      throw new Error(`flush probe: authentication failed (${auth ? `status ${auth.status}` : 'closed'})`);
    const key = freshKey('flush');
    if ((await client.set(key, 'kept'))?.status !== Status.ok) throw new Error('flush probe: set failed');
    await client.request(Op.flush);
    const after = await client.get(key);
    return after?.status === Status.ok && after.value.toString() === 'kept' ? 'enforced' : 'not enforced';
  } finally {
    client.close();
  }
}

/** ASCII reply text until a line ends it (END, STORED or an error), or the time is up. */
async function asciiReply(client: BinaryClient, timeoutMs = 3000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let reply = '';
  while (Date.now() < deadline && !client.isClosed && !/(^|\n)(END|STORED|[A-Z_]*ERROR[^\n]*)\r\n$/.test(reply)) {
    reply += (await client.read(65536, 200)).toString('latin1');
  }
  return reply;
}

/**
 * -X: no dump commands (lru_crawler metadump, stats cachedump). They exist only in the ASCII protocol,
 * which SASL turns off, so this probe runs with SASL off: it shows the flag itself works in this build.
 */
async function dumpProbe(ip: string): Promise<FlagVerdict> {
  const client = await BinaryClient.connect(ip);
  try {
    const key = freshKey('dump');
    client.write(Buffer.from(`set ${key} 0 60 4\r\ndump\r\n`));
    const stored = await asciiReply(client);
    if (!stored.startsWith('STORED'))
      throw new Error(`dump probe: the ASCII set was not stored: ${stored.slice(0, 80)}`);
    // metadump refuses to run behind pipelined commands, so it goes alone.
    client.write(Buffer.from('lru_crawler metadump all\r\n'));
    return (await asciiReply(client)).includes(key) ? 'not enforced' : 'enforced';
  } finally {
    client.close();
  }
}

/** One behavioural check for every hardening flag a profile may list (a unit test holds the profiles to it). */
export const FLAG_CHECKS: Readonly<Record<string, FlagCheck>> = {
  '-F': { forbids: 'flush_all', setup: [], control: withoutFlag('-F', 'flush-enabled'), probe: flushProbe },
  '-X': {
    forbids: 'cachedump and metadump',
    setup: [SASL_OFF],
    control: withoutFlag('-X', 'dump-enabled'),
    probe: (ip) => dumpProbe(ip),
  },
};
