import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../src/paths.js';
import { listProfiles, loadProfile } from '../src/profiles.js';
import { sasldbScript } from '../src/sasldb.js';
import { printfEscaped, TLS_MARKER, TLS_SECRET_DIR, tlsProbeHello } from '../src/tls.js';
import { BUILD_REALM, defaultPerClientCap, guardDefines, PER_CLIENT_SHARE, placeholders, PRIVATE_IPV4_RANGES, profileValues, renderTemplate, unusedValues } from '../src/render.js';

const template = readFileSync(projectPath('Dockerfile.template'), 'utf8');
const imageFiles = readdirSync(projectPath('image-files'), { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile())
  .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'));

describe('renderTemplate', () => {
  it('replaces placeholders and refuses missing ones', () => {
    expect(renderTemplate('FROM {{BASE}}', { BASE: 'x:1' })).toBe('FROM x:1');
    expect(() => renderTemplate('FROM {{BASE}}', {})).toThrow('no value for {{BASE}}');
    expect(() => renderTemplate('FROM {{base}}', {})).toThrow('malformed placeholder');
    expect(unusedValues({ A: '1', B: '2' }, ['{{A}}'])).toEqual(['B']);
  });
});

describe.each(listProfiles())('profile %s', (name) => {
  const profile = loadProfile(name);
  const values = profileValues(profile);
  const dockerfile = renderTemplate(template, values);
  const memcachedConf = renderTemplate(readFileSync(projectPath('image-files/etc/memcached.conf'), 'utf8'), values);

  it('uses every value and leaves no placeholder', () => {
    expect(unusedValues(values, [template, ...imageFiles])).toEqual([]);
    expect(placeholders(dockerfile).size).toBe(0);
  });

  it('starts from the profile base and installs its packages', () => {
    expect(dockerfile).toContain(`FROM ${profile.base.image} AS os`);
    expect(dockerfile).toContain(`apt-get install -y -qq ${profile.packages.server.join(' ')}`);
    expect(dockerfile).toContain(`ge "${profile.memcached.minVersion}"`);
    expect(dockerfile).toContain(`apt-get install -y -qq ${profile.packages.tools.join(' ')}`);
  });

  it('keeps the credentials last so changing users rebuilds only them', () => {
    const server = dockerfile.slice(dockerfile.indexOf('AS server'));
    const sasldbCopy = server.indexOf('COPY --chown=memcache:memcache memcached-sasldb2');
    expect(sasldbCopy).toBeGreaterThan(server.indexOf('apt-get install'));
    expect(sasldbCopy).toBeGreaterThan(server.indexOf('COPY image-files/'));
    expect(server.slice(sasldbCopy)).not.toMatch(/^RUN /m);
  });

  it('runs as the non-root memcache user with TCP only', () => {
    expect(dockerfile).toMatch(/^USER memcache$/m);
    expect(dockerfile).toContain('EXPOSE 11211/tcp');
    expect(dockerfile).not.toMatch(/EXPOSE .*udp/);
    expect(memcachedConf).toMatch(/^-U 0$/m);
    expect(memcachedConf).toMatch(/^-S$/m);
    expect(memcachedConf).not.toMatch(/^-l /m);
  });

  it('passes only the hardening flags this memcached version supports', () => {
    for (const flag of profile.memcached.hardeningFlags) expect(memcachedConf).toMatch(new RegExp(`^${flag}$`, 'm'));
    for (const flag of ['-F', '-X', '-Y', '-Z'].filter((f) => !profile.memcached.supportedFlags.includes(f as never))) {
      expect(memcachedConf).not.toMatch(new RegExp(`^${flag}`, 'm'));
    }
  });

  it('adds the TLS layer only with --tls: before the image files, its packages, the purge minus what TLS keeps, the marker', () => {
    const tls = renderTemplate(template, profileValues(profile, { tls: true }));
    expect(dockerfile).not.toContain(TLS_MARKER);
    expect(dockerfile).not.toMatch(new RegExp(`apt-get install -y -qq ${profile.tls.packages.join(' ')} `));
    const layer = tls.slice(tls.indexOf('# TLS (--tls)'), tls.indexOf('COPY image-files/'));
    expect(layer).toContain(`apt-get install -y -qq ${profile.tls.packages.join(' ')} >/dev/null`);
    expect(layer).toContain(`> ${TLS_MARKER}`);
    expect(layer).toContain('find / -xdev -type f -perm /6000 -exec chmod ug-s {} +');
    const purged = /for package in ([^;]*); do/.exec(layer)?.[1]?.split(' ');
    expect(purged).toEqual(profile.packages.purgeAfterInstall.filter((p) => !profile.tls.keepInstalled.includes(p)));
    // Everything else is the plaintext image's, line for line.
    expect(tls.replace(layer, '')).toBe(dockerfile.replace(/# No TLS layer \(--tls adds one\)\.\n/, ''));
  });

  it('bakes an allowlist only when asked', () => {
    expect(dockerfile).not.toMatch(/^ENV MEMCACHED_ALLOW_FROM/m);
    const withAllow = renderTemplate(template, profileValues(profile, { allowFrom: ['10.1.2.3/32'] }));
    expect(withAllow).toMatch(/^ENV MEMCACHED_ALLOW_FROM=10.1.2.3\/32$/m);
  });
});

describe('version quirks', () => {
  it("compiles the guard (the per-client cap) for every profile, with 1.4.25's fixes only where its quirks need them", () => {
    for (const name of listProfiles()) {
      const profile = loadProfile(name);
      const dockerfile = renderTemplate(template, profileValues(profile));
      expect(dockerfile).toContain('FROM os AS memcached-guard');
      expect(dockerfile).toContain('COPY --from=memcached-guard');
      const compile = dockerfile.split('\n').find((line) => line.startsWith('RUN gcc ')) ?? '';
      expect(compile.includes('-DREFUSE_SASL_STEP')).toBe(profile.memcached.saslStepWithoutStart === 'crashes');
      expect(compile.includes('-DFD_HEADROOM=')).toBe(profile.memcached.atConnectionLimit === 'stalls-a-worker');
      // The compiler stays in its own stage.
      const server = dockerfile.slice(dockerfile.indexOf('FROM os AS server'));
      expect(server).not.toMatch(/gcc/);
    }
    expect(guardDefines(loadProfile('ubuntu-16.04'))).toEqual(['-DREFUSE_SASL_STEP', '-DFD_HEADROOM=128']);
    expect(guardDefines(loadProfile('debian-12'))).toEqual([]);
  });

  it("gives the entrypoint the profile's capabilities and the same ranges and cap share the tests use", () => {
    const entrypointTemplate = readFileSync(projectPath('image-files/usr/local/bin/memcached-entrypoint'), 'utf8');
    for (const name of listProfiles()) {
      const profile = loadProfile(name);
      const entrypoint = renderTemplate(entrypointTemplate, profileValues(profile));
      expect(entrypoint).toContain(`PRIVATE_IPV4_RANGES='${PRIVATE_IPV4_RANGES.join(' ')}'`);
      expect(entrypoint).toMatch(new RegExp(`^PER_CLIENT_SHARE=${PER_CLIENT_SHARE}$`, 'm'));
      expect(entrypoint).toMatch(new RegExp(`^CAN_LISTEN_IPV6=${profile.memcached.ipv6Listen ? 'yes' : 'no'}$`, 'm'));
      expect(entrypoint).toMatch(new RegExp(`^CAN_IDLE_TIMEOUT=${profile.memcached.idleTimeout ? 'yes' : 'no'}$`, 'm'));
      expect(entrypoint).toContain(`profile ${profile.name}) has no idle timeout`);
    }
    expect(loadProfile('ubuntu-16.04').memcached.idleTimeout).toBe(false);
  });

  it("gives the entrypoint the profile's way to TLS and the secret's paths, and the health check the probe the tests send", () => {
    const [entrypointTemplate, healthcheckTemplate] = ['memcached-entrypoint', 'memcached-healthcheck'].map((f) => readFileSync(projectPath('image-files/usr/local/bin', f), 'utf8'));
    for (const name of listProfiles()) {
      const values = profileValues(loadProfile(name));
      const entrypoint = renderTemplate(entrypointTemplate!, values);
      expect(entrypoint).toMatch(new RegExp(`^TLS_VIA=${loadProfile(name).tls.via}$`, 'm'));
      expect(entrypoint).toMatch(new RegExp(`^TLS_MARKER=${TLS_MARKER}$`, 'm'));
      expect(entrypoint).toContain(`TLS_DEFAULT_CERT=${TLS_SECRET_DIR}/tls.crt`);
      expect(renderTemplate(healthcheckTemplate!, values)).toContain(`printf '${printfEscaped(tlsProbeHello())}' >&4`);
    }
    expect(loadProfile('debian-12').memcached.idleTimeout).toBe(true);
  });

  it('caps each client at an eighth of -c by default, never below one connection', () => {
    expect(defaultPerClientCap(1024)).toBe(128);
    expect(defaultPerClientCap(64)).toBe(8);
    expect(defaultPerClientCap(10)).toBe(1);
    expect(defaultPerClientCap(7)).toBe(1);
  });

  it('bakes the sasldb only with baked credentials, and ships saslpasswd2 only with runtime ones', () => {
    const profile = loadProfile('ubuntu-16.04');
    const baked = renderTemplate(template, profileValues(profile, { credentials: 'baked' }));
    const runtime = renderTemplate(template, profileValues(profile, { credentials: 'runtime' }));
    expect(baked).toContain('COPY --chown=memcache:memcache memcached-sasldb2');
    expect(runtime).not.toContain('memcached-sasldb2 /etc/sasl2');
    expect(runtime).toMatch(/apt-get install -y -qq [^\n]* sasl2-bin libcap2-bin/);
    expect(baked).not.toMatch(/apt-get install -y -qq memcached[^\n]*sasl2-bin/);
  });
});

describe('sasldbScript', () => {
  it('feeds passwords to saslpasswd2 through a pipe, keyed to the build realm', () => {
    const script = sasldbScript(BUILD_REALM);
    expect(script).toContain(`saslpasswd2 -p -c -a memcached -u ${BUILD_REALM}`);
    expect(script).toContain(`printf '%s' "\${line#*:}" |`);
  });
});

describe('ubuntu-16.04 profile', () => {
  it('requires the memcached with the 2016 SASL and UDP fixes and does not claim -X', () => {
    const profile = loadProfile('ubuntu-16.04');
    expect(profile.base.image).toBe('ubuntu:16.04');
    expect(profile.memcached.minVersion).toBe('1.4.25-2ubuntu1.5');
    expect(profile.apt.suites).toEqual(expect.arrayContaining(['xenial-updates', 'xenial-security']));
    expect(profile.memcached.supportedFlags).not.toContain('-X');
  });
});
