import { docker } from './resources.js';
import type { TestTarget } from './targets.js';
import { buildTestImage } from './test-image.js';
import { weakenedDockerfile, type Weakening } from './weakenings.js';

export interface Variant {
  /** The target with the weakened image in place of the real one (same users, same credential mode). */
  readonly target: TestTarget;
  remove(): Promise<void>;
}

/**
 * Builds a weakened variant of the image under test (the positive control of a check), each weakening
 * in turn on top of the previous one.
 */
export async function buildVariant(target: TestTarget, ...weakenings: Weakening[]): Promise<Variant> {
  const names = weakenings.map((w) => w.name).join('.');
  const suffix = Math.random().toString(36).slice(2, 8);
  const tag = `memcached-hardened-test/variant-${names}:${target.profile}-${target.credentials}-${suffix}`;
  const tags: string[] = [];
  let image = target.image;
  try {
    for (const [index, weakening] of weakenings.entries()) {
      const stepTag = index === weakenings.length - 1 ? tag : `${tag}-${index}`;
      tags.push(stepTag);
      image = await buildTestImage(
        weakenedDockerfile(image, weakening, { users: target.users, clientImage: target.clientImage }),
        stepTag,
      );
    }
  } catch (error) {
    await removeImages(tags);
    throw error;
  }
  return { target: { ...target, name: `${target.name} (${names})`, image }, remove: () => removeImages(tags) };
}

/**
 * Removes the variant's images but not their untagged parents: the builder's cache shares those steps
 * (FROM the image under test, then USER root, say) with variants other test files are building at this
 * moment, and a parent pruned between another build's cache hit and its next step fails that build
 * ("failed to set parent ... unknown parent image ID").
 */
async function removeImages(tags: readonly string[]): Promise<void> {
  for (const tag of [...tags].reverse())
    await docker
      .getImage(tag)
      .remove({ force: true, noprune: true })
      .catch(() => undefined);
}
