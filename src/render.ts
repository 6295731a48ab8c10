import type { Profile } from './profiles.js';

/** memcached uses gethostname() as the SASL realm; the build keys users to this fixed realm and the
 * entrypoint re-keys them to the container's hostname at start. Letters only: it is used in sed. */
export const BUILD_REALM = 'memcachedbuildrealm';
/** The memcache user's fixed uid and gid. */
export const MEMCACHE_UID = 11211;

export type TemplateValues = Readonly<Record<string, string>>;

const PLACEHOLDER = /\{\{([A-Z0-9_]+)\}\}/g;

/** The placeholder names a template uses. */
export function placeholders(template: string): Set<string> {
  return new Set([...template.matchAll(PLACEHOLDER)].map((m) => m[1] as string));
}

/** Replaces every `{{NAME}}` in the template; a placeholder without a value is an error. */
export function renderTemplate(template: string, values: TemplateValues, name = 'template'): string {
  const output = template.replace(PLACEHOLDER, (_match, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`${name}: no value for {{${key}}}`);
    return value;
  });
  const leftover = output.match(/\{\{[^}]*\}\}/);
  if (leftover) throw new Error(`${name}: malformed placeholder ${leftover[0]}`);
  return output;
}

/** Values no template uses: the template and the profile have drifted apart. */
export function unusedValues(values: TemplateValues, templates: readonly string[]): string[] {
  const used = new Set(templates.flatMap((t) => [...placeholders(t)]));
  return Object.keys(values).filter((key) => !used.has(key));
}

export interface RenderOptions {
  /** Client CIDRs baked in as the image's default MEMCACHED_ALLOW_FROM. */
  readonly allowFrom?: readonly string[];
  /** Baked: the users' sasldb is in the image. Runtime: the container builds it at start from a secret. */
  readonly credentials?: 'baked' | 'runtime';
}

const BAKED_CREDENTIALS = `# Generated users, keyed to a fixed build realm; the entrypoint re-keys them to the container's hostname
# at start, because memcached uses gethostname() as the SASL realm.
COPY --chown=memcache:memcache memcached-sasldb2 /etc/sasl2/memcached-sasldb2`;
const RUNTIME_CREDENTIALS = `# Runtime credentials: no users in the image; the entrypoint builds the sasldb at start from a mounted
# users file or MEMCACHED_USERNAME + MEMCACHED_PASSWORD(_FILE), and refuses to start without them.`;

/** Where the guard for old memcached/SASL quirks lives in the image; the entrypoint preloads it if present. */
export const MEMCACHED_GUARD = '/usr/local/lib/memcached-hardened/memcached-guard.so';

const MEMCACHED_GUARD_STAGE = `# --- memcached-guard: compiled here so no compiler reaches the server image --------------------------------
FROM os AS memcached-guard
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq gcc libc6-dev >/dev/null && rm -rf /var/lib/apt/lists/*
COPY build-files/memcached-guard.c /build/
RUN gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o /build/memcached-guard.so /build/memcached-guard.c -ldl`;

/** True where the profile's memcached or SASL library needs the guard (see build-files/memcached-guard.c). */
export function needsGuard(profile: Profile): boolean {
  return profile.memcached.saslStepWithoutStart === 'crashes' || profile.memcached.atConnectionLimit === 'stalls-a-worker';
}

/** The values a profile gives the Dockerfile template and the image files. */
export function profileValues(profile: Profile, options: RenderOptions = {}): TemplateValues {
  const allowFrom = options.allowFrom ?? [];
  return {
    PROFILE: profile.name,
    BASE_IMAGE: profile.base.image,
    APT_SUITES: profile.apt.suites.join(' '),
    APT_COMPONENTS: profile.apt.components.join(' '),
    SERVER_PACKAGES: profile.packages.server.join(' '),
    TOOLS_PACKAGES: profile.packages.tools.join(' '),
    PURGE_PACKAGES: profile.packages.purgeAfterInstall.join(' ') || 'none',
    MEMCACHED_MIN_VERSION: profile.memcached.minVersion,
    IPTABLES_BINARY: profile.iptablesBinary,
    HARDENING_FLAGS: profile.memcached.hardeningFlags.join('\n'),
    BUILD_REALM,
    MEMCACHE_UID: String(MEMCACHE_UID),
    MEMCACHED_GUARD_PATH: MEMCACHED_GUARD,
    MEMCACHED_GUARD_STAGE: needsGuard(profile) ? MEMCACHED_GUARD_STAGE : "# (this profile's memcached needs no guard stage)",
    MEMCACHED_GUARD_COPY: needsGuard(profile)
      ? `# This memcached/SASL crashes on a SASL step without start and stalls at its fd limit: preloaded guard.\nCOPY --from=memcached-guard /build/memcached-guard.so ${MEMCACHED_GUARD}`
      : '# (no memcached guard needed)',
    CREDENTIALS: options.credentials === 'runtime' ? RUNTIME_CREDENTIALS : BAKED_CREDENTIALS,
    RUNTIME_CREDENTIAL_PACKAGES: options.credentials === 'runtime' ? 'sasl2-bin' : '',
    SERVER_ENV:
      allowFrom.length > 0
        ? `# Baked default allowlist: the container refuses to start without NET_ADMIN.\nENV MEMCACHED_ALLOW_FROM=${allowFrom.join(',')}`
        : '# No default allowlist baked in (set MEMCACHED_ALLOW_FROM at run time).',
  };
}
