import { parseImageReference } from '../../src/image-reference.js';

/** What the examples' Kubernetes Deployments name the image as until the release's reference is filled in. */
export const RELEASE_PLACEHOLDER = 'REGISTRY/REPOSITORY@DIGEST';

/** The README's `sed "s|REGISTRY/REPOSITORY@DIGEST|$reference|"`, on text. */
export const fillReleaseReference = (text: string, reference: string) =>
  text.replaceAll(RELEASE_PLACEHOLDER, reference);

/** The image reference when it names a digest; throws for a tag (which can be pushed over) or a non-reference. */
export function deployedByDigest(image: string): string {
  if (!parseImageReference(image).digest) throw new Error(`${image} is not by digest`);
  return image;
}
