import type { Engine } from './engine/index.js';
import { failure } from './errors.js';
import type { Profile } from './profiles.js';
import { bootstrapBase } from './bootstrap.js';
import type { Progress } from './child-process.js';

// Which base image a build starts from: the engine's own, else a pulled one, else a bootstrapped one.

export type { Progress } from './child-process.js';

/** How the base image came to be in the engine. */
export type BaseSource = 'present' | 'pulled' | 'bootstrapped';

/** The base image ready in the engine, and how it got there. */
export interface BaseImage {
  readonly source: BaseSource;
  readonly id: string;
}

const PULL_TIMEOUT_MS = 60_000;

async function tryPull(engine: Engine, reference: string, progress: Progress): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${PULL_TIMEOUT_MS / 1000}s`)), PULL_TIMEOUT_MS);
    });
    await Promise.race([engine.pull(reference, () => undefined), timeout]);
    return (await engine.inspectImage(reference)) !== undefined;
  } catch (error) {
    progress(`[base] cannot pull ${reference}: ${(error as Error).message.split('\n')[0]}`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Makes the profile's base image available: used if the engine has it, else pulled, else bootstrapped
 * with debootstrap (signature-checked, tool's default mirror) and imported under the same reference.
 */
export async function ensureBaseImage(engine: Engine, profile: Profile, progress: Progress): Promise<BaseImage> {
  const reference = profile.base.image;
  const present = await engine.inspectImage(reference);
  if (present) {
    progress(`[base] ${reference} is present`);
    return { source: 'present', id: present.id };
  }
  progress(`[base] ${reference} is not in the engine; trying to pull it`);
  let source: BaseSource = 'pulled';
  if (process.env.MEMCACHED_HARDENED_NO_PULL === '1' || !(await tryPull(engine, reference, progress))) {
    await bootstrapBase(engine, profile, progress);
    source = 'bootstrapped';
  }
  const ready = await engine.inspectImage(reference);
  if (!ready)
    throw failure(`${source === 'pulled' ? 'pull' : 'bootstrap'} finished but ${reference} is not in the engine`);
  progress(`[base] ${reference} ${source === 'pulled' ? 'pulled' : 'bootstrapped and imported'}`);
  return { source, id: ready.id };
}
