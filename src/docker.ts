import Docker from 'dockerode';
import { Writable, type Readable } from 'node:stream';
import { failure } from './errors.js';
import { LineTail } from './tail.js';

/** One message of the engine's build/pull/import JSON stream. */
export interface EngineMessage {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string; Digest?: string; Tag?: string };
}

export interface BuildRequest {
  readonly dockerfile: string;
  readonly target: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly noCache: boolean;
}

export interface ImageFacts {
  readonly id: string;
  readonly size: number;
  readonly tags: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

export interface RunRequest {
  readonly image: string;
  readonly command: readonly string[];
  /** Written to the container's stdin, then closed: the way secrets reach a container, never argv or env. */
  readonly stdin: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Overrides the image's entrypoint ([] clears it). */
  readonly entrypoint?: readonly string[];
  readonly user?: string;
  /** A network to join instead of none (the bench's load generator); the product's containers have none. */
  readonly network?: string;
}

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** The few engine operations the product uses: everything Docker sits behind this. */
export interface Engine {
  /** Where the engine is, for messages. */
  readonly endpoint: string;
  ping(): Promise<void>;
  inspectImage(reference: string): Promise<ImageFacts | undefined>;
  pull(reference: string, onMessage: (m: EngineMessage) => void): Promise<void>;
  importImage(tarball: Readable, reference: string, changes: readonly string[]): Promise<void>;
  build(context: Readable, request: BuildRequest, onMessage: (m: EngineMessage) => void): Promise<void>;
  tag(imageId: string, reference: string): Promise<void>;
  removeImage(reference: string): Promise<void>;
  /** Pushes a tag; resolves to the manifest digest the registry reported. */
  push(reference: string, auth: { username: string; password: string; serveraddress: string } | undefined, onMessage: (m: EngineMessage) => void): Promise<string>;
  /** Runs a throwaway container (without network unless asked) to completion and removes it, whatever happens. */
  run(request: RunRequest): Promise<RunResult>;
  /** One regular file of an image, read without starting a container; undefined if it is not there. */
  readFile(image: string, path: string): Promise<Buffer | undefined>;
  /** Loads a `docker load` archive (manifest.json, config, layers): the image id is the config's digest. */
  loadImage(archive: Readable): Promise<void>;
  /**
   * Runs `command` in a container of `image` (with network), then hands the container's file system, as
   * a tar stream, to `consume`; the container is removed whatever happens.
   */
  runThenExport(image: string, command: readonly string[], onLine: (line: string) => void, consume: (filesystem: Readable) => Promise<void>): Promise<void>;
}

/** Describes the engine dockerode will talk to, honouring DOCKER_HOST as docker-modem does. */
export function engineEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST && env.DOCKER_HOST !== '' ? env.DOCKER_HOST : 'unix:///var/run/docker.sock';
}

/** Splits `name:tag` (the tag after the last ':' that follows the last '/'). */
export function splitReference(reference: string): { repo: string; tag: string } {
  const slash = reference.lastIndexOf('/');
  const colon = reference.lastIndexOf(':');
  return colon > slash ? { repo: reference.slice(0, colon), tag: reference.slice(colon + 1) } : { repo: reference, tag: 'latest' };
}

/** The first regular file of a ustar/pax archive held in memory (what the engine's archive API returns). */
export function firstFileOfTar(archive: Buffer): Buffer | undefined {
  for (let offset = 0; offset + 512 <= archive.length; ) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) return undefined;
    const sizeField = header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim();
    if (!/^[0-7]+$/.test(sizeField)) throw new Error(`unsupported tar size field '${sizeField}'`);
    const size = Number.parseInt(sizeField, 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const data = offset + 512;
    if (data + size > archive.length) throw new Error('truncated tar archive');
    if (type === '0' || type === '\0') return Buffer.from(archive.subarray(data, data + size));
    // Extended headers, directories, links: skip to the next header.
    offset = data + Math.ceil(size / 512) * 512;
  }
  return undefined;
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Consumes an engine JSON stream; rejects with the engine's own error, even inside a 200 response. */
function followStream(docker: Docker, stream: NodeJS.ReadableStream, onMessage: (m: EngineMessage) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let streamError: string | undefined;
    docker.modem.followProgress(
      stream,
      (error: Error | null) => {
        if (error) reject(error);
        else if (streamError !== undefined) reject(new Error(streamError));
        else resolve();
      },
      (message: EngineMessage) => {
        if (message.error !== undefined || message.errorDetail?.message !== undefined) {
          streamError = message.errorDetail?.message ?? message.error;
        }
        onMessage(message);
      },
    );
  });
}

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
    async inspectImage(reference) {
      try {
        const info = await docker.getImage(reference).inspect();
        return { id: info.Id, size: info.Size, tags: info.RepoTags ?? [], labels: info.Config?.Labels ?? {} };
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return undefined;
        throw error;
      }
    },
    async pull(reference, onMessage) {
      const stream = await docker.pull(reference);
      await followStream(docker, stream, onMessage);
    },
    async importImage(tarball, reference, changes) {
      const { repo, tag } = splitReference(reference);
      const stream = await docker.importImage(tarball, { repo, tag, changes: [...changes] } as object);
      await followStream(docker, stream, () => undefined);
    },
    async build(context, request, onMessage) {
      const stream = await docker.buildImage(context, {
        dockerfile: request.dockerfile,
        target: request.target,
        labels: { ...request.labels },
        buildargs: { ...request.buildArgs },
        nocache: request.noCache,
        rm: true,
        forcerm: true,
        pull: false,
      });
      await followStream(docker, stream, onMessage);
    },
    async tag(imageId, reference) {
      const { repo, tag } = splitReference(reference);
      await docker.getImage(imageId).tag({ repo, tag });
    },
    async removeImage(reference) {
      await docker.getImage(reference).remove({ force: true });
    },
    async push(reference, auth, onMessage) {
      const { tag } = splitReference(reference);
      const stream = await docker.getImage(reference).push({ tag, ...(auth ? { authconfig: auth } : {}) });
      let digest: string | undefined;
      await followStream(docker, stream, (message) => {
        digest = message.aux?.Digest ?? digest;
        onMessage(message);
      });
      if (!digest) throw failure(`the registry reported no digest for ${reference}`);
      return digest;
    },
    async loadImage(archive) {
      const stream = await docker.loadImage(archive, { quiet: true });
      await followStream(docker, stream, () => undefined);
    },
    async runThenExport(image, command, onLine, consume) {
      const container = await docker.createContainer({ Image: image, Cmd: [...command], Labels: { 'memcached-hardened.purpose': 'base-upgrade' } });
      try {
        const logs = await container.attach({ stream: true, stdout: true, stderr: true });
        const tail = new LineTail(5);
        const lines = new Writable({
          write(chunk: Buffer, _enc, done) {
            for (const line of chunk.toString('utf8').split('\n').filter((l) => l.trim() !== '')) {
              tail.push(line);
              onLine(line);
            }
            done();
          },
        });
        docker.modem.demuxStream(logs, lines, lines);
        const ended = new Promise<void>((resolve) => logs.on('end', resolve));
        await container.start();
        const { StatusCode } = (await container.wait()) as { StatusCode: number };
        // The last lines may still be on their way; an attach the engine never ends must not keep this
        // process alive once the work is done.
        await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
        (logs as unknown as Readable).destroy();
        if (StatusCode !== 0) throw failure(`upgrading the base failed (exit ${StatusCode}): ${tail.lines().join(' | ')}`);
        await consume((await container.export()) as unknown as Readable);
      } finally {
        await container.remove({ force: true }).catch(() => undefined);
      }
    },
    async readFile(image, path) {
      const container = await docker.createContainer({ Image: image, NetworkDisabled: true, Labels: { 'memcached-hardened.purpose': 'read-file' } });
      try {
        return firstFileOfTar(await collect(await container.getArchive({ path })));
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return undefined;
        throw error;
      } finally {
        await container.remove({ force: true }).catch(() => undefined);
      }
    },
    async run(request) {
      const container = await docker.createContainer({
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
        HostConfig: { NetworkMode: request.network ?? 'none', CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] },
      });
      try {
        const stream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        const sink = (chunks: Buffer[]) => new Writable({ write(chunk: Buffer, _enc, done) { chunks.push(chunk); done(); } });
        const ended = new Promise<void>((resolve) => stream.on('end', resolve));
        docker.modem.demuxStream(stream, sink(stdout), sink(stderr));
        await container.start();
        stream.end(request.stdin);
        const { StatusCode } = (await container.wait()) as { StatusCode: number };
        await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2000))]);
        return { exitCode: StatusCode, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') };
      } finally {
        await container.remove({ force: true }).catch(() => undefined);
      }
    },
  };
}
