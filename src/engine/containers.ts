import type Docker from 'dockerode';
import { Writable, type Readable } from 'node:stream';
import type { ContainerClient } from './types.js';

/** How long the last output may take to arrive once the container has exited. */
const DRAIN_MS = 2000;

/** Creates a container, hands it to `use`, and removes it whatever happens. */
export async function withContainer<T>(
  docker: Docker,
  options: Docker.ContainerCreateOptions,
  use: (container: Docker.Container) => Promise<T>,
): Promise<T> {
  const container = await docker.createContainer(options);
  try {
    return await use(container);
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/**
 * Starts the container with its output split into `stdout` and `stderr` (and `stdin`, when given,
 * written then closed), waits for it to exit and for its last output; resolves to the exit code.
 */
async function attachedRun(
  docker: Docker,
  container: Docker.Container,
  stdout: Writable,
  stderr: Writable,
  stdin?: string,
): Promise<number> {
  const stream = await container.attach({
    stream: true,
    stdout: true,
    stderr: true,
    ...(stdin === undefined ? {} : { stdin: true, hijack: true }),
  });
  const ended = new Promise<void>((resolve) => stream.on('end', resolve));
  docker.modem.demuxStream(stream, stdout, stderr);
  await container.start();
  if (stdin !== undefined) stream.end(stdin);
  const { StatusCode } = (await container.wait()) as { StatusCode: number };
  // An attach the engine never ends must neither lose the last lines nor keep this process alive.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ended, new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_MS)))]);
  clearTimeout(timer);
  (stream as unknown as Readable).destroy();
  return StatusCode;
}

const collectInto = (chunks: Buffer[]) =>
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });

const eachLine = (onLine: (line: string) => void) =>
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') onLine(line);
      done();
    },
  });

/** Throwaway containers on dockerode (attach and export are streams), loaded on the first call. */
export function containerClient(dockerode: () => Promise<Docker>): ContainerClient {
  return {
    run: async (request) => {
      const docker = await dockerode();
      return withContainer(
        docker,
        {
          Image: request.image,
          Cmd: [...request.command],
          ...(request.entrypoint ? { Entrypoint: [...request.entrypoint] } : {}),
          ...(request.user ? { User: request.user } : {}),
          Labels: { ...request.labels },
          OpenStdin: true,
          StdinOnce: true,
          AttachStdin: true,
          AttachStdout: true,
          AttachStderr: true,
          NetworkDisabled: request.network === undefined,
          HostConfig: {
            NetworkMode: request.network ?? 'none',
            CapDrop: ['ALL'],
            SecurityOpt: ['no-new-privileges'],
            ...(request.cpus ? { CpusetCpus: request.cpus } : {}),
          },
        },
        async (container) => {
          const stdout: Buffer[] = [];
          const stderr: Buffer[] = [];
          const exitCode = await attachedRun(
            docker,
            container,
            collectInto(stdout),
            collectInto(stderr),
            request.stdin,
          );
          return { exitCode, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') };
        },
      );
    },
    runThenExport: async (request, consume) => {
      const docker = await dockerode();
      return withContainer(
        docker,
        { Image: request.image, Cmd: [...request.command], Labels: { ...request.labels } },
        async (container) => {
          const lines = eachLine(request.onLine);
          const exitCode = await attachedRun(docker, container, lines, lines);
          if (exitCode === 0) await consume((await container.export()) as unknown as Readable);
          return exitCode;
        },
      );
    },
  };
}
