import { describe, expect, it } from 'vitest';
import { listProfiles, loadProfile } from '../src/profiles.js';
import { FLAG_CHECKS } from './helpers/flag-checks.js';

describe('hardening flags', () => {
  it.each(listProfiles())('every hardening flag of %s has a behavioural check', (name) => {
    const unchecked = loadProfile(name).memcached.hardeningFlags.filter((flag) => !(flag in FLAG_CHECKS));
    expect(unchecked).toEqual([]);
  });

  it('a profile listing a flag without a check is caught', () => {
    expect(['-F', '-Y'].filter((flag) => !(flag in FLAG_CHECKS))).toEqual(['-Y']);
  });
});
