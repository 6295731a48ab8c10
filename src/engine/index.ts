import { failure } from '../errors.js';
import { containerClient } from './containers.js';
import { imageClient } from './images.js';
import { engineAddress, httpTransport, modemTransport, type EngineAddress, type EngineTransport } from './transport.js';
import type { Engine } from './types.js';

export type * from './types.js';

/** The engine DOCKER_HOST names, for messages: the socket actually used when it names none. */
function describeEngine(env: NodeJS.ProcessEnv, address: EngineAddress | undefined): string {
  if (env.DOCKER_HOST) return env.DOCKER_HOST;
  return address?.kind === 'unix' ? `unix://${address.socketPath}` : 'the platform default';
}

/** Connection errors that mean no engine answers at the address. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

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
  const address = engineAddress(env);
  const endpoint = describeEngine(env, address);
  const dockerode = once(async () => {
    const { default: Docker } = await import('dockerode');
    try {
      return new Docker();
    } catch (error) {
      throw failure(`cannot use DOCKER_HOST=${endpoint}: ${(error as Error).message}`);
    }
  });
  const transport: () => Promise<EngineTransport> = once(async () =>
    address ? httpTransport(address, { endpoint }) : modemTransport(dockerode, { endpoint }),
  );
  // An engine that is not there is said so by whichever call meets it first: no separate ping to wait for.
  const reachable: EngineTransport = {
    async request(...args) {
      try {
        return await (await transport()).request(...args);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== undefined && UNREACHABLE.has(code))
          throw failure(`no Docker engine reachable at ${endpoint}: ${(error as Error).message}`);
        throw error;
      }
    },
  };
  return {
    endpoint,
    async ping() {
      const answer = await reachable.request('GET', '/_ping');
      if (answer.status !== 200)
        throw failure(`the Docker engine at ${endpoint} answered its ping with ${answer.status}`);
    },
    ...imageClient(reachable, dockerode),
    ...containerClient(dockerode),
  };
}
