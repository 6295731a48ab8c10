import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import { docker } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import { writeMemcacheSecret } from '../helpers/secrets.js';
import { runToExit, startServer } from '../helpers/server.js';
import type { TestTarget } from '../helpers/targets.js';
import { bytesOf, cliVerdict, SHELL_DRIVER, USERS_FILE_CASES } from '../helpers/users-file-cases.js';
import { CREDENTIAL_RULES_PATH, IMAGE_VALUES_PATH } from '../../src/render.js';

const runtimeTargets = inject('targets').filter((t) => t.credentials === 'runtime');
const scratch = mkdtempSync(join(tmpdir(), 'mh-runtime-'));

/** A secret file only the image's memcache user can read. */
function secret(name: string, content: string): string {
  return writeMemcacheSecret(join(scratch, name), content);
}

describe.each(runtimeTargets.map((t): [string, TestTarget] => [t.name, t]))('%s', (_name, target) => {
  const user = target.users[0]!;
  const bench = isolatedServers('runtime');

  it('carries no users: its label says runtime and the image holds no sasldb', async () => {
    const image = await docker.getImage(target.image).inspect();
    expect(image.Config.Labels?.['memcached-hardened.credentials']).toBe('runtime');
    const probe = await runToExit(target.image, bench.network.name, {
      entrypoint: ['sh', '-c', 'ls /etc/sasl2; echo done'],
    });
    expect(probe.output).toContain('memcached.conf');
    expect(probe.output).not.toContain('sasldb');
  });

  it('refuses to start with no credentials at all, with one clear line', async () => {
    const refused = await runToExit(target.image, bench.network.name, {});
    expect(refused.exitCode).not.toBe(0);
    expect(refused.output.trim()).toMatch(/^memcached-hardened: no credentials: mount a users file/);
    expect(refused.output.trim().split('\n')).toHaveLength(1);
  });

  it('authenticates Bitnami-style MEMCACHED_USERNAME + MEMCACHED_PASSWORD_FILE under a random hostname', async () => {
    const passwordFile = secret('password', 'bitnami-style-password-1');
    const server = await startServer({ ...target, usersSecret: undefined }, bench.network.name, {
      hostname: `pod-${Math.random().toString(36).slice(2, 10)}`,
      env: { MEMCACHED_USERNAME: 'app', MEMCACHED_PASSWORD_FILE: '/run/secrets/memcached_password' },
      binds: [`${passwordFile}:/run/secrets/memcached_password:ro`],
    });
    try {
      expect(await tryAuthenticatedRoundTrip(server.ip, 'app', 'bitnami-style-password-1')).toEqual({
        authStatus: Status.ok,
        roundTrip: true,
      });
      expect((await tryAuthenticatedRoundTrip(server.ip, 'app', 'not-the-password-1')).roundTrip).toBe(false);
      expect((await tryAuthenticatedRoundTrip(server.ip, user.name, user.password)).roundTrip).toBe(false);
    } finally {
      await server.stop();
    }
  });

  it('judges every case of the users-file table as the CLI does, with the rules the entrypoint sources', async () => {
    const cases = join(scratch, `cases-${target.profile}`);
    mkdirSync(cases);
    chmodSync(cases, 0o755);
    USERS_FILE_CASES.forEach(([, content], index) =>
      writeFileSync(join(cases, `case-${String(index).padStart(2, '0')}`), bytesOf(content)),
    );
    writeFileSync(join(cases, 'driver.sh'), `. ${IMAGE_VALUES_PATH}\n. ${CREDENTIAL_RULES_PATH}\n${SHELL_DRIVER}`);
    const run = await runToExit(target.image, bench.network.name, {
      entrypoint: [
        'sh',
        '-c',
        'for f in /cases/case-*; do printf "\\n%s\\t" "${f##*/}"; sh /cases/driver.sh "$f"; done',
      ],
      binds: [`${cases}:/cases:ro`],
    });
    expect(run.exitCode, run.output).toBe(0);
    const inContainer = Object.fromEntries(
      run.output
        .split('\n')
        .filter((l) => l.startsWith('case-'))
        .map((l) => [l.slice(0, 7), l.slice(8)]),
    );
    const byCli = Object.fromEntries(
      USERS_FILE_CASES.map(([, content], index) => [`case-${String(index).padStart(2, '0')}`, cliVerdict(content)]),
    );
    expect(inContainer).toEqual(byCli);
  });

  it(
    'starts with a non-ASCII password counted in characters, ' + 'and refuses a non-ASCII name as the CLI does',
    async () => {
      const password = 'пароль-пароль';
      const server = await startServer(
        { ...target, usersSecret: secret('cyrillic-users', `ivan:${password}\n`) },
        bench.network.name,
      );
      try {
        expect(await tryAuthenticatedRoundTrip(server.ip, 'ivan', password)).toEqual({
          authStatus: Status.ok,
          roundTrip: true,
        });
      } finally {
        await server.stop();
      }
      const refused = await runToExit(
        { ...target, usersSecret: secret('accented-users', 'josé:correct-horse-battery\n') },
        bench.network.name,
        {},
      );
      expect(refused.exitCode).toBe(78);
      expect(refused.output.trim()).toBe(
        `memcached-hardened: users file /run/secrets/memcached_users${cliVerdict('josé:correct-horse-battery\n')}`,
      );
    },
  );

  it('refuses a bad users file without echoing its passwords', async () => {
    const leaked = 'Secret-value-999';
    const bad = secret('bad-users', `sammy:${leaked}\nsammy:${leaked}-2\n`);
    const refused = await runToExit(target.image, bench.network.name, {
      env: { MEMCACHED_USERS_FILE: '/run/users' },
      binds: [`${bad}:/run/users:ro`],
    });
    expect(refused.exitCode).not.toBe(0);
    expect(refused.output).toContain("duplicate user 'sammy'");
    expect(refused.output).not.toContain(leaked);
  });
});

if (runtimeTargets.length === 0) {
  // A run of baked images only (a release or a mutant of a baked image): then each must really be one, or
  // a runtime-credentials image mislabelled as baked would skip every check of this file.
  describe.each(inject('targets').map((t): [string, TestTarget] => [t.name, t]))('%s', (_name, target) => {
    const bench = isolatedServers('runtime-none');

    it('is a baked image: its label says baked and it holds a sasldb, so no runtime check applies', async () => {
      const image = await docker.getImage(target.image).inspect();
      expect(image.Config.Labels?.['memcached-hardened.credentials']).toBe('baked');
      const probe = await runToExit(target.image, bench.network.name, {
        entrypoint: ['sh', '-c', 'ls /etc/sasl2; echo done'],
      });
      expect(probe.output).toContain('memcached-sasldb2');
    });
  });
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }));
