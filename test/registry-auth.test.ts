import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { registryAuth, releaseRegistry } from '../src/release.js';

const scratch = mkdtempSync(join(tmpdir(), 'mh-registry-auth-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const REGISTRY = 'registry.local:5000';
const basic = (credentials: string) => Buffer.from(credentials).toString('base64');

/** An environment whose Docker config (DOCKER_CONFIG) holds `config`, or none at all. */
function withDockerConfig(name: string, config?: unknown): NodeJS.ProcessEnv {
  const dir = join(scratch, name);
  mkdirSync(dir);
  if (config !== undefined) writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return { DOCKER_CONFIG: dir };
}

/** Bad input: a UserError that exits 2. */
const badInput = (message: string | RegExp) => expect.objectContaining({ name: UserError.name, exitCode: 2, message: typeof message === 'string' ? message : expect.stringMatching(message) });

describe('releaseRegistry', () => {
  it("is the registry of the release's tag, which must name one", () => {
    expect(releaseRegistry(`${REGISTRY}/platform/memcached:1.4.25`)).toBe(REGISTRY);
    expect(releaseRegistry('localhost/memcached:1')).toBe('localhost');
    for (const tag of ['memcached-hardened:1.0', 'platform/memcached:1.0']) expect(() => releaseRegistry(tag)).toThrow(badInput(/names no registry/));
  });
});

describe('registryAuth', () => {
  it('takes REGISTRY_USERNAME and REGISTRY_PASSWORD as they are, a password with colons included', () => {
    const env = { ...withDockerConfig('env-wins', { auths: { [REGISTRY]: { auth: basic('config-user:config-password') } } }), REGISTRY_USERNAME: 'ci', REGISTRY_PASSWORD: 'pa:ss:word' };
    expect(registryAuth(REGISTRY, env)).toEqual({ username: 'ci', password: 'pa:ss:word', serveraddress: REGISTRY });
    for (const half of [{ REGISTRY_USERNAME: 'ci' }, { REGISTRY_PASSWORD: 'secret-password' }]) {
      expect(() => registryAuth(REGISTRY, half)).toThrow(badInput('REGISTRY_USERNAME and REGISTRY_PASSWORD go together'));
    }
  });

  it("splits the Docker config's auth at the first colon only", () => {
    const env = withDockerConfig('colons', { auths: { [REGISTRY]: { auth: basic('deployer:pa:ss:word:') } } });
    expect(registryAuth(REGISTRY, env)).toEqual({ username: 'deployer', password: 'pa:ss:word:', serveraddress: REGISTRY });
  });

  it('matches the registry of the reference to the host of each auths key, port included', () => {
    const auths = {
      'registry.local:5001': { auth: basic('other-port:password-1') },
      'registry.local': { auth: basic('no-port:password-2') },
      'https://registry.local:5000/v1/': { auth: basic('url-key:password-3') },
    };
    const env = withDockerConfig('hosts', { auths });
    expect(registryAuth(releaseRegistry(`${REGISTRY}/platform/memcached:1.0`), env)?.username).toBe('url-key');
    expect(registryAuth('registry.local:5001', env)?.username).toBe('other-port');
    expect(registryAuth('registry.local', env)?.username).toBe('no-port');
    expect(registryAuth('registry.local:5002', env)).toBeUndefined();
    expect(registryAuth('local:5000', env)).toBeUndefined();
    const both = withDockerConfig('exact-first', { auths: { [`http://${REGISTRY}`]: { auth: basic('url:password-4') }, [REGISTRY]: { auth: basic('exact:password-5') } } });
    expect(registryAuth(REGISTRY, both)?.username).toBe('exact');
  });

  it('is none without credentials: no config file, no auths, no entry, or an entry without auth', () => {
    expect(registryAuth(REGISTRY, withDockerConfig('no-file'))).toBeUndefined();
    expect(registryAuth(REGISTRY, { HOME: join(scratch, 'no-such-home') })).toBeUndefined();
    expect(registryAuth(REGISTRY, withDockerConfig('no-auths', { credsStore: 'desktop' }))).toBeUndefined();
    expect(registryAuth(REGISTRY, withDockerConfig('other-registry', { auths: { 'elsewhere.local': { auth: basic('u:password-6') } } }))).toBeUndefined();
    expect(registryAuth(REGISTRY, withDockerConfig('token-only', { auths: { [REGISTRY]: { identitytoken: 'token' } } }))).toBeUndefined();
  });

  it('refuses a config that is not JSON and an auth without a colon, never echoing the auth', () => {
    expect(() => registryAuth(REGISTRY, withDockerConfig('not-json', '{'))).toThrow(badInput(/config\.json is not valid JSON$/));
    const malformed = withDockerConfig('malformed', { auths: { [REGISTRY]: { auth: basic('no-colon-secret') } } });
    expect(() => registryAuth(REGISTRY, malformed)).toThrow(badInput(new RegExp(`: the auth entry for ${REGISTRY} is malformed$`)));
    expect(() => registryAuth(REGISTRY, malformed)).not.toThrow(/no-colon-secret/);
  });
});
