import Docker from 'dockerode';
import { failure } from '../errors.js';
import { containerClient } from './containers.js';
import { imageClient } from './images.js';
import type { Engine } from './types.js';

export type * from './types.js';

/** Describes the engine dockerode will talk to, honouring DOCKER_HOST as docker-modem does. */
export function engineEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST && env.DOCKER_HOST !== '' ? env.DOCKER_HOST : 'unix:///var/run/docker.sock';
}

/** The engine DOCKER_HOST names: one dockerode connection shared by the image and container clients. */
export function connectEngine(env: NodeJS.ProcessEnv = process.env): Engine {
  const endpoint = engineEndpoint(env);
  let docker: Docker;
  try {
    docker = new Docker();
  } catch (error) {
    throw failure(`cannot use DOCKER_HOST=${endpoint}: ${(error as Error).message}`);
  }
  return {
    endpoint,
    async ping() {
      try {
        await docker.ping();
      } catch (error) {
        throw failure(`no Docker engine reachable at ${endpoint}: ${(error as Error).message}`);
      }
    },
    ...imageClient(docker),
    ...containerClient(docker),
  };
}
