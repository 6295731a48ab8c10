import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../src/paths.js';
import { listProfiles, loadProfile } from '../src/profiles.js';
import { sasldbScript } from '../src/sasldb.js';
import { printfEscaped, TLS_MARKER, TLS_SECRET_DIR, tlsProbeHello } from '../src/tls.js';
import {
  BODYLEN_FIX_RELEASE,
  BUILD_REALM,
  defaultPerClientCap,
  guardDefines,
  imageValuesShell,
  PER_CLIENT_SHARE,
  placeholders,
  PRIVATE_IPV4_RANGES,
  profileValues,
  renderTemplate,
  shellQuoted,
  unusedValues,
  upstreamOlderThan,
} from '../src/render.js';

const template = readFileSync(projectPath('Dockerfile.template'), 'utf8');
const imageFiles = readdirSync(projectPath('image-files'), { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile())
  .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'));
/** The image's scripts: static shell, every one. */
const imageScripts = imageFiles.filter((text) => /^(#!\/bin\/(ba)?sh|# shellcheck shell=)/.test(text));

/** The variables a values.sh sets, as sh reads them back. */
function sourcedValues(text: string): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'mh-values-'));
  try {
    const file = join(dir, 'values.sh');
    writeFileSync(file, text);
    const names = [...text.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] as string);
    // NUL-separated name=value pairs: a value may hold any other byte.
    const script = '. "$1"; shift; for name do eval "value=\\${$name}"; printf \'%s=%s\\0\' "$name" "$value"; done';
    const out = execFileSync('/bin/sh', ['-c', script, 'sh', file, ...names], { encoding: 'utf8' });
    const pairs = out
      .split('\0')
      .slice(0, -1)
      .map((pair) => pair.split(/=(.*)/s));
    return Object.fromEntries(pairs.map(([name, value]) => [name, value]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('renderTemplate', () => {
  it('replaces placeholders and refuses missing ones', () => {
    expect(renderTemplate('FROM {{BASE}}', { BASE: 'x:1' })).toBe('FROM x:1');
    expect(() => renderTemplate('FROM {{BASE}}', {})).toThrow('no value for {{BASE}}');
    expect(() => renderTemplate('FROM {{base}}', {})).toThrow('malformed placeholder');
    expect(unusedValues({ A: '1', B: '2' }, ['{{A}}'])).toEqual(['B']);
  });
});

describe("values.sh, the image scripts' only generated shell", () => {
  it('quotes every value so that sh reads back exactly the text', () => {
    const hostile = `it's "$HOME" \`id\` $(id) \\ ${'\u00e9'}\n# not a comment`;
    expect(sourcedValues(`A=${shellQuoted(hostile)}\nB=${shellQuoted('')}\n`)).toEqual({ A: hostile, B: '' });
  });

  it.each(listProfiles())('sets for %s only names the static scripts read, and they hold no placeholder', (name) => {
    const values = sourcedValues(imageValuesShell(loadProfile(name)));
    expect(Object.keys(values).length).toBeGreaterThan(20);
    // $NAME, ${NAME...} or a bare NAME in $((...)).
    const use = (key: string) => new RegExp(`\\$\\{?${key}\\b|\\$\\(\\([^)]*\\b${key}\\b`);
    const read = (key: string) => imageScripts.some((text) => use(key).test(text));
    expect(Object.keys(values).filter((key) => !read(key))).toEqual([]);
    expect(imageScripts.length).toBeGreaterThanOrEqual(9);
    for (const text of imageScripts) expect(placeholders(text).size).toBe(0);
  });
});

describe.each(listProfiles())('profile %s', (name) => {
  const profile = loadProfile(name);
  const values = profileValues(profile);
  const dockerfile = renderTemplate(template, values);
  const memcachedConf = renderTemplate(readFileSync(projectPath('image-files/etc/memcached.conf'), 'utf8'), values);

  it('uses every value and leaves no placeholder', () => {
    // IMAGE_VALUES is values.sh itself, which renderFiles writes beside the image files.
    expect(unusedValues(values, [template, ...imageFiles, '{{IMAGE_VALUES}}'])).toEqual([]);
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

  it(
    'adds the TLS layer only with --tls: before the image files, ' +
      'its packages, the purge minus what TLS keeps, the marker',
    () => {
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
    },
  );

  it('bakes an allowlist only when asked', () => {
    expect(dockerfile).not.toMatch(/^ENV MEMCACHED_ALLOW_FROM/m);
    const withAllow = renderTemplate(template, profileValues(profile, { allowFrom: ['10.1.2.3/32'] }));
    expect(withAllow).toMatch(/^ENV MEMCACHED_ALLOW_FROM=10.1.2.3\/32$/m);
  });
});

describe('version quirks', () => {
  it(
    'compiles the guard (the per-client cap) for every profile, ' +
      "with 1.4.25's fixes only where its quirks need them",
    () => {
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
      const ubuntu = ['-DREFUSE_SASL_STEP', '-DFD_HEADROOM=128', '-DCHECK_BINARY_FRAMES'];
      expect(guardDefines(loadProfile('ubuntu-16.04'))).toEqual(ubuntu);
      // memcached's own TLS: the frames are followed in SSL_read's plaintext too.
      expect(guardDefines(loadProfile('debian-12'))).toEqual(['-DCHECK_BINARY_FRAMES', '-DCHECK_TLS_FRAMES']);
    },
  );

  it('compiles the frame check only for a memcached older than the bodylen fix', () => {
    const debian = loadProfile('debian-12');
    const fixed = { ...debian, memcached: { ...debian.memcached, minVersion: `1:${BODYLEN_FIX_RELEASE}-1` } };
    expect(guardDefines(fixed)).toEqual([]);
    expect(upstreamOlderThan('1.4.25-2ubuntu1.5', '1.6.42')).toBe(true);
    expect(upstreamOlderThan('1.6.41', '1.6.42')).toBe(true);
    expect(upstreamOlderThan('1.6.42', '1.6.42')).toBe(false);
    expect(upstreamOlderThan('1.10.0-1', '1.6.42')).toBe(false);
  });

  it(
    "gives the image's scripts the profile's abilities and " + 'TLS, and the ranges, cap share and probe the tests use',
    () => {
      for (const name of listProfiles()) {
        const profile = loadProfile(name);
        expect(sourcedValues(imageValuesShell(profile))).toMatchObject({
          PROFILE: name,
          PRIVATE_IPV4_RANGES: PRIVATE_IPV4_RANGES.join(' '),
          PER_CLIENT_SHARE: String(PER_CLIENT_SHARE),
          CAN_LISTEN_IPV6: profile.memcached.ipv6Listen ? 'yes' : 'no',
          CAN_IDLE_TIMEOUT: profile.memcached.idleTimeout ? 'yes' : 'no',
          TLS_VIA: profile.tls.via,
          TLS_MARKER,
          TLS_DEFAULT_CERT: `${TLS_SECRET_DIR}/tls.crt`,
          TLS_PROBE_HELLO: printfEscaped(tlsProbeHello()),
          BUILD_REALM,
        });
      }
      expect(loadProfile('ubuntu-16.04').memcached.idleTimeout).toBe(false);
      expect(loadProfile('debian-12').memcached.idleTimeout).toBe(true);
    },
  );

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
