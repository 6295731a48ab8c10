import { parseArgs, type ParseArgsConfig } from 'node:util';
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
  if (imageReferenceProblem(tag) !== undefined || tag.includes('@'))
    return `invalid image tag '${tag}' (expected name[:tag], lower-case name)`;
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

export const RELEASE_USAGE = `Usage: npm run release -- --tag REGISTRY/REPO:TAG [--profile P]
         [--users-file F | --runtime-credentials]
         (--signing-key FILE --passphrase-file FILE|- | --unsigned) [--gpg-sign-by FPR --lookaside DIR]
         [--mutation-result FILE] [--json]

Builds the image, runs the verification suite against that exact image id, and pushes it only if the
suite passed; prints the pushed digest. Takes the build's options (npm run build -- --help). Then signs
the pushed manifest digest cosign-style (REPO:sha256-<hex>.sig) and attests it (REPO:sha256-<hex>.att:
the CycloneDX SBOM, SLSA provenance v1, the verification report, the run's OpenVEX document and the
seccomp profile, as in-toto statements in DSSE envelopes signed with the same key): cosign verify --key
and verify-release check them.

Signing:
  --signing-key FILE     the cosign-format private key (keygen makes one)
  --passphrase-file F    its passphrase, from a file or - for stdin; never argv
  --unsigned             publish without a signature: must be asked for, and is said in the output
  --gpg-sign-by FPR      also write a containers simple signature (skopeo/podman/CRI-O, policy signedBy)
                         with this GPG key, through skopeo standalone-sign
  --lookaside DIR        where that signature goes (DIR/REPO@sha256=HEX/signature-N): publish DIR as the
                         registries.d lookaside
  --gpg-passphrase-file F  the GPG key's passphrase file, if it has one
  --mutation-result FILE the mutation check's result (npm run test:mutants -- --json-out FILE) of this
                         commit: the verification report carries it, and says whether the image it built
                         had the same build inputs as the released one
Registry credentials: REGISTRY_USERNAME + REGISTRY_PASSWORD, else the Docker config's credHelpers/credsStore/auths.
Exit codes: 0 pushed (and signed), 1 failure (build, verification, push, signing), 2 bad input.`;

const BUILD_OPTIONS = {
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
} as const;

const RELEASE_OPTIONS = {
  ...BUILD_OPTIONS,
  'signing-key': { type: 'string' },
  'passphrase-file': { type: 'string' },
  unsigned: { type: 'boolean' },
  'gpg-sign-by': { type: 'string' },
  'gpg-passphrase-file': { type: 'string' },
  lookaside: { type: 'string' },
  'mutation-result': { type: 'string' },
} as const;

/** parseArgs with one-line errors. */
function parseOptions<const T extends ParseArgsConfig>(config: T) {
  try {
    return parseArgs(config);
  } catch (error) {
    throw badInput(`${(error as Error).message.split('\n')[0]} (see --help)`);
  }
}

/** Parses `build` (and `release`) arguments; `undefined` means help was asked for. */
export function parseBuildArgs(argv: readonly string[]): BuildConfig | undefined {
  const v = parseOptions({ args: [...argv], strict: true, allowPositionals: false, options: BUILD_OPTIONS }).values;
  return v.help ? undefined : buildConfigOf(v);
}

type BuildValues = ReturnType<
  typeof parseArgs<{ strict: true; allowPositionals: false; options: typeof BUILD_OPTIONS }>
>['values'];

function buildConfigOf(v: BuildValues): BuildConfig {
  const profile = v.profile ?? DEFAULT_PROFILE;
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(profile)) throw badInput(`unknown profile '${profile}'`);
  const target = v.target ?? 'server';
  if (target !== 'server' && target !== 'client') throw badInput(`--target must be server or client (got '${target}')`);
  if (v.tls && target !== 'server') throw badInput('--tls applies to the server image (--target server)');
  const tag = v.tag ?? `${defaultTag(profile, target)}${v.tls ? '-tls' : ''}`;
  const tagProblem = imageTagProblem(tag);
  if (tagProblem) throw badInput(`--tag: ${tagProblem}`);
  if (v['users-file'] !== undefined && v['users-file'] === '') throw badInput('--users-file: empty path');
  if (v['users-file'] !== undefined && v['runtime-credentials'])
    throw badInput('--users-file and --runtime-credentials exclude each other');
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

/** How a release is signed: a cosign-format key (and optionally GPG simple signing too), or not at all. */
export type ReleaseSigning =
  | {
      readonly kind: 'key';
      readonly keyFile: string;
      /** A file, or '-' for stdin. */
      readonly passphraseFile: string;
      readonly gpg?: { readonly fingerprint: string; readonly lookaside: string; readonly passphraseFile?: string };
      /** The mutation check's JSON result, for the verification report. */
      readonly mutationResult?: string;
    }
  | { readonly kind: 'unsigned' };

export interface ReleaseConfig extends BuildConfig {
  readonly signing: ReleaseSigning;
}

/** Parses `release` arguments: the build's, and how to sign; `undefined` means help was asked for. */
export function parseReleaseArgs(argv: readonly string[]): ReleaseConfig | undefined {
  const v = parseOptions({ args: [...argv], strict: true, allowPositionals: false, options: RELEASE_OPTIONS }).values;
  if (v.help) return undefined;
  const build = buildConfigOf(v);
  const key = v['signing-key'];
  const passphrase = v['passphrase-file'];
  const mutationResult = v['mutation-result'];
  const signingOptions = [v['gpg-sign-by'], v.lookaside, v['gpg-passphrase-file'], mutationResult];
  if (v.unsigned) {
    if (key !== undefined || passphrase !== undefined || signingOptions.some((o) => o !== undefined)) {
      throw badInput('--unsigned excludes the signing options');
    }
    return { ...build, signing: { kind: 'unsigned' } };
  }
  if (key === undefined) {
    throw badInput(
      'release signs what it pushes: give --signing-key FILE --passphrase-file FILE (keygen makes them), or --unsigned',
    );
  }
  if (key === '') throw badInput('--signing-key: empty path');
  if (passphrase === undefined || passphrase === '') {
    throw badInput('--signing-key needs --passphrase-file FILE (or - for stdin)');
  }
  if (passphrase === '-' && build.usersFile === '-') {
    throw badInput('--passphrase-file - and --users-file - cannot both read stdin');
  }
  if ((v['gpg-sign-by'] === undefined) !== (v.lookaside === undefined)) {
    throw badInput('--gpg-sign-by and --lookaside go together');
  }
  if (v['gpg-passphrase-file'] !== undefined && v['gpg-sign-by'] === undefined) {
    throw badInput('--gpg-passphrase-file needs --gpg-sign-by');
  }
  if (v['gpg-passphrase-file'] === '-') throw badInput('--gpg-passphrase-file: a file (skopeo reads it), not stdin');
  if (v.lookaside === '') throw badInput('--lookaside: empty path');
  if (mutationResult === '') throw badInput('--mutation-result: empty path');
  const fingerprint = v['gpg-sign-by'];
  if (fingerprint !== undefined && !/^(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/.test(fingerprint)) {
    throw badInput(`--gpg-sign-by: '${fingerprint}' is not a GPG key id or fingerprint (16, 40 or 64 hex digits)`);
  }
  const gpgPassphrase = v['gpg-passphrase-file'];
  const gpg =
    fingerprint !== undefined && v.lookaside !== undefined
      ? { fingerprint, lookaside: v.lookaside, ...(gpgPassphrase ? { passphraseFile: gpgPassphrase } : {}) }
      : undefined;
  const signing = { kind: 'key', keyFile: key, passphraseFile: passphrase } as const;
  return { ...build, signing: { ...signing, ...(gpg ? { gpg } : {}), ...(mutationResult ? { mutationResult } : {}) } };
}

export const KEYGEN_USAGE = `Usage: memcached-hardened keygen --out DIR --passphrase-file FILE|- [--json]

Makes the release signing key pair: DIR/signing.key, an ECDSA P-256 key encrypted with the passphrase in
cosign's format (scrypt + NaCl secretbox, PEM type ENCRYPTED SIGSTORE PRIVATE KEY; cosign takes it), mode
0600, and DIR/signing.pub (PEM) for consumers. Never overwrites a key.

Options:
  --out DIR              where the two files go (created 0700 if missing)
  --passphrase-file F    the passphrase, from a file or - for stdin (one trailing newline dropped); never argv
  --json                 print one JSON line naming the files
  -h, --help             show this help
Exit codes: 0 written, 1 failure, 2 bad input.`;

export interface KeygenConfig {
  readonly out: string;
  readonly passphraseFile: string;
  readonly json: boolean;
}

export function parseKeygenArgs(argv: readonly string[]): KeygenConfig | undefined {
  const v = parseOptions({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      out: { type: 'string' },
      'passphrase-file': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
  if (v.help) return undefined;
  if (!v.out) throw badInput('keygen needs --out DIR');
  if (!v['passphrase-file']) {
    throw badInput('keygen needs --passphrase-file FILE (or - for stdin): a passphrase never goes on the command line');
  }
  return { out: v.out, passphraseFile: v['passphrase-file'], json: v.json ?? false };
}

export const VERIFY_RELEASE_USAGE = `Usage: memcached-hardened verify-release REGISTRY/REPO:TAG|REGISTRY/REPO@sha256:…
         --key signing.pub [--json]

Checks a release as a consumer would, against the manifest digest the reference names: the cosign
signature (REPO:sha256-<hex>.sig) by the key, naming this repository and digest, and every attestation
(REPO:sha256-<hex>.att: DSSE envelopes of in-toto statements) signed by the key and about this digest,
with the CycloneDX SBOM, the SLSA provenance, a PASSED verification report, the OpenVEX document and the
seccomp profile among them. Prints what was attested (checks passed, the mutation check, SBOM package
count, VEX statements by status, system calls the seccomp profile allows, source commit, base image).
Registry credentials as for release. Exit codes: 0 all hold, 1 something does not, 2 bad input.`;

export interface VerifyReleaseConfig {
  readonly reference: string;
  readonly keyFile: string;
  readonly json: boolean;
}

export function parseVerifyReleaseArgs(argv: readonly string[]): VerifyReleaseConfig | undefined {
  const { values: v, positionals } = parseOptions({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: { key: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (v.help) return undefined;
  if (positionals.length !== 1) throw badInput('verify-release takes one image reference (see --help)');
  if (!v.key) throw badInput('verify-release needs --key signing.pub');
  return { reference: positionals[0]!, keyFile: v.key, json: v.json ?? false };
}
