import { describe, expect, it } from 'vitest';
import { BAKED_SASLDB_PATH } from '../../src/render.js';
import { TLS_SECRET_DIR, TLS_SECRET_FILES } from '../../src/tls.js';
import { createIsolatedNetwork } from '../helpers/docker.js';
import {
  describeLocation,
  inventoryImage,
  mergedFilesystem,
  type Layer,
  type LayerEntry,
  type Location,
} from '../helpers/image-inventory.js';
import { execIn } from '../helpers/server.js';
import { issueTlsSecret, startSurface, surfaceRows, surfaceTarget } from '../helpers/surface.js';
import type { TestTarget } from '../helpers/targets.js';
import { buildVariant } from '../helpers/variants.js';
import { LEAKED_USERS_FILE, USERS_FILE_IN_LAYER } from '../helpers/weakenings.js';

// Every layer of the saved image, files later layers deleted included, and its config, searched byte for
// byte for every secret: a password is in the baked sasldb only (Berkeley DB keeps it in clear by design),
// a TLS key that was mounted into a container of the image is nowhere.

const passwordNeedles = (target: TestTarget) =>
  Object.fromEntries(target.users.map((u) => [`password of ${u.name}`, u.password]));

/** The base64 lines of a PEM key between its BEGIN and END lines. */
function pemBodyLines(pem: string): string[] {
  return pem
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('-----'));
}

/**
 * Every place a secret is found but must not be: anywhere but the baked sasldb for a password of a baked
 * image, anywhere at all for the rest (a runtime-credentials image's passwords, a TLS key).
 */
function misplaced(found: ReadonlyMap<string, readonly Location[]>, target: TestTarget): string[] {
  const intended = (name: string, location: Location) =>
    target.credentials === 'baked' &&
    name.startsWith('password of ') &&
    location !== 'config' &&
    location.path === BAKED_SASLDB_PATH;
  return [...found].flatMap(([name, at]) =>
    at.filter((location) => !intended(name, location)).map((location) => `${name} in ${describeLocation(location)}`),
  );
}

/** The indexes of the layers with an entry that passes `test`. */
function layersHolding(layers: readonly Layer[], test: (entry: LayerEntry) => boolean): number[] {
  return layers.filter((layer) => layer.entries.some(test)).map((layer) => layer.index);
}

/**
 * Issues a key, starts the TLS image with it mounted (so the key really went into a container of this image)
 * and returns the key's body lines once the server read it.
 */
async function keyMountedIntoTheImage(target: TestTarget): Promise<string[]> {
  const network = await createIsolatedNetwork('layers');
  const secret = issueTlsSecret();
  try {
    const server = await startSurface(target, 'tls', network.name, { secret });
    try {
      const lines = pemBodyLines(secret.keyPem);
      const mounted = await execIn(server.container, ['cat', `${TLS_SECRET_DIR}/${TLS_SECRET_FILES.key}`]);
      expect(mounted.output, 'the key mounted into the TLS server').toContain(lines[1]);
      return lines;
    } finally {
      await server.stop();
    }
  } finally {
    secret.remove();
    await network.remove();
  }
}

describe.each(surfaceRows())('%s', (_name, target, surface) => {
  const image = surfaceTarget(target, surface);
  const where = target.credentials === 'baked' ? `only in ${BAKED_SASLDB_PATH}, in one layer` : 'in no layer';

  const key = surface === 'tls' ? ', the mounted TLS key nowhere' : '';

  it(`every password is ${where}${key}; a users file written, then deleted by a later layer, is found`, async () => {
    // The control's image builds while the image under test is read.
    const building = buildVariant(image, USERS_FILE_IN_LAYER);
    building.catch(() => undefined);
    try {
      const keyLines = surface === 'tls' ? await keyMountedIntoTheImage(target) : [];
      const keyNeedles = Object.fromEntries(keyLines.map((line, index) => [`TLS key line ${index + 1}`, line]));
      const { found, layers } = await inventoryImage(image.image, { ...passwordNeedles(target), ...keyNeedles });

      expect(misplaced(found, target), `secrets where they must not be (image ${image.image})`).toEqual([]);
      if (target.credentials === 'baked') {
        // The sasldb is in exactly one layer, and every password is in it.
        const sasldbLayers = layersHolding(layers, (e) => e.path === BAKED_SASLDB_PATH && !e.whiteout);
        expect(sasldbLayers, `layers holding ${BAKED_SASLDB_PATH}`).toHaveLength(1);
        for (const user of target.users) {
          expect(found.get(`password of ${user.name}`), `where ${user.name}'s password is`).toEqual([
            { layer: sasldbLayers[0], path: BAKED_SASLDB_PATH },
          ]);
        }
      }
      if (surface === 'tls') expect(keyLines.length, 'key lines looked for').toBeGreaterThan(5);

      // Control: the users file written into a layer by one RUN (base64 in the RUN line, so neither the
      // config nor the history holds it in clear) and deleted by a later one: gone from the final
      // filesystem, still in its layer, where the same scan finds every password.
      const weakened = await inventoryImage((await building).target.image, passwordNeedles(target));
      const written = layersHolding(weakened.layers, (e) => e.path === LEAKED_USERS_FILE && !e.whiteout);
      const deleted = layersHolding(weakened.layers, (e) => e.whiteout?.hides === LEAKED_USERS_FILE);
      expect(written, 'the layer that wrote the users file').toHaveLength(1);
      expect(deleted, 'the later layer that deleted it').toEqual([written[0]! + 1]);
      expect(mergedFilesystem(weakened.layers).has(LEAKED_USERS_FILE)).toBe(false);
      const caught = misplaced(weakened.found, target);
      for (const user of target.users) {
        expect(caught).toContain(`password of ${user.name} in layer ${written[0]}: ${LEAKED_USERS_FILE}`);
        expect(caught).not.toContain(`password of ${user.name} in config`);
      }
    } finally {
      await building.then(
        (variant) => variant.remove(),
        () => undefined,
      );
    }
  });
});
