import { describe, expect, it } from 'vitest';
import { imageLabels } from '../src/build.js';
import { UserError } from '../src/errors.js';
import { loadProfile } from '../src/profiles.js';
import { sourceDateEpoch, sourceInfo } from '../src/source.js';

describe('source date', () => {
  it('reads SOURCE_DATE_EPOCH as whole seconds and refuses anything else', () => {
    expect(sourceDateEpoch({})).toBeUndefined();
    expect(sourceDateEpoch({ SOURCE_DATE_EPOCH: '' })).toBeUndefined();
    expect(sourceDateEpoch({ SOURCE_DATE_EPOCH: '1700000000' })).toBe(1_700_000_000);
    for (const bad of ['-1', '1.5', 'yesterday', '1e9']) expect(() => sourceDateEpoch({ SOURCE_DATE_EPOCH: bad })).toThrow(UserError);
  });

  it('dates the source with SOURCE_DATE_EPOCH when set, never with the clock', async () => {
    expect((await sourceInfo({ SOURCE_DATE_EPOCH: '86400' })).date?.toISOString()).toBe('1970-01-02T00:00:00.000Z');
    const a = await sourceInfo({});
    const b = await sourceInfo({});
    expect(a).toEqual(b);
    expect(a.revision).toMatch(/^[0-9a-f]{40}$/);
  });
});

describe('imageLabels', () => {
  const profile = loadProfile('ubuntu-16.04');

  it('label the source, not the moment of the build', () => {
    const labels = imageLabels(profile, 'server', { revision: 'abc', date: new Date(0) }, '1.2.3');
    expect(labels).toMatchObject({
      'org.opencontainers.image.created': '1970-01-01T00:00:00.000Z',
      'org.opencontainers.image.revision': 'abc',
      'org.opencontainers.image.version': '1.2.3',
      'memcached-hardened.target': 'server',
    });
  });

  it('leave out the creation date when the source has none', () => {
    expect(imageLabels(profile, 'client', { revision: 'unknown' }, '1.2.3')).not.toHaveProperty(['org.opencontainers.image.created']);
  });
});
