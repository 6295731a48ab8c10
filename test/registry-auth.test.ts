import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import type { RegistryCredentials } from '../src/registry-credentials.js';
import { registryAuth, releaseRegistry } from '../src/release.js';

const scratch = mkdtempSync(join(tmpdir(), 'mh-registry-auth-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const REGISTRY = 'registry.local:5000';
const basic = (credentials: string) => Buffer.from(credentials).toString('base64');

/** An environment whose Docker config (DOCKER_CONFIG) holds `config`, or none at all. */
function withDockerConfig(name: string, config?: unknown): NodeJS.ProcessEnv {
  const dir = join(scratch, name);
  mkdirSync(dir);
  if (config !== undefined)
    writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return { DOCKER_CONFIG: dir };
}

/** The user of basic credentials (undefined for none or a token). */
const userOf = (credentials: RegistryCredentials | undefined) =>
  credentials && 'username' in credentials ? credentials.username : undefined;

/** Bad input: a UserError that exits 2. */
const badInput = (message: string | RegExp) =>
  expect.objectContaining({
    name: UserError.name,
    exitCode: 2,
    message: typeof message === 'string' ? message : expect.stringMatching(message),
  });

describe('releaseRegistry', () => {
  it("is the registry of the release's tag, which must name one", () => {
    expect(releaseRegistry(`${REGISTRY}/platform/memcached:1.4.25`)).toBe(REGISTRY);
    expect(releaseRegistry('localhost/memcached:1')).toBe('localhost');
    for (const tag of ['memcached-hardened:1.0', 'platform/memcached:1.0'])
      expect(() => releaseRegistry(tag)).toThrow(badInput(/names no registry/));
  });
});

describe('registryAuth', () => {
  it('takes REGISTRY_USERNAME and REGISTRY_PASSWORD as they are, a password with colons included', () => {
    const env = {
      ...withDockerConfig('env-wins', { auths: { [REGISTRY]: { auth: basic('config-user:config-password') } } }),
      REGISTRY_USERNAME: 'ci',
      REGISTRY_PASSWORD: 'pa:ss:word',
    };
    expect(registryAuth(REGISTRY, env)).toEqual({ username: 'ci', password: 'pa:ss:word', serveraddress: REGISTRY });
    for (const half of [{ REGISTRY_USERNAME: 'ci' }, { REGISTRY_PASSWORD: 'secret-password' }]) {
      expect(() => registryAuth(REGISTRY, half)).toThrow(
        badInput('REGISTRY_USERNAME and REGISTRY_PASSWORD go together'),
      );
    }
  });

  it("splits the Docker config's auth at the first colon only", () => {
    const env = withDockerConfig('colons', { auths: { [REGISTRY]: { auth: basic('deployer:pa:ss:word:') } } });
    expect(registryAuth(REGISTRY, env)).toEqual({
      username: 'deployer',
      password: 'pa:ss:word:',
      serveraddress: REGISTRY,
    });
  });

  it('matches the registry of the reference to the host of each auths key, port included', () => {
    const auths = {
      'registry.local:5001': { auth: basic('other-port:password-1') },
      'registry.local': { auth: basic('no-port:password-2') },
      'https://registry.local:5000/v1/': { auth: basic('url-key:password-3') },
    };
    const env = withDockerConfig('hosts', { auths });
    expect(userOf(registryAuth(releaseRegistry(`${REGISTRY}/platform/memcached:1.0`), env))).toBe('url-key');
    expect(userOf(registryAuth('registry.local:5001', env))).toBe('other-port');
    expect(userOf(registryAuth('registry.local', env))).toBe('no-port');
    expect(registryAuth('registry.local:5002', env)).toBeUndefined();
    expect(registryAuth('local:5000', env)).toBeUndefined();
    const both = withDockerConfig('exact-first', {
      auths: {
        [`http://${REGISTRY}`]: { auth: basic('url:password-4') },
        [REGISTRY]: { auth: basic('exact:password-5') },
      },
    });
    expect(userOf(registryAuth(REGISTRY, both))).toBe('exact');
  });

  it('is none without credentials: no config file, no auths, no entry, or an entry without any', () => {
    expect(registryAuth(REGISTRY, withDockerConfig('no-file'))).toBeUndefined();
    expect(registryAuth(REGISTRY, { HOME: join(scratch, 'no-such-home') })).toBeUndefined();
    const otherHelper = withDockerConfig('no-auths', { credHelpers: { 'elsewhere.local': 'desktop' } });
    expect(registryAuth(REGISTRY, otherHelper)).toBeUndefined();
    expect(
      registryAuth(
        REGISTRY,
        withDockerConfig('other-registry', { auths: { 'elsewhere.local': { auth: basic('u:password-6') } } }),
      ),
    ).toBeUndefined();
    const emptyEntry = withDockerConfig('empty-entry', { auths: { [REGISTRY]: { email: 'ops@example.com' } } });
    expect(registryAuth(REGISTRY, emptyEntry)).toBeUndefined();
  });

  it("takes an auths entry's identitytoken, and its separate username and password fields", () => {
    const token = withDockerConfig('token-only', { auths: { [REGISTRY]: { identitytoken: 'refresh-token-1' } } });
    expect(registryAuth(REGISTRY, token)).toEqual({ identitytoken: 'refresh-token-1', serveraddress: REGISTRY });
    // What `docker login` leaves for a token registry: a user with an empty password beside the token.
    const both = withDockerConfig('token-and-auth', {
      auths: { [REGISTRY]: { auth: basic('00000000:'), identitytoken: 'refresh-token-2' } },
    });
    expect(registryAuth(REGISTRY, both)).toEqual({ identitytoken: 'refresh-token-2', serveraddress: REGISTRY });
    const fields = withDockerConfig('fields', {
      auths: { [`https://${REGISTRY}/v1/`]: { username: 'field-user', password: 'pa:ss' } },
    });
    const spelledOut = { username: 'field-user', password: 'pa:ss', serveraddress: REGISTRY };
    expect(registryAuth(REGISTRY, fields)).toEqual(spelledOut);
  });

  it('refuses a config that is not JSON and an auth without a colon, never echoing the auth', () => {
    expect(() => registryAuth(REGISTRY, withDockerConfig('not-json', '{'))).toThrow(
      badInput(/config\.json is not valid JSON$/),
    );
    const malformed = withDockerConfig('malformed', { auths: { [REGISTRY]: { auth: basic('no-colon-secret') } } });
    expect(() => registryAuth(REGISTRY, malformed)).toThrow(
      badInput(new RegExp(`: the auth entry for ${REGISTRY} is malformed$`)),
    );
    expect(() => registryAuth(REGISTRY, malformed)).not.toThrow(/no-colon-secret/);
  });
});

describe('registryAuth with credential helpers', () => {
  const bin = join(scratch, 'bin');
  mkdirSync(bin);
  /** A helper script on the PATH the tests hand to registryAuth (process.env is left alone). */
  const helper = (name: string, body: string) => {
    const path = join(bin, `docker-credential-${name}`);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
  };
  // Records what it was given, then answers by server address, as a real store would.
  helper(
    'fake',
    `server=$(cat)
printf '%s' "$*" > "$FAKE_HELPER_LOG.argv"
printf '%s' "$server" > "$FAKE_HELPER_LOG.stdin"
case "$server" in
  registry.local:5000) printf '{"ServerURL":"%s","Username":"fake-user","Secret":"fake-secret-1"}\\n' "$server" ;;
  token.local) printf '{"ServerURL":"%s","Username":"<token>","Secret":"fake-token-2"}\\n' "$server" ;;
  broken.local) echo 'error getting credentials: fake-secret-4'; echo 'fake-secret-4' >&2; exit 1 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac`,
  );
  helper('store', `cat > /dev/null; echo '{"ServerURL":"","Username":"store-user","Secret":"store-secret"}'`);

  let runs = 0;
  /** A Docker config using helpers, the fake helpers first on PATH, and where the fake records its call. */
  const withHelpers = (config: unknown) => {
    const log = join(scratch, `helper-call-${++runs}`);
    const PATH = `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`;
    return { ...withDockerConfig(`helpers-${runs}`, config), PATH, FAKE_HELPER_LOG: log, log };
  };
  const fakeUser = { username: 'fake-user', password: 'fake-secret-1', serveraddress: REGISTRY };
  const storeUser = (serveraddress: string) => ({ username: 'store-user', password: 'store-secret', serveraddress });

  it('asks the credHelpers entry of the registry, writing the host to its stdin and no secret to its argv', () => {
    const env = withHelpers({ credHelpers: { [REGISTRY]: 'fake' }, auths: { [REGISTRY]: {} } });
    expect(registryAuth(REGISTRY, env)).toEqual(fakeUser);
    expect(readFileSync(`${env.log}.stdin`, 'utf8')).toBe(REGISTRY);
    expect(readFileSync(`${env.log}.argv`, 'utf8')).toBe('get');
    // Another registry is not the helper's: its auths entry answers.
    const other = withHelpers({
      credHelpers: { [REGISTRY]: 'fake' },
      auths: { 'elsewhere.local': { auth: basic('auths-user:p') } },
    });
    expect(userOf(registryAuth('elsewhere.local', other))).toBe('auths-user');
  });

  it('asks credsStore for every registry, ahead of auths', () => {
    const env = withHelpers({ credsStore: 'store', auths: { [REGISTRY]: { auth: basic('auths-user:p') } } });
    expect(registryAuth(REGISTRY, env)).toEqual(storeUser(REGISTRY));
    expect(registryAuth('elsewhere.local', env)).toEqual(storeUser('elsewhere.local'));
  });

  it('lets credHelpers beat credsStore for its registry, and an empty credHelpers entry mean auths', () => {
    const env = withHelpers({
      credsStore: 'store',
      credHelpers: { [REGISTRY]: 'fake', 'plain.local': '' },
      auths: { 'plain.local': { auth: basic('auths-user:p') } },
    });
    expect(registryAuth(REGISTRY, env)).toEqual(fakeUser);
    expect(registryAuth('elsewhere.local', env)).toEqual(storeUser('elsewhere.local'));
    expect(userOf(registryAuth('plain.local', env))).toBe('auths-user');
  });

  it('takes the Secret as an identity token when the Username is <token>', () => {
    const env = withHelpers({ credHelpers: { 'token.local': 'fake' } });
    expect(registryAuth('token.local', env)).toEqual({ identitytoken: 'fake-token-2', serveraddress: 'token.local' });
  });

  it('is none when the helper has no credentials for the registry, even with an auths entry (as in Docker)', () => {
    const env = withHelpers({
      credHelpers: { 'unknown.local': 'fake' },
      auths: { 'unknown.local': { auth: basic('auths-user:p') } },
    });
    expect(registryAuth('unknown.local', env)).toBeUndefined();
    expect(readFileSync(`${env.log}.stdin`, 'utf8')).toBe('unknown.local');
  });

  it('fails in one line, naming the helper and never its output, when the helper fails', () => {
    const env = withHelpers({ credHelpers: { 'broken.local': 'fake' } });
    const message = expect.stringMatching(/^docker-credential-fake get exited with 1 for broken\.local [^\n]*$/);
    const failed = expect.objectContaining({ name: UserError.name, exitCode: 1, message });
    expect(() => registryAuth('broken.local', env)).toThrow(failed);
    expect(() => registryAuth('broken.local', env)).not.toThrow(/fake-secret-4|error getting credentials/);
  });

  it('refuses a helper that is not on PATH, naming the program', () => {
    const env = withHelpers({ credsStore: 'absent' });
    const missing = badInput("the Docker config's credential helper docker-credential-absent is not on PATH");
    expect(() => registryAuth(REGISTRY, env)).toThrow(missing);
  });

  it('never asks a helper when REGISTRY_USERNAME and REGISTRY_PASSWORD are set', () => {
    const env = { ...withHelpers({ credsStore: 'absent' }), REGISTRY_USERNAME: 'ci', REGISTRY_PASSWORD: 'env-secret' };
    expect(registryAuth(REGISTRY, env)).toEqual({ username: 'ci', password: 'env-secret', serveraddress: REGISTRY });
  });
});
