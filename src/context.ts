import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { projectPath } from './paths.js';
import { IMAGE_VALUES_PATH, renderTemplate, SASLDB_ENTRY, unusedValues, type TemplateValues } from './render.js';
import { compareCodeUnits } from './text-order.js';

export const DOCKERFILE_NAME = 'Dockerfile';

/** One file of the build context, as the engine will receive it. */
export interface ContextFile {
  /** Path inside the context, with '/' separators. */
  readonly name: string;
  readonly mode: number;
  readonly content: Buffer;
}

/** A rendered build context on disk (without secrets) plus the sasldb, streamed from memory. */
export interface BuildContext {
  readonly dir: string;
  /** The context as a tar stream; the sasldb is added here and never touches the disk. */
  pack(): Readable;
  dispose(): Promise<void>;
}

function filesBelow(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** The files under a project folder, each through `transform` (templates) or as they are. */
function projectFiles(folder: string, transform?: (text: string, name: string) => string): ContextFile[] {
  const source = projectPath(folder);
  return filesBelow(source).map((file) => {
    const name = `${folder}/${relative(source, file).split('\\').join('/')}`;
    const bytes = readFileSync(file);
    const content = transform ? Buffer.from(transform(bytes.toString('utf8'), name)) : bytes;
    // Executable or not is all the checkout decides: the rest of the mode is fixed, whatever the umask of the clone.
    return { name, mode: statSync(file).mode & 0o111 ? 0o755 : 0o644, content };
  });
}

/**
 * Renders Dockerfile.template and image-files/ with the profile's values, adds the image's values.sh
 * (IMAGE_VALUES: the one generated shell file, beside the static scripts that source it), plus build-files/
 * (sources compiled in build stages) as they are. Pure apart from reading the project's few small files, which
 * it does synchronously: a dozen promise round trips cost more than the reads.
 */
export function renderFiles(values: TemplateValues): ContextFile[] {
  const templates: string[] = [];
  const render = (text: string, name: string) => {
    templates.push(text);
    return renderTemplate(text, values, name);
  };
  const template = readFileSync(projectPath('Dockerfile.template'), 'utf8');
  const files = [
    { name: DOCKERFILE_NAME, mode: 0o644, content: Buffer.from(render(template, 'Dockerfile.template')) },
    ...projectFiles('image-files', render),
    {
      name: `image-files${IMAGE_VALUES_PATH}`,
      mode: 0o644,
      content: Buffer.from(render('{{IMAGE_VALUES}}', IMAGE_VALUES_PATH)),
    },
    ...projectFiles('build-files'),
  ];
  const unused = unusedValues(values, templates);
  if (unused.length > 0) throw new Error(`template values never used: ${unused.join(', ')}`);
  return files;
}

/** A digest of the files (names, modes, contents), independent of the order they come in. */
export function contextDigest(files: readonly ContextFile[]): string {
  const hash = createHash('sha256');
  for (const file of [...files].sort((a, b) => compareCodeUnits(a.name, b.name))) {
    hash.update(`${file.name}\0${file.mode.toString(8)}\0${file.content.length}\0`).update(file.content);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Writes the files into a fresh folder; the sasldb joins them only in the tar stream. */
export async function writeContext(files: readonly ContextFile[], sasldb: Buffer | undefined): Promise<BuildContext> {
  // Loaded here: a rebuild that finds its image already made never packs a context.
  const { pack } = await import('tar-fs');
  const dir = await mkdtemp(join(tmpdir(), 'memcached-hardened-context-'));
  try {
    for (const file of files) {
      const target = join(dir, file.name);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, file.content);
      // Whatever the umask, so the folder shows the modes the tar carries (pack() sets those itself).
      await chmod(target, file.mode);
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const modes = new Map(files.map((file) => [file.name, file.mode]));
  return {
    dir,
    pack() {
      return pack(dir, {
        // The files' own modes (tar-fs would mask them with the umask), directories 0755 and one fixed
        // mtime: what reaches the image does not depend on when, where or by whom it was packed.
        map: (header) => ({
          ...header,
          mtime: new Date(0),
          mode: header.type === 'directory' ? 0o755 : (modes.get(header.name) ?? header.mode),
        }),
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

/** The rendered context on disk, ready to pack. */
export async function renderContext(values: TemplateValues, sasldb: Buffer | undefined): Promise<BuildContext> {
  return writeContext(renderFiles(values), sasldb);
}
