import type Docker from 'dockerode';
import { failure } from '../errors.js';
import { imageName, parseImageReference, tagOf } from '../image-reference.js';
import { withContainer } from './containers.js';
import { collect, firstFileOfTar, followStream } from './stream.js';
import type { EngineMessage, ImageClient } from './types.js';

const isNotFound = (error: unknown) => (error as { statusCode?: number }).statusCode === 404;

/** The name and tag the engine's tag and import calls take apart. */
function repoAndTag(reference: string): { repo: string; tag: string } {
  const parsed = parseImageReference(reference);
  return { repo: imageName(parsed), tag: tagOf(parsed) };
}

/** Images on one dockerode connection. */
export function imageClient(docker: Docker): ImageClient {
  const follow = (stream: NodeJS.ReadableStream, onMessage: (m: EngineMessage) => void = () => undefined) => followStream(docker.modem, stream, onMessage);
  return {
    async inspectImage(reference) {
      try {
        const info = await docker.getImage(reference).inspect();
        return { id: info.Id, size: info.Size, tags: info.RepoTags ?? [], labels: info.Config?.Labels ?? {} };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async pull(reference, onMessage) {
      await follow(await docker.pull(reference), onMessage);
    },
    async importImage(tarball, reference, changes) {
      await follow(await docker.importImage(tarball, { ...repoAndTag(reference), changes: [...changes] } as object));
    },
    async loadImage(archive) {
      await follow(await docker.loadImage(archive, { quiet: true }));
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
      await follow(stream, onMessage);
    },
    async tag(imageId, reference) {
      await docker.getImage(imageId).tag(repoAndTag(reference));
    },
    async removeImage(reference) {
      await docker.getImage(reference).remove({ force: true });
    },
    async push(reference, auth, onMessage) {
      const stream = await docker.getImage(reference).push({ tag: repoAndTag(reference).tag, ...(auth ? { authconfig: auth } : {}) });
      let digest: string | undefined;
      await follow(stream, (message) => {
        digest = message.aux?.Digest ?? digest;
        onMessage(message);
      });
      if (!digest) throw failure(`the registry reported no digest for ${reference}`);
      return digest;
    },
    readFile: (image, path) =>
      withContainer(docker, { Image: image, NetworkDisabled: true, Labels: { 'memcached-hardened.purpose': 'read-file' } }, async (container) => {
        try {
          return firstFileOfTar(await collect(await container.getArchive({ path })));
        } catch (error) {
          if (isNotFound(error)) return undefined;
          throw error;
        }
      }),
  };
}
