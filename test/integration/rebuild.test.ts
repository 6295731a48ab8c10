import { afterAll, describe, expect, inject, it } from 'vitest';
import { tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { buildImage, INPUTS_LABEL } from '../../src/build.js';
import { parseBuildArgs } from '../../src/config.js';
import { connectEngine, type Engine } from '../../src/engine/index.js';
import { loadProfile } from '../../src/profiles.js';
import type { SaslUser } from '../../src/credentials.js';
import { generatePassword } from '../../src/sasldb.js';
import { runId } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import { startServer } from '../helpers/server.js';
import type { TestTarget } from '../helpers/targets.js';

// A rebuild whose inputs match the image under the tag keeps that image without asking the engine to
// build. What must never happen: keeping it when the users differ, even by one password.

const profiles = [...new Set(inject('targets').map((t) => t.profile))];
const quiet = () => undefined;

/**
 * The engine, counting the builds it is asked for (the proof a kept image really skipped the engine) and
 * the files it is asked to read out of images (the proof the users were checked in the tag's sasldb).
 */
function countingEngine(): Engine & { builds: () => number; reads: () => number } {
  const engine = connectEngine();
  let builds = 0;
  let reads = 0;
  return {
    ...engine,
    build: (...args) => {
      builds++;
      return engine.build(...args);
    },
    readFile: (...args) => {
      reads++;
      return engine.readFile(...args);
    },
    builds: () => builds,
    reads: () => reads,
  };
}

describe.each(profiles)('rebuilds of %s', (profileName) => {
  const profile = loadProfile(profileName);
  const profileTarget = inject('targets').find((t) => t.profile === profileName) as TestTarget;
  const engine = countingEngine();
  const tag = (kind: string) => `memcached-hardened-test/rebuild-${runId()}:${profileName}-${kind}`;
  const tags = new Set<string>();
  const bench = isolatedServers('rebuild');

  /** One CLI-equivalent build: the arguments as a user types them, the users as read from their file. */
  async function build(
    args: string[],
    users?: readonly SaslUser[],
  ): Promise<{ imageId: string; builds: number; reads: number }> {
    const [builds, reads] = [engine.builds(), engine.reads()];
    const config = parseBuildArgs(['--profile', profileName, ...args]);
    if (!config) throw new Error('no config');
    tags.add(config.tag);
    const result = await buildImage(engine, config, profile, users, quiet);
    return { imageId: result.imageId, builds: engine.builds() - builds, reads: engine.reads() - reads };
  }

  /** Whether a server of `imageId` lets each user in: a refused login is a fact, not a reading of its sasldb. */
  async function logins(imageId: string, users: readonly SaslUser[]): Promise<boolean[]> {
    const target: TestTarget = {
      ...profileTarget,
      credentials: 'baked',
      usersSecret: undefined,
      image: imageId,
      users,
    };
    const server = await startServer(target, bench.network.name);
    try {
      const answers: boolean[] = [];
      for (const user of users)
        answers.push((await tryAuthenticatedRoundTrip(server.ip, user.name, user.password)).roundTrip);
      return answers;
    } finally {
      await server.stop();
    }
  }

  afterAll(async () => {
    for (const reference of tags) await engine.removeImage(reference).catch(() => undefined);
  });

  it(
    'baked: the same users keep the image with no build; ' +
      'another password, an extra user or a changed file builds anew',
    async () => {
      const sammy: SaslUser = { name: 'sammy', password: generatePassword() };
      const args = ['--tag', tag('baked')];
      // A rebuild learns from the tag's sasldb (one read) that it holds exactly these users.
      const first = await build(args, [sammy]);
      // Control: the counter sees the builds a changed input causes (the first one, at least the server stage).
      expect(first.builds).toBeGreaterThan(0);
      const firstLabels = (await engine.inspectImage(first.imageId))?.labels ?? {};
      expect(firstLabels[INPUTS_LABEL]).toMatch(/^sha256:[0-9a-f]{64}$/);
      const again = await build(args, [{ ...sammy }]);
      expect(again).toEqual({ imageId: first.imageId, builds: 0, reads: 1 });

      const rotated: SaslUser = { name: 'sammy', password: generatePassword() };
      const afterRotation = await build(args, [rotated]);
      expect(afterRotation.builds).toBeGreaterThan(0);
      expect(afterRotation.imageId).not.toBe(first.imageId);
      expect(await build(args, [{ ...rotated }])).toEqual({ imageId: afterRotation.imageId, builds: 0, reads: 1 });

      const extra = await build(args, [rotated, { name: 'intruder', password: generatePassword() }]);
      expect(extra.builds).toBeGreaterThan(0);
      expect(extra.imageId).not.toBe(afterRotation.imageId);

      const allowlisted = await build(
        [...args, '--allow-from', '10.0.0.0/8'],
        [rotated, { name: 'intruder', password: generatePassword() }],
      );
      expect(allowlisted.builds).toBeGreaterThan(0);

      // By behaviour: the image kept for the same users still lets sammy in with the old password (the
      // control), and the one rebuilt after rotating refuses it and takes the new one.
      const [kept, afterRotationLogins] = await Promise.all([
        logins(again.imageId, [sammy]),
        logins(afterRotation.imageId, [sammy, rotated]),
      ]);
      expect(kept).toEqual([true]);
      expect(afterRotationLogins).toEqual([false, true]);
    },
  );

  it(
    'runtime credentials and the client image: the same inputs keep the image; ' +
      'TLS (other files and labels) builds',
    async () => {
      const runtime = ['--runtime-credentials', '--tag', tag('runtime')];
      const first = await build(runtime);
      const again = await build(runtime);
      expect(again).toEqual({ imageId: first.imageId, builds: 0, reads: 0 });
      // Control: with TLS the rendered files and labels differ, so the engine is asked to build.
      const tls = await build([...runtime, '--tls']);
      expect(tls.builds).toBeGreaterThan(0);
      expect(tls.imageId).not.toBe(first.imageId);

      const client = ['--target', 'client', '--tag', tag('client')];
      const clientFirst = await build(client);
      expect(await build(client)).toEqual({ imageId: clientFirst.imageId, builds: 0, reads: 0 });
    },
  );
});
