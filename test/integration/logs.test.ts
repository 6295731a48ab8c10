import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { Status, tryAuthenticatedRoundTrip } from '../../lib/binary-client.js';
import type { SaslUser } from '../../src/credentials.js';
import { generatePassword } from '../../src/sasldb.js';
import { TLS_SECRET_DIR, TLS_SECRET_FILES } from '../../src/tls.js';
import { docker } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import { writeMemcacheSecret } from '../helpers/secrets.js';
import { containerLogs, runToExit, type RunningServer, type ServerOptions } from '../helpers/server.js';
import { issueTlsSecret, startSurface, surfaceRows, surfaceTarget, type TlsSecret } from '../helpers/surface.js';
import type { TestTarget } from '../helpers/targets.js';
import { expiredCertificate, issueWithReadmeCommands, mountableSecretDir, tlsRoundTrip } from '../helpers/tls.js';
import { buildVariant, type Variant } from '../helpers/variants.js';
import { ENTRYPOINT_TRACED, SASLDB_DUMP_LOGGED } from '../helpers/weakenings.js';

// Logs hold no secret: no password (the users', the wrong ones clients tried, those of refused
// configurations) and no line of a private key, at every verbosity and on every refused start, with baked
// and with runtime credentials, plain and TLS. One scan judges every log, the controls' too.

/** A secret the logs must not hold, and how a finding names it. */
interface Secret {
  readonly label: string;
  readonly text: string;
}

/** Shorter PEM lines (a key's last one may be a few characters) could turn up in any log by chance. */
const MIN_KEY_LINE = 16;

/** Each line of a PEM private key's body: a log holding any of them holds key material. */
function keyLines(label: string, pem: string): Secret[] {
  const body = pem
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('-----'));
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem) || body.length < 10) {
    throw new Error(`${label} is not a PEM private key`);
  }
  return body
    .filter((line) => line.length >= MIN_KEY_LINE)
    .map((text, i) => ({ label: `${label}, PEM line ${i + 1}`, text }));
}

const password = (label: string, text: string): Secret => ({ label: `password ${label}`, text });

/** The scan: which of the secrets a log holds. */
function leaks(log: string, secrets: readonly Secret[]): string[] {
  return secrets.filter((secret) => log.includes(secret.text)).map((secret) => secret.label);
}

/** A wrong password a user could type: the right one with its last character changed. */
function similar(right: string): string {
  return `${right.slice(0, -1)}${right.endsWith('x') ? 'y' : 'x'}`;
}

/** This host's TLS client: what the logs say is the point here, not whether the client checks the server. */
const TLS_CLIENT: ConnectionOptions = { rejectUnauthorized: false };

/** Every container's log once it has stopped: nothing it wrote is still on its way. */
async function logsOnceStopped(server: RunningServer): Promise<string> {
  const container = docker.getContainer(server.container.getId());
  await container.stop({ t: 10 }).catch(() => undefined);
  return containerLogs(server.container.getId());
}

/** A start that must be refused, the line that says why, and the secrets it was given. */
interface Refusal {
  readonly name: string;
  readonly target: TestTarget;
  readonly options: ServerOptions;
  readonly refusal: RegExp;
  readonly secrets: Secret[];
}

describe.each(surfaceRows())('%s', (_name, target, surface) => {
  const scratch = mkdtempSync(join(tmpdir(), 'mh-logs-'));
  const image = surfaceTarget(target, surface);
  const verbosities = [0, 1, 2] as const;
  const bench = isolatedServers('logs');
  bench.keep({ remove: () => rmSync(scratch, { recursive: true, force: true }) });
  let secret: TlsSecret | undefined;
  let other: TlsSecret | undefined;
  let variant: Variant | undefined;
  let servers: RunningServer[] = [];
  let leaky: RunningServer;
  /** A leaking entrypoint, caught by the same scan: with runtime credentials its trace (set -x) shows each
   * password fed to saslpasswd2; a baked image's entrypoint never handles a password (it copies the sasldb
   * with db5.3_dump | sed | db5.3_load, and xtrace prints commands, not what flows through pipes; openssl
   * prints only public keys), so there the leak is a dump of the sasldb it wrote. */
  const leak = target.credentials === 'runtime' ? ENTRYPOINT_TRACED : SASLDB_DUMP_LOGGED;

  const secretBinds = (dir: string | undefined) => (dir ? [`${dir}:${TLS_SECRET_DIR}:ro`] : []);
  /** The target with `image` in place of this surface's image. */
  const onImage = (image: string): TestTarget =>
    surface === 'tls' ? { ...target, tlsImage: image } : { ...target, image };
  const start = async (t: TestTarget, options: ServerOptions = {}) =>
    bench.keep(await startSurface(t, surface, bench.network.name, { ...options, secret }));

  beforeAll(async () => {
    if (surface === 'tls') [secret, other] = [bench.keep(issueTlsSecret()), bench.keep(issueTlsSecret())];
    variant = bench.keep(await buildVariant(image, leak));
    const [leakyServer, ...verbose] = await Promise.all([
      start(onImage(variant.target.image)),
      ...verbosities.map((v) => start(target, { env: { MEMCACHED_VERBOSITY: String(v) } })),
    ]);
    leaky = leakyServer;
    servers = verbose;
  });

  it(
    'no password and no private key line in any log: verbosity 0, 1 and 2 with right and wrong passwords, ' +
      'and every refused start; a leaking entrypoint is caught',
    async () => {
      const secrets: Secret[] = target.users.flatMap((u) => [
        password(`of ${u.name}`, u.password),
        password(`tried for ${u.name}`, similar(u.password)),
      ]);
      if (secret) secrets.push(...keyLines('the server key', secret.keyPem));

      // Traffic: each user with its password (served), then with a similar wrong one (refused).
      const attempt = (ip: string, user: SaslUser) =>
        surface === 'tls'
          ? tlsRoundTrip(ip, TLS_CLIENT, user)
          : tryAuthenticatedRoundTrip(ip, user.name, user.password);
      const outcomes = await Promise.all(
        servers.map(async (server, i) => {
          const seen: string[] = [];
          for (const user of target.users) {
            const right = await attempt(server.ip, user);
            const wrong = await attempt(server.ip, { name: user.name, password: similar(user.password) });
            const served = right.authStatus === Status.ok && right.roundTrip;
            const refused = wrong.authStatus === Status.authError && !wrong.roundTrip;
            const verdict = [
              served ? 'served' : `not served ${JSON.stringify(right)}`,
              refused ? 'refused' : `not refused ${JSON.stringify(wrong)}`,
            ].join(', ');
            seen.push(`verbosity ${verbosities[i]} ${user.name}: ${verdict}`);
          }
          return seen;
        }),
      );
      const expected = verbosities.flatMap((v) => target.users.map((u) => `verbosity ${v} ${u.name}: served, refused`));
      expect(outcomes.flat()).toEqual(expected);

      // Refused starts: each must be refused with its line, in this row's credential mode and surface.
      const refusals: Refusal[] = [];
      const valid = secretBinds(secret?.dir);
      if (target.credentials === 'runtime') {
        const good = [
          { name: 'erin', password: generatePassword() },
          { name: 'frank', password: generatePassword() },
        ];
        const short = 'Tr0ub4dor&3';
        const lines = good.map((u) => `${u.name}:${u.password}`);
        lines.splice(1, 0, `dave:${short}`);
        const file = writeMemcacheSecret(join(scratch, 'bad-users'), `${lines.join('\n')}\n`);
        refusals.push({
          name: 'a users file with one bad line between good ones',
          target: { ...image, usersSecret: file },
          options: { binds: valid },
          refusal: /^memcached-hardened: users file \S+ line 2: password for 'dave' is shorter than 12 characters$/m,
          secrets: [
            ...good.map((u) => password(`of ${u.name} in a refused users file`, u.password)),
            password("of dave's bad line", short),
          ],
        });
        const tooShort = 'Sh0rt-pass1';
        refusals.push({
          name: 'MEMCACHED_USERNAME with a too-short MEMCACHED_PASSWORD',
          target: { ...image, usersSecret: undefined },
          options: { env: { MEMCACHED_USERNAME: 'app', MEMCACHED_PASSWORD: tooShort }, binds: valid },
          refusal: /^memcached-hardened: MEMCACHED_USERNAME: password for 'app' is shorter than 12 characters$/m,
          secrets: [password('too short for app', tooShort)],
        });
      }
      if (secret && other) {
        const file = (s: TlsSecret, name: string) => join(s.dir, name);
        const mismatched = mountableSecretDir(join(scratch, 'mismatched'), {
          [TLS_SECRET_FILES.certificate]: file(secret, TLS_SECRET_FILES.certificate),
          [TLS_SECRET_FILES.key]: file(other, TLS_SECRET_FILES.key),
        });
        refusals.push({
          name: 'a key that does not belong to the certificate',
          target: image,
          options: { binds: secretBinds(mismatched) },
          refusal: /^memcached-hardened: TLS: the key \S+ does not belong to the certificate \S+$/m,
          secrets: keyLines('the mismatched key', other.keyPem),
        });
        const issued = issueWithReadmeCommands(join(scratch, 'expired-pki'), 'DNS:memcached');
        const expired = mountableSecretDir(join(scratch, 'expired'), {
          [TLS_SECRET_FILES.certificate]: expiredCertificate(issued),
          [TLS_SECRET_FILES.key]: issued.key,
        });
        refusals.push({
          name: 'an expired certificate',
          target: image,
          options: { binds: secretBinds(expired) },
          refusal: /^memcached-hardened: TLS: the certificate \S+ has expired$/m,
          secrets: keyLines("the expired certificate's key", readFileSync(issued.key, 'utf8')),
        });
      }
      refusals.push({
        name: 'an allowlist without NET_ADMIN',
        target: image,
        options: { env: { MEMCACHED_ALLOW_FROM: '10.0.0.0/8' }, binds: valid },
        refusal: /^memcached-hardened: MEMCACHED_ALLOW_FROM needs --cap-add NET_ADMIN/m,
        secrets: [],
      });
      secrets.push(...refusals.flatMap((r) => r.secrets));

      const [refused, logs] = await Promise.all([
        Promise.all(refusals.map((r) => runToExit(r.target, bench.network.name, r.options))),
        Promise.all(servers.map(logsOnceStopped)),
      ]);
      const verdicts = refused.map((run, i) => {
        const refusal = refusals[i]!;
        return `${refusal.name}: exit ${run.exitCode}, ${refusal.refusal.test(run.output) ? 'says why' : run.output}`;
      });
      expect(verdicts).toEqual(refusals.map((r) => `${r.name}: exit 78, says why`));
      // The logs are the servers' own: each says where it listens; -vv logs each connection, verbosity 0 does not.
      logs.forEach((log) => expect(log).toContain('memcached-hardened: listening on'));
      expect(logs[2]).toMatch(/^[<>]\d+ /m);
      expect(logs[0]).not.toMatch(/^[<>]\d+ /m);

      const scanned = [
        ...logs.map((log, i) => ({ log: `verbosity ${verbosities[i]}`, leaked: leaks(log, secrets) })),
        ...refused.map((run, i) => ({ log: refusals[i]!.name, leaked: leaks(run.output, secrets) })),
      ];
      expect(scanned).toEqual(scanned.map(({ log }) => ({ log, leaked: [] })));

      // Control: the same scan finds the users' passwords in the log of an entrypoint that leaks them.
      const leakyLog = await logsOnceStopped(leaky);
      expect(leakyLog).toContain('memcached-hardened: listening on');
      const everyPassword = target.users.map((u) => `password of ${u.name}`);
      expect(leaks(leakyLog, secrets)).toEqual(expect.arrayContaining(everyPassword));
      if (secret) {
        // And the key's lines, in the log of a start that prints the mounted key (no path of the traced
        // entrypoint does: it hands the key to openssl and the front by file name, and prints public keys).
        const printKey = ['sh', '-c', `cat ${TLS_SECRET_DIR}/${TLS_SECRET_FILES.key} >&2`];
        const planted = await runToExit(image, bench.network.name, { entrypoint: printKey, binds: valid });
        const keyFindings = keyLines('the server key', secret.keyPem).map((line) => line.label);
        expect(leaks(planted.output, secrets)).toEqual(keyFindings);
      }
    },
  );
});
