import { describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/profiles.js';
import { isolatedServers } from '../helpers/fixture.js';
import { FLAG_CHECKS, type FlagCheck } from '../helpers/flag-checks.js';
import type { RunningServer } from '../helpers/server.js';
import { firstUser, targetRows, type TestTarget } from '../helpers/targets.js';
import { buildVariant } from '../helpers/variants.js';

describe.each(targetRows())('%s', (_profile, target) => {
  const user = firstUser(target);
  const flags = loadProfile(target.profile).memcached.hardeningFlags;
  const bench = isolatedServers('flags');

  /** A server of the image with the check's setup applied (and the flag removed for the control). */
  async function serverFor(check: FlagCheck, withFlag: boolean): Promise<RunningServer> {
    let image: TestTarget = target;
    const weakenings = [...check.setup, ...(withFlag ? [] : [check.control])];
    if (weakenings.length > 0) {
      image = bench.keep(await buildVariant(target, ...weakenings)).target;
    }
    return bench.start(image);
  }

  it('the profile lists hardening flags, each with a check', () => {
    expect(flags.length).toBeGreaterThan(0);
    expect(flags.filter((flag) => !FLAG_CHECKS[flag])).toEqual([]);
  });

  it.each(flags)('%s is enforced by behaviour; a control without it is not', async (flag) => {
    const check = FLAG_CHECKS[flag];
    if (!check) throw new Error(`no behavioural check for ${flag}`);
    const [hardened, control] = await Promise.all([serverFor(check, true), serverFor(check, false)]);
    expect({ flag, forbids: check.forbids, verdict: await check.probe(hardened.ip, user) }).toEqual({
      flag,
      forbids: check.forbids,
      verdict: 'enforced',
    });
    expect({ flag, control: await check.probe(control.ip, user) }).toEqual({ flag, control: 'not enforced' });
  });
});
