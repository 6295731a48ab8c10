import type { Profile } from '../../src/profiles.js';
import { tlsLayer } from '../../src/render.js';
import { TLS_LABEL, TLS_MARKER } from '../../src/tls.js';
import { buildTestImage } from './test-image.js';

// No vitest import: the global setup builds these images.

/**
 * The TLS and plaintext images of a target, when the suite verifies an image it did not build
 * (MEMCACHED_IMAGE). A plaintext image gets the `--tls` build's own TLS layer on top, so the TLS checks
 * run on exactly the image under test (and on every weakening of it the mutation check builds). A TLS
 * image is tested as it is by the TLS checks, and without its TLS marker by every other check, which
 * speak plaintext.
 */
export async function tlsPair(
  image: string,
  labels: Record<string, string>,
  profile: Profile,
): Promise<{ image: string; tlsImage: string }> {
  const tag = (kind: string) => `memcached-hardened-test/${kind}:${profile.name}`;
  if (labels[TLS_LABEL] === 'true') {
    const withoutTls = ['USER root', `RUN rm ${TLS_MARKER}`, 'USER memcache', `LABEL ${TLS_LABEL}=false`];
    return {
      image: await buildTestImage([`FROM ${image}`, ...withoutTls, ''].join('\n'), tag('tls-off')),
      tlsImage: image,
    };
  }
  const withTls = ['USER root', tlsLayer(profile), 'USER memcache', `LABEL ${TLS_LABEL}=true`];
  return { image, tlsImage: await buildTestImage([`FROM ${image}`, ...withTls, ''].join('\n'), tag('tls-on')) };
}
