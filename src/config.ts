import { parseArgs } from 'node:util';
import { badInput } from './errors.js';
import { formatImageReference, imageReferenceProblem, parseImageReference, tagOf } from './image-reference.js';
import { DEFAULT_PROFILE } from './profiles.js';

export type BuildTarget = 'server' | 'client';

/** Everything `build` needs to know, validated. */
export interface BuildConfig {
  readonly profile: string;
  readonly tag: string;
  readonly target: BuildTarget;
  readonly usersFile?: string;
  /** Baked: users in the image's sasldb. Runtime: the container builds its sasldb at start from a secret. */
  readonly credentials: 'baked' | 'runtime';
  /** TLS only: the certificate is mounted at run time (--tls). */
  readonly tls: boolean;
  readonly allowFrom: readonly string[];
  readonly aptMirror?: string;
  readonly noCache: boolean;
  readonly json: boolean;
  readonly sbomDir: string;
}

export const IMAGE_NAME = 'memcached-hardened';
export const CLIENT_IMAGE_NAME = 'memcached-hardened-client';

export function defaultTag(profile: string, target: BuildTarget): string {
  return `${target === 'client' ? CLIENT_IMAGE_NAME : IMAGE_NAME}:${profile}`;
}

/** Why a `NAME[:TAG]` image reference is invalid, or undefined. Digests are not accepted: we tag. */
export function imageTagProblem(tag: string): string | undefined {
  if (tag.length === 0) return 'tag is empty';
  if (tag.length > 255) return 'tag is longer than 255 characters';
  if (imageReferenceProblem(tag) !== undefined || tag.includes('@')) return `invalid image tag '${tag}' (expected name[:tag], lower-case name)`;
  return undefined;
}

/** Adds `:latest` where the reference has no tag, as docker does. */
export function withExplicitTag(reference: string): string {
  const parsed = parseImageReference(reference);
  return formatImageReference({ ...parsed, tag: tagOf(parsed) });
}

/** True for an IPv4 address or IPv4 CIDR (a.b.c.d or a.b.c.d/n). */
export function isIpv4Cidr(value: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(value);
  if (!match) return false;
  const octetsOk = match.slice(1, 5).every((o) => Number(o) <= 255);
  return octetsOk && (match[5] === undefined || Number(match[5]) <= 32);
}

/** Splits a comma-separated CIDR list and validates each entry. */
export function parseCidrList(value: string, option: string): string[] {
  const entries = value.split(',').map((s) => s.trim());
  if (entries.some((e) => e === '')) throw badInput(`${option}: empty entry in '${value}'`);
  const bad = entries.find((e) => !isIpv4Cidr(e));
  if (bad !== undefined) throw badInput(`${option}: '${bad}' is not an IPv4 address or CIDR`);
  return entries;
}

export const BUILD_USAGE = `Usage: npm run build -- [options]

Builds the hardened memcached image (or the test client image) for a profile in images/.

Options:
  --profile NAME       image profile (default: ${DEFAULT_PROFILE}; see images/)
  --tag NAME:TAG       tag for the image (default: ${IMAGE_NAME}:<profile>)
  --users-file FILE    SASL users, one user:password per line (# comments); passwords >= 12 characters;
                       - reads them from stdin.
                       Without it one user '${'app'}' gets a random password, saved to a new 0600 file.
  --runtime-credentials  no users in the image: the container builds its sasldb at start from a mounted
                       users file (/run/secrets/memcached_users or MEMCACHED_USERS_FILE) or
                       MEMCACHED_USERNAME + MEMCACHED_PASSWORD_FILE; it refuses to start without them
  --tls                TLS 1.2+ only (mutual with a CA file): the container refuses to start without a
                       certificate and key mounted at /run/secrets/memcached_tls (tls.crt, tls.key,
                       optional ca.crt) or named by MEMCACHED_TLS_*_FILE; default tag <profile>-tls
  --allow-from CIDRS   bake a default client allowlist (MEMCACHED_ALLOW_FROM), comma-separated
  --target T           server (default) or client (libmemcached-tools, for the tests' memcstat checks)
  --apt-mirror URL     apt mirror for the image's packages (default: the base image's own)
  --no-cache           rebuild every layer
  --json               print one JSON line with the result (progress still goes to stderr)
  --sbom-dir DIR       where the CycloneDX SBOM of the server image goes (default: ./sbom)
  -h, --help           show this help

Environment: DOCKER_HOST selects the engine; MEMCACHED_HARDENED_CACHE the bootstrap cache folder;
SOURCE_DATE_EPOCH dates the image's labels and a bootstrapped base (default: the last commit's time).
Exit codes: 0 built, 1 failure (engine, bootstrap, build), 2 bad input.`;

export const RELEASE_USAGE = `Usage: npm run release -- --tag REGISTRY/REPO:TAG [--profile P] [--users-file F | --runtime-credentials] [--json]

Builds the image, runs the verification suite against that exact image id, and pushes it only if the
suite passed; prints the pushed digest. Takes the build's options (npm run build -- --help).
Registry credentials: REGISTRY_USERNAME + REGISTRY_PASSWORD, else the Docker config's credHelpers/credsStore/auths.
Exit codes: 0 pushed, 1 failure (build, verification, push), 2 bad input.`;

/** Parses `build` (and `release`) arguments; `undefined` means help was asked for. */
export function parseBuildArgs(argv: readonly string[]): BuildConfig | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        profile: { type: 'string' },
        tag: { type: 'string' },
        target: { type: 'string' },
        'users-file': { type: 'string' },
        'runtime-credentials': { type: 'boolean' },
        tls: { type: 'boolean' },
        'sbom-dir': { type: 'string' },
        'allow-from': { type: 'string' },
        'apt-mirror': { type: 'string' },
        'no-cache': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw badInput(`${(error as Error).message.split('\n')[0]} (see --help)`);
  }
  const v = parsed.values;
  if (v.help) return undefined;
  const profile = v.profile ?? DEFAULT_PROFILE;
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(profile)) throw badInput(`unknown profile '${profile}'`);
  const target = v.target ?? 'server';
  if (target !== 'server' && target !== 'client') throw badInput(`--target must be server or client (got '${target}')`);
  if (v.tls && target !== 'server') throw badInput('--tls applies to the server image (--target server)');
  const tag = v.tag ?? `${defaultTag(profile, target)}${v.tls ? '-tls' : ''}`;
  const tagProblem = imageTagProblem(tag);
  if (tagProblem) throw badInput(`--tag: ${tagProblem}`);
  if (v['users-file'] !== undefined && v['users-file'] === '') throw badInput('--users-file: empty path');
  if (v['users-file'] !== undefined && v['runtime-credentials']) throw badInput('--users-file and --runtime-credentials exclude each other');
  if (v['sbom-dir'] === '') throw badInput('--sbom-dir: empty path');
  if (v['apt-mirror'] !== undefined && !/^(https?|file):\/\/[^\s'"\\]+$/.test(v['apt-mirror'])) {
    throw badInput(`--apt-mirror: expected an http(s):// or file:// URL`);
  }
  return {
    profile,
    tag: withExplicitTag(tag),
    target,
    usersFile: v['users-file'],
    credentials: v['runtime-credentials'] ? 'runtime' : 'baked',
    tls: v.tls ?? false,
    sbomDir: v['sbom-dir'] ?? 'sbom',
    allowFrom: v['allow-from'] === undefined ? [] : parseCidrList(v['allow-from'], '--allow-from'),
    aptMirror: v['apt-mirror'],
    noCache: v['no-cache'] ?? false,
    json: v.json ?? false,
  };
}
