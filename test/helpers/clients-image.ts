import { readFileSync } from 'node:fs';
import { ensureBaseImage, type Progress } from '../../src/base.js';
import { connectEngine } from '../../src/engine/index.js';
import { projectPath } from '../../src/paths.js';
import { loadProfile } from '../../src/profiles.js';
import { buildTestImage } from './test-image.js';

// No vitest import: the global setup builds this image.

const CLIENTS_IMAGE_TAG = 'memcached-hardened-test/clients:latest';
/** Current client libraries: the newest profile's distribution ships them all. */
const CLIENTS_PROFILE = 'debian-12';

/** A package in the project's node_modules and, transitively, what it depends on (as context entries). */
export function nodeModuleEntries(name: string, seen = new Set<string>()): string[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const manifest = JSON.parse(readFileSync(projectPath('node_modules', name, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  return [
    `node_modules/${name}`,
    ...Object.keys(manifest.dependencies ?? {}).flatMap((dependency) => nodeModuleEntries(dependency, seen)),
  ];
}

/** Builds the clients image from test/clients/ (cached by the engine after the first run); its id. */
export async function buildClientsImage(progress: Progress): Promise<string> {
  const profile = loadProfile(CLIENTS_PROFILE);
  await ensureBaseImage(connectEngine(), profile, progress);
  return buildTestImage(readFileSync(projectPath('test/clients/Dockerfile'), 'utf8'), CLIENTS_IMAGE_TAG, {
    contextDir: projectPath(),
    entries: ['test/clients', ...nodeModuleEntries('memjs')],
    buildArgs: { BASE_IMAGE: profile.base.image },
  });
}
