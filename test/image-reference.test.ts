import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TAG,
  formatImageReference,
  imageName,
  imageReferenceProblem,
  parseImageReference,
  tagOf,
} from '../src/image-reference.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('parseImageReference', () => {
  it.each([
    ['ubuntu:16.04', { repository: 'ubuntu', tag: '16.04' }],
    ['memcached-hardened', { repository: 'memcached-hardened' }],
    ['team/memcached:1.0', { repository: 'team/memcached', tag: '1.0' }],
    ['localhost/memcached', { registry: 'localhost', repository: 'memcached' }],
    ['localhost:5000/a/b', { registry: 'localhost:5000', repository: 'a/b' }],
    [
      '127.0.0.1:5000/memcached-hardened:1.0',
      { registry: '127.0.0.1:5000', repository: 'memcached-hardened', tag: '1.0' },
    ],
    [
      'registry.local/platform/memcached:1.4.25',
      { registry: 'registry.local', repository: 'platform/memcached', tag: '1.4.25' },
    ],
    ['Registry/memcached', { registry: 'Registry', repository: 'memcached' }],
    [
      `registry.local:5000/memcached@${DIGEST}`,
      { registry: 'registry.local:5000', repository: 'memcached', digest: DIGEST },
    ],
    [`memcached:1.0@${DIGEST}`, { repository: 'memcached', tag: '1.0', digest: DIGEST }],
    ['team/a__b.c-d---e_f:Tag_1.x-y', { repository: 'team/a__b.c-d---e_f', tag: 'Tag_1.x-y' }],
  ])('reads %s', (text, expected) => {
    expect(parseImageReference(text)).toEqual(expected);
    expect(formatImageReference(parseImageReference(text))).toBe(text);
  });

  it.each([
    ['', /invalid repository ''/],
    ['UPPER:1', /invalid repository 'UPPER'/],
    ['name:bad tag', /invalid tag 'bad tag'/],
    ['name:', /invalid tag ''/],
    ['name:a:b', /invalid tag 'a:b'/],
    [`name:${'t'.repeat(129)}`, /invalid tag/],
    ['-name', /invalid repository/],
    ['a//b', /invalid repository/],
    ['team/', /invalid repository/],
    ['host-.local/a', /invalid registry host 'host-.local'/],
    ['host.local:port/a', /invalid registry host/],
    ['name@sha256:short', /invalid digest 'sha256:short'/],
    [`registry.local/${'a'.repeat(255)}`, /name longer than 255/],
  ])('refuses %j', (text, problem) => {
    expect(imageReferenceProblem(text)).toMatch(problem);
    expect(() => parseImageReference(text)).toThrow(problem);
  });

  it('names no problem for a valid reference', () => {
    expect(imageReferenceProblem('registry.local:5000/team/memcached:1.0')).toBeUndefined();
    expect(imageReferenceProblem('a'.repeat(255))).toBeUndefined();
  });
});

describe('the parts the engine wants', () => {
  it('gives the name without tag or digest, and the tag docker assumes when there is none', () => {
    const tagged = parseImageReference('registry.local:5000/team/memcached:1.0');
    expect(imageName(tagged)).toBe('registry.local:5000/team/memcached');
    expect(tagOf(tagged)).toBe('1.0');
    const untagged = parseImageReference('ubuntu');
    expect(imageName(untagged)).toBe('ubuntu');
    expect(tagOf(untagged)).toBe(DEFAULT_TAG);
    expect(DEFAULT_TAG).toBe('latest');
    expect(formatImageReference({ ...untagged, tag: tagOf(untagged) })).toBe('ubuntu:latest');
  });
});
