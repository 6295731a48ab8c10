import { credentialRuleValues } from './credentials.js';
import type { Profile } from './profiles.js';
import { printfEscaped, TLS_MARKER, TLS_SECRET_DIR, TLS_SECRET_FILES, tlsProbeHello } from './tls.js';

/** The sasldb's name in the build context (added from memory, never written to disk). */
export const SASLDB_ENTRY = 'memcached-sasldb2';

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
  /** TLS only, with a certificate mounted at run time (see tlsLayer). */
  readonly tls?: boolean;
}

/** Where a baked image carries its sasldb (keyed to BUILD_REALM). */
export const BAKED_SASLDB_PATH = '/etc/sasl2/memcached-sasldb2';

const BAKED_CREDENTIALS = [
  "# Generated users, keyed to a fixed build realm; the entrypoint re-keys them to the container's hostname",
  '# at start, because memcached uses gethostname() as the SASL realm.',
  `COPY --chown=memcache:memcache ${SASLDB_ENTRY} ${BAKED_SASLDB_PATH}`,
].join('\n');
const RUNTIME_CREDENTIALS = [
  '# Runtime credentials: no users in the image; the entrypoint builds the sasldb at start from a mounted',
  '# users file or MEMCACHED_USERNAME + MEMCACHED_PASSWORD(_FILE), and refuses to start without them.',
].join('\n');

/** The image's own scripts: the entrypoint's phases, the users-file rules and the generated values. */
export const IMAGE_LIB_DIR = '/usr/local/lib/memcached-hardened';
/** The users-file rules of src/credentials.ts in shell, which the entrypoint sources. */
export const CREDENTIAL_RULES_PATH = `${IMAGE_LIB_DIR}/credential-rules.sh`;
/** The image's one generated shell file: the profile's values, sourced by its static scripts. */
export const IMAGE_VALUES_PATH = `${IMAGE_LIB_DIR}/values.sh`;

/** Where the preloaded guard lives in the image (see build-files/memcached-guard.c); every profile has one. */
export const MEMCACHED_GUARD = '/usr/local/lib/memcached-hardened/memcached-guard.so';

/** Address ranges the default listen address is chosen from: RFC 1918 and RFC 6598 (shared address
 * space, which some clouds and Kubernetes networks hand out). Anything else is never chosen by default. */
export const PRIVATE_IPV4_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'] as const;

/** Default per-client connection cap: this fraction of -c (1/8: 128 of the default 1024), at least 1. */
export const PER_CLIENT_SHARE = 8;

/** The per-client cap a container gets when MEMCACHED_MAX_CONNECTIONS_PER_CLIENT is not set. */
export function defaultPerClientCap(maxConnections: number): number {
  return Math.max(1, Math.floor(maxConnections / PER_CLIENT_SHARE));
}

/** The upstream release that reads a binary body length above 2^31 as unsigned (commit 229cf41be). */
export const BODYLEN_FIX_RELEASE = '1.6.42';

/** True when a Debian version's upstream part (no epoch, no revision) is older than `release` (x.y.z). */
export function upstreamOlderThan(version: string, release: string): boolean {
  const numbers = (v: string) =>
    (v.replace(/^\d+:/, '').split('-')[0] ?? '').split('.').map((n) => parseInt(n, 10) || 0);
  const [a, b] = [numbers(version), numbers(release)];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  }
  return false;
}

/** The guard's compile-time switches: its version-specific parts are compiled in only where the profile needs them. */
export function guardDefines(profile: Profile): string[] {
  // The frame check wherever the profile may ship a memcached without the bodylen fix; on the plaintext
  // SSL_read returns too where memcached does TLS itself (behind stunnel it reads plaintext with read()).
  const frames = upstreamOlderThan(profile.memcached.minVersion, BODYLEN_FIX_RELEASE);
  return [
    ...(profile.memcached.saslStepWithoutStart === 'crashes' ? ['-DREFUSE_SASL_STEP'] : []),
    ...(profile.memcached.atConnectionLimit === 'stalls-a-worker' ? ['-DFD_HEADROOM=128'] : []),
    ...(frames ? ['-DCHECK_BINARY_FRAMES'] : []),
    ...(frames && profile.tls.via === 'memcached' ? ['-DCHECK_TLS_FRAMES'] : []),
  ];
}

const yesNo = (value: boolean) => (value ? 'yes' : 'no');

/**
 * Essential packages no server image keeps: the Perl interpreter every Debian and Ubuntu base carries
 * (an interpreter serves an attacker, not memcached). dpkg removes an Essential package only when forced to.
 */
export const PURGED_ESSENTIAL = ['perl-base'] as const;

/**
 * Shell that purges packages as dpkg --force-depends (what serves no purpose in the server image), then
 * the Essential ones of PURGED_ESSENTIAL (--force-remove-essential: listed here, never by a profile).
 */
function purgeScript(packages: readonly string[]): string {
  return [
    `for package in ${packages.join(' ') || 'none'}; do \\`,
    '      if [ "$package" != none ]; then dpkg --purge --force-depends "$package" >/dev/null 2>&1; fi; \\',
    '    done; \\',
    `    dpkg --purge --force-depends --force-remove-essential ${PURGED_ESSENTIAL.join(' ')} >/dev/null 2>&1`,
  ].join('\n');
}

/** The one file capability the image carries, on the profile's iptables binary (the allowlist needs it). */
export function iptablesFileCapabilities(profile: Profile): string {
  return `${profile.allowlistCapabilities.map((name) => `cap_${name.toLowerCase()}`).join(',')}+ep`;
}

/**
 * Shell that leaves exactly one file capability in the image: iptablesFileCapabilities on the profile's
 * iptables binary (`grant`: set it here). Every other file capability, whatever package brought it
 * (systemd-detect-virt's cap_dac_override,cap_sys_ptrace on Ubuntu 16.04, say), is removed, and then
 * libcap2-bin (getcap, setcap) is purged as --force-depends (systemd on 16.04 and iproute2 on 12 depend on
 * it, to set capabilities of their own from their maintainer scripts): the tools that grant capabilities
 * do not stay either.
 */
function fileCapabilitiesScript(profile: Profile, grant: boolean): string {
  // getcap prints `<path> = <capabilities>` (libcap 2.24) or `<path> <capabilities>` (2.66): the text after
  // the path has a space and no slash.
  const capable = "find / -xdev -type f -exec getcap {} + | sed 's| [^/]*$||'";
  return [
    `iptables="$(readlink -f ${profile.iptablesBinary})"; \\`,
    `    ${capable} | while IFS= read -r file; do \\`,
    '      if [ "$file" != "$iptables" ]; then setcap -r "$file"; fi; \\',
    '    done; \\',
    ...(grant ? [`    setcap ${iptablesFileCapabilities(profile)} "$iptables"; \\`] : []),
    `    capable="$(${capable})"; \\`,
    '    if [ "$capable" != "$iptables" ]; then \\',
    '      echo "file capabilities on: $capable (only $iptables should have any)" >&2; exit 1; \\',
    '    fi; \\',
    '    dpkg --purge --force-depends libcap2-bin >/dev/null 2>&1',
  ].join('\n');
}

/** Shell that leaves no apt lists, caches or logs, and no setuid/setgid file, in a server layer. */
const CLEAN_UP = [
  'apt-get clean; \\',
  '    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old ' +
    '/var/log/apt /var/log/dpkg.log /var/log/alternatives.log; \\',
  '    find / -xdev -type f -perm /6000 -exec chmod ug-s {} +',
].join('\n');

/**
 * The layer `--tls` adds to the server image (as root): the profile's TLS packages and the marker that
 * makes the entrypoint require a certificate. The server layer purged packages with --force-depends (and
 * perl-base, Essential, with --force-remove-essential), so apt first puts them back (-f) before it installs
 * anything, and they are purged again after. libcap2-bin comes back for as long as it takes to remove any
 * file capability the TLS packages bring. The tests append the same layer to an image under test that was
 * built without it.
 */
export function tlsLayer(profile: Profile): string {
  const how =
    profile.tls.via === 'memcached'
      ? "memcached's own TLS (-Z)"
      : `a ${profile.tls.via} front on the listen address, memcached on loopback`;
  const purged = profile.packages.purgeAfterInstall.filter((name) => !profile.tls.keepInstalled.includes(name));
  return [
    `# TLS (--tls): ${how}; openssl checks the mounted certificate and key at start.`,
    'RUN set -eu; \\',
    '    apt-get update -qq; \\',
    '    apt-get install -f -y -qq >/dev/null; \\',
    `    apt-get install -y -qq ${profile.tls.packages.join(' ')} >/dev/null; \\`,
    '    apt-get install -y -qq libcap2-bin >/dev/null; \\',
    `    ${purgeScript(purged)}; \\`,
    `    ${fileCapabilitiesScript(profile, false)}; \\`,
    `    ${CLEAN_UP}; \\`,
    "    echo '# Written by the --tls build: memcached serves only TLS and refuses to start without a certificate.' " +
      `> ${TLS_MARKER}`,
  ].join('\n');
}

/** A shell word that is `text` exactly: single quotes, each ' as '\''. */
export const shellQuoted = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/**
 * values.sh: the profile's values as `NAME='value'` lines, for the image's static scripts (the entrypoint,
 * its phases, the health check and the users-file rules), which source it, so the shell and the TypeScript
 * share one value each.
 */
export function imageValuesShell(profile: Profile): string {
  const values: Record<string, string> = {
    PROFILE: profile.name,
    BAKED_SASLDB: BAKED_SASLDB_PATH,
    BUILD_REALM,
    MEMCACHED_GUARD,
    // The only ranges a default listen address comes from.
    PRIVATE_IPV4_RANGES: PRIVATE_IPV4_RANGES.join(' '),
    // Default per-client cap: -c divided by this.
    PER_CLIENT_SHARE: String(PER_CLIENT_SHARE),
    // What this profile's memcached can do: bind one IPv6 address, -o idle_timeout.
    CAN_LISTEN_IPV6: yesNo(profile.memcached.ipv6Listen),
    CAN_IDLE_TIMEOUT: yesNo(profile.memcached.idleTimeout),
    // What the allowlist asks of `docker run` (its iptables' file capabilities), for the refusal without them.
    ALLOWLIST_CAP_ADD: profile.allowlistCapabilities.map((name) => `--cap-add ${name}`).join(' '),
    // TLS (images built with --tls, whose TLS layer writes the marker): memcached's own (-Z) or a front, and
    // where the certificate secret is mounted by default (Kubernetes TLS secret key names).
    TLS_VIA: profile.tls.via,
    TLS_MARKER,
    TLS_SECRET: TLS_SECRET_DIR,
    TLS_DEFAULT_CERT: `${TLS_SECRET_DIR}/${TLS_SECRET_FILES.certificate}`,
    TLS_DEFAULT_KEY: `${TLS_SECRET_DIR}/${TLS_SECRET_FILES.key}`,
    TLS_DEFAULT_CA: `${TLS_SECRET_DIR}/${TLS_SECRET_FILES.ca}`,
    // The health check's TLS 1.2 ClientHello, as printf escapes.
    TLS_PROBE_HELLO: printfEscaped(tlsProbeHello()),
    // The users-file rules' limits and words (src/credentials.ts).
    ...credentialRuleValues(),
  };
  return [
    '# shellcheck shell=sh',
    `# Generated by memcached-hardened (src/render.ts) from the profile "${profile.name}": the image's only`,
    '# generated shell, sourced by its static scripts. Do not edit.',
    '# shellcheck disable=SC2034 # every name here is read by the scripts that source this file',
    ...Object.entries(values).map(([name, value]) => `${name}=${shellQuoted(value)}`),
    '',
  ].join('\n');
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
    PURGE: purgeScript(profile.packages.purgeAfterInstall),
    CLEAN_UP,
    TLS_LAYER: options.tls ? tlsLayer(profile) : '# No TLS layer (--tls adds one).',
    MEMCACHED_MIN_VERSION: profile.memcached.minVersion,
    FILE_CAPABILITIES: fileCapabilitiesScript(profile, true),
    HARDENING_FLAGS: profile.memcached.hardeningFlags.join('\n'),
    MEMCACHE_UID: String(MEMCACHE_UID),
    MEMCACHED_GUARD_PATH: MEMCACHED_GUARD,
    IMAGE_VALUES: imageValuesShell(profile),
    MEMCACHED_GUARD_DEFINES: guardDefines(profile).join(' '),
    CREDENTIALS: options.credentials === 'runtime' ? RUNTIME_CREDENTIALS : BAKED_CREDENTIALS,
    RUNTIME_CREDENTIAL_PACKAGES: options.credentials === 'runtime' ? 'sasl2-bin' : '',
    SERVER_ENV:
      allowFrom.length > 0
        ? '# Baked default allowlist: the container refuses to start without NET_ADMIN.\n' +
          `ENV MEMCACHED_ALLOW_FROM=${allowFrom.join(',')}`
        : '# No default allowlist baked in (set MEMCACHED_ALLOW_FROM at run time).',
  };
}
