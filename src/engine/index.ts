import { failure } from '../errors.js';
import { containerClient } from './containers.js';
import { imageClient } from './images.js';
import { engineAddress, httpTransport, modemTransport, type EngineTransport } from './transport.js';
import type { Engine } from './types.js';

export type * from './types.js';

/** Describes the engine DOCKER_HOST names, for messages. */
export function engineEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST && env.DOCKER_HOST !== '' ? env.DOCKER_HOST : 'unix:///var/run/docker.sock';
}

/** A value made on first use and shared afterwards (a failed attempt is not kept). */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make().catch((error: unknown) => {
      made = undefined;
      throw error;
    });
    return made;
  };
}

/**
 * The engine DOCKER_HOST names. Request/answer calls go over a plain HTTP transport; dockerode, shared by
 * the streamed image calls and the containers, is loaded only when one of those is made.
 */
export function connectEngine(env: NodeJS.ProcessEnv = process.env): Engine {
  const endpoint = engineEndpoint(env);
  const dockerode = once(async () => {
    const { default: Docker } = await import('dockerode');
    try {
      return new Docker();
    } catch (error) {
      throw failure(`cannot use DOCKER_HOST=${endpoint}: ${(error as Error).message}`);
    }
  });
  const address = engineAddress(env);
  const transport: () => Promise<EngineTransport> = once(async () => (address ? httpTransport(address) : modemTransport(dockerode)));
  const lazyTransport: EngineTransport = { request: async (...args) => (await transport()).request(...args) };
  return {
    endpoint,
    // Remembered once answered: the CLI reaches the engine early, and the build asks again when it needs it.
    ping: once(async () => {
      try {
        const answer = await lazyTransport.request('GET', '/_ping');
        if (answer.status !== 200) throw new Error(`/_ping answered ${answer.status}`);
      } catch (error) {
        throw failure(`no Docker engine reachable at ${endpoint}: ${(error as Error).message}`);
      }
    }),
    ...imageClient(lazyTransport, dockerode),
    ...containerClient(dockerode),
  };
}
