import { beforeAll, describe, expect, it } from 'vitest';
import { BinaryClient, Op, plainAuthMessage, Status } from '../../lib/binary-client.js';
import { isolatedServers } from '../helpers/fixture.js';
import type { RunningServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';
import { buildVariant, type Variant } from '../helpers/variants.js';
import { ANONYMOUS_MECHANISM } from '../helpers/weakenings.js';

interface Attempt {
  readonly mechanism: string;
  /** The initial response sent with SASL AUTH. */
  readonly start: Buffer;
  /** Responses for each challenge (status 0x21) the server may send back. */
  readonly steps: Buffer[];
}

const bytes = (text: string) => Buffer.from(text, 'latin1');

/**
 * Every mechanism Cyrus SASL (and its common plugins) can offer, each with plausible input for the user
 * under test: whatever the server offers, only PLAIN with the right password may authenticate.
 */
function attempts(user: string, password: string): Attempt[] {
  const nonce = 'fyko+d2lbbFgONRv9qkxdawL';
  return [
    { mechanism: 'PLAIN', start: plainAuthMessage(user, password), steps: [] },
    { mechanism: 'ANONYMOUS', start: bytes('probe@example.org'), steps: [] },
    { mechanism: 'EXTERNAL', start: bytes(user), steps: [bytes('')] },
    { mechanism: 'LOGIN', start: bytes(''), steps: [bytes(user), bytes(password)] },
    { mechanism: 'CRAM-MD5', start: bytes(''), steps: [bytes(`${user} b913a602c7eda7a495b4e6e7334d3890`)] },
    {
      mechanism: 'DIGEST-MD5',
      start: bytes(''),
      steps: [
        bytes(
          `username="${user}",nonce="OA6MG9tEQGm2hh",cnonce="${nonce}",nc=00000001,qop=auth,` +
            'digest-uri="memcached/localhost",response=d388dad90d4bbd760a152321f2143af7,charset=utf-8',
        ),
        bytes(''),
      ],
    },
    {
      mechanism: 'SCRAM-SHA-1',
      start: bytes(`n,,n=${user},r=${nonce}`),
      steps: [bytes(`c=biws,r=${nonce}3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=`)],
    },
    {
      mechanism: 'SCRAM-SHA-256',
      start: bytes(`n,,n=${user},r=${nonce}`),
      steps: [bytes(`c=biws,r=${nonce}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`)],
    },
    {
      mechanism: 'NTLM',
      start: Buffer.from('4e544c4d5353500001000000078208a2000000000000000000000000000000000000', 'hex'),
      steps: [Buffer.from('4e544c4d53535000030000001800180040000000', 'hex')],
    },
    { mechanism: 'OTP', start: bytes(`\0${user}`), steps: [bytes('word:BOND FOGY DRAB NE RISE MART')] },
    { mechanism: 'GSSAPI', start: Buffer.from('6082011e06092a864886f71201020201006e', 'hex'), steps: [bytes('')] },
    { mechanism: 'GS2-KRB5', start: bytes('n,,'), steps: [bytes('')] },
    { mechanism: 'SRP', start: bytes(`\0\0\0${String.fromCharCode(user.length)}${user}`), steps: [bytes('')] },
    { mechanism: 'PASSDSS-3DES-1', start: bytes(`\0${user}`), steps: [bytes('')] },
    { mechanism: 'X-NO-SUCH-MECHANISM', start: bytes(user), steps: [] },
  ];
}

type Verdict = 'authenticated' | 'refused';

/** One attempt, on its own connection: authenticated if the exchange ends in OK or a set/get round trip works. */
async function attempt(ip: string, { mechanism, start, steps }: Attempt): Promise<Verdict> {
  const client = await BinaryClient.connect(ip);
  try {
    let response = await client.request(Op.saslAuth, mechanism, start);
    for (const step of steps) {
      if (response?.status !== Status.authContinue) break;
      response = await client.request(Op.saslStep, mechanism, step);
    }
    if (response?.status === Status.ok) return 'authenticated';
    if (client.isClosed) return 'refused';
    const set = await client.set(`mech-${mechanism}`, 'value');
    return set?.status === Status.ok ? 'authenticated' : 'refused';
  } finally {
    client.close();
  }
}

async function verdicts(ip: string, all: Attempt[]): Promise<Record<string, Verdict>> {
  const result: Record<string, Verdict> = {};
  for (const a of all) result[a.mechanism] = await attempt(ip, a);
  return result;
}

async function announced(ip: string): Promise<string[]> {
  const client = await BinaryClient.connect(ip);
  try {
    const response = await client.listMechanisms();
    if (response?.status !== Status.ok)
      throw new Error(`list-mechanisms answered ${response ? `status ${response.status}` : 'nothing'}`);
    return response.value.toString('latin1').trim().split(/\s+/).sort();
  } finally {
    client.close();
  }
}

describe.each(targetRows())('%s', (_profile, target) => {
  const user = firstUser(target);
  const all = attempts(user.name, user.password);
  const bench = isolatedServers('mechanisms');
  let server: RunningServer;
  let variant: Variant;
  let anonymous: RunningServer;

  beforeAll(async () => {
    variant = bench.keep(await buildVariant(target, ANONYMOUS_MECHANISM));
    [server, anonymous] = await Promise.all([bench.start(target), bench.start(variant.target)]);
  });

  it('announces exactly PLAIN; the control that also offers ANONYMOUS announces it', async () => {
    expect(await announced(server.ip)).toEqual(['PLAIN']);
    expect(await announced(anonymous.ip)).toEqual(['ANONYMOUS', 'PLAIN']);
  });

  it(
    'authenticates only PLAIN with the right password, whatever mechanism is tried; ' +
      'the ANONYMOUS control lets anyone in',
    async () => {
      const refusedExceptPlain = Object.fromEntries(
        all.map((a) => [a.mechanism, a.mechanism === 'PLAIN' ? 'authenticated' : 'refused']),
      );
      expect(await verdicts(server.ip, all)).toEqual(refusedExceptPlain);
      expect(await verdicts(anonymous.ip, all)).toEqual({ ...refusedExceptPlain, ANONYMOUS: 'authenticated' });
    },
  );
});
