import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-fs';
import { docker } from './resources.js';

/** The Dockerfile's name inside a test image's context (not "Dockerfile": a context may carry its own). */
const TEST_DOCKERFILE = 'Dockerfile.mh-test';

/**
 * Builds a test-only image from Dockerfile text: variants of the real image, client images. The context
 * is `entries` of `contextDir` (paths in the project, say) or an empty one; `files` are added by name;
 * `buildArgs` fill the Dockerfile's ARGs (a base image chosen by the caller, say).
 */
export async function buildTestImage(
  dockerfile: string,
  tag: string,
  options: {
    files?: Record<string, string>;
    contextDir?: string;
    entries?: string[];
    buildArgs?: Record<string, string>;
  } = {},
): Promise<string> {
  const scratch = mkdtempSync(join(tmpdir(), 'mh-test-image-'));
  try {
    const context = pack(options.contextDir ?? scratch, {
      entries: options.contextDir ? options.entries : undefined,
      finalize: false,
      finish: (archive) => {
        archive.entry({ name: TEST_DOCKERFILE }, dockerfile);
        for (const [name, content] of Object.entries(options.files ?? {})) archive.entry({ name }, content);
        archive.finalize();
      },
    });
    const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
      t: tag,
      rm: true,
      forcerm: true,
      dockerfile: TEST_DOCKERFILE,
      ...(options.buildArgs ? { buildargs: options.buildArgs } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) => {
        const failure = error?.message ?? output.find((m) => m.error)?.error;
        if (failure) reject(new Error(`test image ${tag} did not build: ${failure}`));
        else resolve();
      });
    });
    return (await docker.getImage(tag).inspect()).Id;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
