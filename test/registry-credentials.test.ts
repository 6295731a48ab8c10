import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import {
  describeCredentials,
  dockerConfigCredentials,
  dockerConfigPath,
  helperCredentials,
} from '../src/registry-credentials.js';

const scratch = mkdtempSync(join(tmpdir(), 'mh-registry-credentials-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const bin = join(scratch, 'bin');
mkdirSync(bin);
/** The helpers' environment: the fake helpers first on PATH (process.env is left alone). */
const env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
/** A helper script named docker-credential-<name>, reading the server address as a real one does. */
function helper(name: string, body: string): string {
  const path = join(bin, `docker-credential-${name}`);
  writeFileSync(path, `#!/bin/sh\nread -r server\n${body}\n`);
  chmodSync(path, 0o755);
  return name;
}

const userError = (exitCode: number, message: RegExp) =>
  expect.objectContaining({ name: UserError.name, exitCode, message: expect.stringMatching(message) });

describe('helperCredentials', () => {
  it('reads a user and secret, or an identity token when the Username is <token>', () => {
    helper('user', `printf '{"ServerURL":"%s","Username":"u","Secret":"s:1"}' "$server"`);
    helper('token', `echo '{"ServerURL":"x","Username":"<token>","Secret":"t-1"}'`);
    const user = { username: 'u', password: 's:1', serveraddress: 'r.local:5000' };
    expect(helperCredentials('user', 'r.local:5000', env)).toEqual(user);
    expect(helperCredentials('token', 'r.local', env)).toEqual({ identitytoken: 't-1', serveraddress: 'r.local' });
  });

  it("is none for Docker's exact not-found answer or an empty answer, and fails on any other refusal", () => {
    helper('not-found', `echo 'credentials not found in native keychain'; exit 1`);
    helper('empty', `echo '{"ServerURL":"","Username":"","Secret":""}'`);
    helper('other-refusal', `echo 'credentials not found: keychain locked'; exit 1`);
    expect(helperCredentials('not-found', 'r.local', env)).toBeUndefined();
    expect(helperCredentials('empty', 'r.local', env)).toBeUndefined();
    const refused = userError(1, /other-refusal get exited with 1 for r\.local/);
    expect(() => helperCredentials('other-refusal', 'r.local', env)).toThrow(refused);
  });

  it('fails without echoing an answer that is not JSON, or JSON without a string Username and Secret', () => {
    helper('not-json', `echo '{"Username":"u","Secret":"leaked-secret-1"'`);
    helper('no-secret', `echo '{"Username":"u","Secret":42}'`);
    const notJson = userError(1, /not-json answered for r\.local with something other than JSON/);
    expect(() => helperCredentials('not-json', 'r.local', env)).toThrow(notJson);
    expect(() => helperCredentials('not-json', 'r.local', env)).not.toThrow(/leaked-secret-1/);
    const noSecret = userError(1, /without a string Username and Secret/);
    expect(() => helperCredentials('no-secret', 'r.local', env)).toThrow(noSecret);
  });

  it('fails when the helper is killed or does not answer in time', () => {
    helper('killed', 'kill -9 $$');
    helper('slow', 'exec sleep 5');
    const killed = userError(1, /^docker-credential-killed get was killed by SIGKILL for r\.local/);
    expect(() => helperCredentials('killed', 'r.local', env)).toThrow(killed);
    const started = Date.now();
    const slow = userError(1, /^docker-credential-slow gave no credentials for r\.local within 0\.2 s$/);
    expect(() => helperCredentials('slow', 'r.local', env, 200)).toThrow(slow);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('refuses a helper name that is not a plain name, and names a missing helper', () => {
    for (const name of ['../bin/sh', '/bin/sh', '', '-x']) {
      expect(() => helperCredentials(name, 'r.local', env)).toThrow(userError(2, /names an invalid credential helper/));
    }
    const missing = userError(2, /docker-credential-missing is not on PATH$/);
    expect(() => helperCredentials('missing', 'r.local', env)).toThrow(missing);
  });
});

describe('the Docker config', () => {
  const configDir = (name: string, config: string) => {
    const dir = join(scratch, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), config);
    return { DOCKER_CONFIG: dir };
  };

  it('is $DOCKER_CONFIG/config.json, else ~/.docker/config.json (an empty DOCKER_CONFIG counts as unset)', () => {
    const explicit = { DOCKER_CONFIG: '/etc/docker-config', HOME: '/home/u' };
    expect(dockerConfigPath(explicit)).toBe('/etc/docker-config/config.json');
    expect(dockerConfigPath({ DOCKER_CONFIG: '', HOME: '/home/u' })).toBe('/home/u/.docker/config.json');
  });

  it('refuses credential fields of the wrong type, naming the field', () => {
    const cases: [string, RegExp][] = [
      ['[]', /is not a JSON object$/],
      ['{"credsStore": 1}', /credsStore is not a string$/],
      ['{"credHelpers": {"r.local": true}}', /credHelpers does not map registries to helper names$/],
      ['{"auths": {"r.local": "dXNlcjpwYXNz"}}', /auths is not an object of entries$/],
    ];
    cases.forEach(([config, message], i) => {
      expect(() => dockerConfigCredentials('r.local', configDir(`typed-${i}`, config))).toThrow(userError(2, message));
    });
  });
});

describe('describeCredentials', () => {
  it('describes who pushes without the secret', () => {
    expect(describeCredentials({ username: 'ci', password: 'secret', serveraddress: 'r' })).toBe('as ci');
    expect(describeCredentials({ identitytoken: 'secret', serveraddress: 'r' })).toBe('with an identity token');
  });
});
