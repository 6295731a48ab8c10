import { inject } from 'vitest';
import type { SaslUser } from '../../src/credentials.js';

/** One image under test: the server image, its client image and the users baked into it. */
export interface TestTarget {
  /** How tests name it: the profile, plus the credentials mode where that is not baked. */
  readonly name: string;
  readonly profile: string;
  readonly credentials: 'baked' | 'runtime';
  /** Runtime credentials: the host file mounted as the container's users secret. */
  readonly usersSecret?: string;
  readonly image: string;
  /** The same image built with --tls (integration runs only; see tlsPair for an image under test). */
  readonly tlsImage?: string;
  readonly clientImage: string;
  /** The profile's base image, for controls that show what the hardening removed. */
  readonly baseImage: string;
  readonly users: readonly SaslUser[];
}

declare module 'vitest' {
  export interface ProvidedContext {
    targets: TestTarget[];
    runId: string;
    ownerPid: string;
    figuresFile: string;
    /** The clients image (test/clients/), built once per integration run. */
    clientsImage: string;
  }
}

/** The targets as `describe.each` rows, so each top-level describe is named after its profile. */
export function targetRows(): Array<[string, TestTarget]> {
  return inject('targets').map((target) => [target.name, target]);
}

/** The first user baked into the target. */
export function firstUser(target: TestTarget): SaslUser {
  const user = target.users[0];
  if (!user) throw new Error(`target ${target.profile} has no users`);
  return user;
}
