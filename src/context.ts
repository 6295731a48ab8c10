import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { pack } from 'tar-fs';
import { projectPath } from './paths.js';
import { renderTemplate, SASLDB_ENTRY, unusedValues, type TemplateValues } from './render.js';

export const DOCKERFILE_NAME = 'Dockerfile';

/** A rendered build context on disk (without secrets) plus the sasldb, streamed from memory. */
export interface BuildContext {
  readonly dir: string;
  /** The context as a tar stream; the sasldb is added here and never touches the disk. */
  pack(): Readable;
  dispose(): Promise<void>;
}

async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Renders Dockerfile.template and image-files/ into a fresh folder with the profile's values. */
export async function renderContext(values: TemplateValues, sasldb: Buffer | undefined): Promise<BuildContext> {
  const dir = await mkdtemp(join(tmpdir(), 'memcached-hardened-context-'));
  try {
    const template = await readFile(projectPath('Dockerfile.template'), 'utf8');
    await writeFile(join(dir, DOCKERFILE_NAME), renderTemplate(template, values, 'Dockerfile.template'));
    const templates = [template];
    const source = projectPath('image-files');
    for (const file of await filesBelow(source)) {
      const name = relative(source, file);
      const target = join(dir, 'image-files', name);
      const text = await readFile(file, 'utf8');
      templates.push(text);
      await mkdir(join(target, '..'), { recursive: true });
      await writeFile(target, renderTemplate(text, values, `image-files/${name}`));
      await chmod(target, (await stat(file)).mode & 0o755);
    }
    // Sources compiled in build stages (never copied into the server image as they are).
    await cp(projectPath('build-files'), join(dir, 'build-files'), { recursive: true });
    const unused = unusedValues(values, templates);
    if (unused.length > 0) throw new Error(`template values never used: ${unused.join(', ')}`);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    pack() {
      return pack(dir, {
        finalize: sasldb === undefined,
        finish: (archive) => {
          if (sasldb === undefined) return;
          archive.entry({ name: SASLDB_ENTRY, mode: 0o600, mtime: new Date(0) }, sasldb);
          archive.finalize();
        },
      }) as unknown as Readable;
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
