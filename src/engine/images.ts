import type Docker from 'dockerode';
import { failure } from '../errors.js';
import { imageName, parseImageReference, tagOf } from '../image-reference.js';
import { firstFileOfTar, followStream } from './stream.js';
import type { EngineResponse, EngineTransport } from './transport.js';
import type { EngineMessage, ImageClient } from './types.js';

/** The answer when its status is one of `expected`; any other status becomes an error carrying the engine's message. */
export function expectStatus(response: EngineResponse, expected: readonly number[], what: string): EngineResponse {
  if (expected.includes(response.status)) return response;
  let message = response.body.toString('utf8').trim();
  try {
    message = (JSON.parse(message) as { message?: string }).message ?? message;
  } catch {
    // Not JSON: the text as it came.
  }
  throw new Error(`${what}: the engine answered ${response.status}${message ? ` (${message})` : ''}`);
}

/** The name and tag the engine's tag and import calls take apart. */
function repoAndTag(reference: string): { repo: string; tag: string } {
  const parsed = parseImageReference(reference);
  return { repo: imageName(parsed), tag: tagOf(parsed) };
}

/**
 * Images: the request/answer calls on the plain transport, the streamed ones (build, pull, push, import,
 * load) on dockerode, which is loaded on the first of those.
 */
export function imageClient(transport: EngineTransport, dockerode: () => Promise<Docker>): ImageClient {
  const follow = async (stream: NodeJS.ReadableStream, onMessage: (m: EngineMessage) => void = () => undefined) =>
    followStream((await dockerode()).modem, stream, onMessage);
  return {
    async inspectImage(reference) {
      const answer = expectStatus(
        await transport.request('GET', `/images/${reference}/json`),
        [200, 404],
        `inspecting ${reference}`,
      );
      if (answer.status === 404) return undefined;
      const info = JSON.parse(answer.body.toString('utf8')) as {
        Id: string;
        Size: number;
        RepoTags?: string[] | null;
        Config?: { Labels?: Record<string, string> | null };
      };
      return { id: info.Id, size: info.Size, tags: info.RepoTags ?? [], labels: info.Config?.Labels ?? {} };
    },
    async pull(reference, onMessage) {
      const docker = await dockerode();
      await follow(await docker.pull(reference), onMessage);
    },
    async importImage(tarball, reference, changes) {
      const docker = await dockerode();
      await follow(await docker.importImage(tarball, { ...repoAndTag(reference), changes: [...changes] } as object));
    },
    async loadImage(archive) {
      const docker = await dockerode();
      await follow(await docker.loadImage(archive, { quiet: true }));
    },
    async build(context, request, onMessage) {
      const docker = await dockerode();
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
      await follow(stream, onMessage);
    },
    async tag(imageId, reference) {
      expectStatus(
        await transport.request('POST', `/images/${imageId}/tag`, { query: repoAndTag(reference) }),
        [200, 201],
        `tagging ${reference}`,
      );
    },
    async removeImage(reference) {
      expectStatus(
        await transport.request('DELETE', `/images/${reference}`, { query: { force: '1' } }),
        [200],
        `removing ${reference}`,
      );
    },
    async push(reference, auth, onMessage) {
      const docker = await dockerode();
      const stream = await docker
        .getImage(reference)
        .push({ tag: repoAndTag(reference).tag, ...(auth ? { authconfig: auth } : {}) });
      let digest: string | undefined;
      await follow(stream, (message) => {
        digest = message.aux?.Digest ?? digest;
        onMessage(message);
      });
      if (!digest) throw failure(`the registry reported no digest for ${reference}`);
      return digest;
    },
    async readFile(image, path) {
      // A container that is created, never started: its file system is readable through the archive call.
      const create = { Image: image, NetworkDisabled: true, Labels: { 'memcached-hardened.purpose': 'read-file' } };
      const created = expectStatus(
        await transport.request('POST', '/containers/create', { json: create }),
        [201],
        `reading ${path} of ${image}`,
      );
      const { Id: id } = JSON.parse(created.body.toString('utf8')) as { Id: string };
      try {
        const archive = expectStatus(
          await transport.request('GET', `/containers/${id}/archive`, { query: { path } }),
          [200, 404],
          `reading ${path} of ${image}`,
        );
        return archive.status === 404 ? undefined : firstFileOfTar(archive.body);
      } finally {
        await transport
          .request('DELETE', `/containers/${id}`, { query: { force: '1', v: '1' } })
          .catch(() => undefined);
      }
    },
  };
}
