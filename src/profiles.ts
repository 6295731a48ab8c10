import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { badInput } from './errors.js';
import { projectPath } from './paths.js';
import { boolean, list, object, oneOf, ShapeError, string } from './shape.js';

const MEMCACHED_FLAGS = ['-F', '-X', '-Y', '-Z'] as const;
type MemcachedFlag = (typeof MEMCACHED_FLAGS)[number];

/** What a profile in images/ says: the base, how to bootstrap it, its packages and memcached's quirks. */
export interface Profile {
  name: string;
  description: string;
  base: {
    image: string;
    bootstrap: { suite: string; variant: 'minbase'; keyring: string };
  };
  apt: { suites: string[]; components: string[] };
  packages: {
    server: string[];
    tools: string[];
    /** Pulled in but not needed to serve (Perl for memcached-tool, OpenSSL for SASL mechanisms we delete). */
    purgeAfterInstall: string[];
  };
  memcached: {
    minVersion: string;
    supportedFlags: MemcachedFlag[];
    hardeningFlags: MemcachedFlag[];
    /** What this version does with UDP and SASL both on: 1.4.25 answers UDP without authentication. */
    udpWithSasl: 'answers-unauthenticated' | 'refused-at-start';
    /** What its Cyrus SASL does with a SASL step no start preceded: 2.1.26 crashes memcached. */
    saslStepWithoutStart: 'crashes' | 'refused';
    /** At -c, 1.4.25 runs out of descriptors before it can refuse politely and a worker stops serving. */
    atConnectionLimit: 'stalls-a-worker' | 'refuses-new-connections';
    /** Whether `-l [addr]` binds one IPv6 address (server_sockets of 1.4.25 and 1.6.18 both parse brackets). */
    ipv6Listen: boolean;
    /** Whether `-o idle_timeout=SECONDS` exists (not in 1.4.25). */
    idleTimeout: boolean;
  };
  /** How `--tls` images speak TLS: memcached itself (>= 1.5.13 built with TLS, -Z) or a TLS front from
   * the profile's archive (memcached behind it on loopback). `packages` are installed by the TLS layer
   * (with the openssl command, which checks the mounted certificate at start); `keepInstalled` are
   * purgeAfterInstall packages the TLS ones need. `versions`: the TLS versions its port offers, exactly
   * (what the profile's OpenSSL has of TLS 1.2 and 1.3; the TLS policy scan holds the port to it). */
  tls: {
    versions: Array<'TLSv1.2' | 'TLSv1.3'>;
    via: 'memcached' | 'stunnel';
    packages: string[];
    keepInstalled: string[];
  };
  iptablesBinary: string;
  /**
   * What the allowlist's iptables needs, as its file capabilities and as the container's --cap-add: NET_ADMIN,
   * and NET_RAW where the iptables is the legacy one (it opens a raw socket; the nft one speaks netlink only).
   */
  allowlistCapabilities: Array<'NET_ADMIN' | 'NET_RAW'>;
}

const aptName = string(/^[a-z0-9][a-z0-9.+-]*$/, 'must be a Debian package or suite name');
const aptNames = list(aptName, { nonEmpty: true });
const memcachedFlags = list(oneOf(MEMCACHED_FLAGS));

/** The shape of a `Profile`, field by field; unknown keys are refused at every level. */
const profileShape = object<Profile>({
  name: string(
    /^[a-z0-9][a-z0-9.-]*$/,
    "must be lower-case letters, digits, '.' and '-', starting with a letter or digit",
  ),
  description: string(/./s, 'must be a non-empty string'),
  base: object<Profile['base']>({
    image: string(/^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$/, 'must be NAME:TAG'),
    bootstrap: object<Profile['base']['bootstrap']>({
      suite: aptName,
      variant: oneOf(['minbase']),
      keyring: string(/^[a-z0-9.-]+\.gpg$/, 'must be a keyring file name ending in .gpg'),
    }),
  }),
  apt: object<Profile['apt']>({ suites: aptNames, components: aptNames }),
  packages: object<Profile['packages']>({ server: aptNames, tools: aptNames, purgeAfterInstall: list(aptName) }),
  memcached: object<Profile['memcached']>({
    minVersion: string(/^[0-9][A-Za-z0-9.+~:-]*$/, 'must be a Debian version starting with a digit'),
    supportedFlags: memcachedFlags,
    hardeningFlags: memcachedFlags,
    udpWithSasl: oneOf(['answers-unauthenticated', 'refused-at-start']),
    saslStepWithoutStart: oneOf(['crashes', 'refused']),
    atConnectionLimit: oneOf(['stalls-a-worker', 'refuses-new-connections']),
    ipv6Listen: boolean,
    idleTimeout: boolean,
  }),
  tls: object<Profile['tls']>({
    versions: list(oneOf(['TLSv1.2', 'TLSv1.3'] as const), { nonEmpty: true }),
    via: oneOf(['memcached', 'stunnel']),
    packages: aptNames,
    keepInstalled: list(aptName),
  }),
  iptablesBinary: string(/^\/[A-Za-z0-9/._-]+$/, "must be an absolute path of letters, digits and '/._-'"),
  allowlistCapabilities: list(oneOf(['NET_ADMIN', 'NET_RAW'] as const), { nonEmpty: true }),
});

/** Rules across fields, checked in order once the shape holds; the first broken one is reported. */
const crossFieldRules: readonly [holds: (p: Profile) => boolean, message: string][] = [
  [
    (p) => p.memcached.hardeningFlags.every((f) => p.memcached.supportedFlags.includes(f)),
    'hardeningFlags must all be in supportedFlags (this memcached version lacks one)',
  ],
  [(p) => p.packages.server.includes('memcached'), 'server packages must include memcached'],
  [(p) => p.allowlistCapabilities.includes('NET_ADMIN'), 'allowlistCapabilities must include NET_ADMIN'],
  [
    (p) => !p.packages.purgeAfterInstall.some((name) => p.packages.server.includes(name)),
    'purgeAfterInstall must not remove a server package',
  ],
  [
    (p) => p.tls.via !== 'memcached' || p.memcached.supportedFlags.includes('-Z'),
    'tls.via memcached needs a memcached built with TLS (-Z in supportedFlags)',
  ],
  [
    (p) =>
      p.tls.packages.includes('openssl') &&
      p.tls.keepInstalled.every((name) => p.packages.purgeAfterInstall.includes(name)),
    'tls.packages must include openssl (the start-up certificate check) ' +
      'and tls.keepInstalled must name purgeAfterInstall packages',
  ],
];

export const DEFAULT_PROFILE = 'ubuntu-16.04';

/** Names of the profiles shipped in images/. */
export function listProfiles(dir = projectPath('images')): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Validates a parsed profile; `source` names it in the error. */
export function parseProfile(data: unknown, source: string): Profile {
  let profile: Profile;
  try {
    profile = profileShape(data, []);
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    const where = error.path.length > 0 ? ` at ${error.path.join('.')}` : '';
    throw badInput(`profile ${source} is invalid${where}: ${error.problem}`);
  }
  const broken = crossFieldRules.find(([holds]) => !holds(profile));
  if (broken) throw badInput(`profile ${source} is invalid: ${broken[1]}`);
  return profile;
}

export function loadProfile(name: string, dir = projectPath('images')): Profile {
  const known = listProfiles(dir);
  if (!known.includes(name)) {
    throw badInput(`unknown profile '${name}' (known: ${known.join(', ')})`);
  }
  const file = join(dir, `${name}.json`);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw badInput(`profile ${file} is not valid JSON: ${(error as Error).message}`);
  }
  const profile = parseProfile(data, file);
  if (profile.name !== name) throw badInput(`profile ${file} names itself '${profile.name}'`);
  return profile;
}
