import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyObject } from 'node:crypto';
import { projectPath } from '../../src/paths.js';
import { releaseStatements } from '../../src/signing/attestations.js';
import { cosignTag, publishAttestations, publishSignature } from '../../src/signing/cosign.js';
import { vexProduct } from '../../src/signing/evidence.js';
import { gpgSign } from '../../src/signing/gpg.js';
import { decryptPrivateKey } from '../../src/signing/key.js';
import { pae, PREDICATE_OPENVEX, PREDICATE_SECCOMP } from '../../src/signing/payloads.js';
import { allowedSyscalls, REQUIRED_PREDICATES } from '../../src/signing/verify-release.js';
import { OCI_MANIFEST, RegistryClient } from '../../src/signing/registry.js';
import { ensureHostTool } from '../helpers/host-tools.js';
import { REGISTRY_BINARY, startRegistry, type Registry } from './registry.js';

/**
 * Signing and attesting against a loopback registry, judged by verifiers that are not this project's
 * code: openssl over the exact signed bytes, and Debian's skopeo with the shipped policy. No image is
 * built here (release.test.ts does the whole flow): small images are pushed straight to the registry.
 */
const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'mh-signing-'));
const cli = projectPath('bin/memcached-hardened');
const REPO = 'memcached-hardened';

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function exitOf(file: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  return run(file, args, { cwd: scratch, env, maxBuffer: 16 * 1024 * 1024 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );
}

/** Pushes a one-layer image whose config carries `variant`; returns its manifest digest. */
async function pushImage(client: RegistryClient, tag: string, variant: string): Promise<string> {
  const layer = gzipSync(Buffer.alloc(1024));
  const layerBlob = await client.putBlob(layer, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const diffId = `sha256:${createHash('sha256').update(Buffer.alloc(1024)).digest('hex')}`;
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { variant } },
      rootfs: { type: 'layers', diff_ids: [diffId] },
    }),
  );
  const configBlob = await client.putBlob(config, 'application/vnd.oci.image.config.v1+json');
  return client.putManifest(tag, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: configBlob,
    layers: [layerBlob],
  });
}

async function opensslVerifies(publicKey: string, signature: Buffer, bytes: Buffer): Promise<boolean> {
  const dir = mkdtempSync(join(scratch, 'openssl-'));
  writeFileSync(join(dir, 'sig'), signature);
  writeFileSync(join(dir, 'data'), bytes);
  const result = await exitOf('openssl', [
    'dgst',
    '-sha256',
    '-verify',
    publicKey,
    '-signature',
    join(dir, 'sig'),
    join(dir, 'data'),
  ]);
  return result.code === 0 && result.stdout.includes('Verified OK');
}

const flipped = (bytes: Buffer, at = Math.floor(bytes.length / 2)) => {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
};

interface Layer {
  digest: string;
  mediaType: string;
  annotations?: Record<string, string>;
}

async function layersOf(registry: Registry, tag: string): Promise<Layer[]> {
  const response = await fetch(`http://${registry.address}/v2/${REPO}/manifests/${tag}`, {
    headers: { Accept: OCI_MANIFEST },
  });
  expect(response.status, tag).toBe(200);
  return ((await response.json()) as { layers: Layer[] }).layers;
}

async function blob(registry: Registry, digest: string): Promise<Buffer> {
  return Buffer.from(await (await fetch(`http://${registry.address}/v2/${REPO}/blobs/${digest}`)).arrayBuffer());
}

const imageId = `sha256:${'56'.repeat(32)}`;
const seccompBytes = readFileSync(projectPath('seccomp', 'ubuntu-16.04.json'));

/** Every statement a release makes (releaseStatements: a new type is covered here without a change). */
function statementsAbout(repository: string, digest: string, types: readonly string[] = REQUIRED_PREDICATES) {
  const vex = {
    '@context': 'https://openvex.dev/ns/v0.2.0',
    statements: ['not_affected', 'affected'].map((status) => ({ products: [{ '@id': vexProduct(imageId) }], status })),
  };
  return releaseStatements(
    repository,
    digest,
    {
      sbom: { bomFormat: 'CycloneDX', specVersion: '1.5', components: [{ name: 'memcached' }] },
      vex,
      seccomp: { file: 'seccomp/ubuntu-16.04.json', bytes: seccompBytes },
    },
    {
      sourceCommit: 'c0ffee',
      profile: 'ubuntu-16.04',
      target: 'server',
      credentials: 'baked',
      tls: false,
      allowFrom: [],
      buildArgs: {},
      baseImage: { name: 'ubuntu:16.04', id: `sha256:${'34'.repeat(32)}`, source: 'bootstrapped' },
      builderVersion: '0.0.0',
      imageId,
      startedOn: new Date(0),
      finishedOn: new Date(1000),
    },
    {
      imageId,
      profile: 'ubuntu-16.04',
      credentials: 'baked',
      tls: false,
      suiteCommit: 'c0ffee',
      files: ['test/integration/smoke.test.ts'],
      checks: [{ file: 'test/integration/smoke.test.ts', name: 'a > b', status: 'passed' }],
      mutationCheck: 'not run',
    },
  ).filter((s) => types.includes(s.predicateType));
}

async function signAndAttest(
  client: RegistryClient,
  repository: string,
  digest: string,
  key: KeyObject,
  types?: readonly string[],
) {
  await publishSignature(client, repository, digest, key);
  await publishAttestations(client, digest, statementsAbout(repository, digest, types), key);
}

describe('cosign signature and attestations on a loopback registry, checked by openssl and verify-release', () => {
  let registry: Registry;
  let client: RegistryClient;
  let digest: string;
  let key: KeyObject;
  const keys = join(scratch, 'keys');
  const passphraseFile = join(scratch, 'passphrase');
  const otherPub = join(scratch, 'other.pub');

  beforeAll(async () => {
    await ensureHostTool(REGISTRY_BINARY, 'docker-registry');
    registry = await startRegistry(scratch, 'signing', false);
    client = new RegistryClient(registry.address, REPO);
    writeFileSync(passphraseFile, 'a passphrase for the release key\n', { mode: 0o600 });
    const keygen = await exitOf(cli, ['keygen', '--out', keys, '--passphrase-file', passphraseFile, '--json']);
    expect(keygen.code, keygen.stderr).toBe(0);
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(otherPub, other.publicKey.export({ type: 'spki', format: 'pem' }));
    digest = await pushImage(client, 'signed', 'one');
    key = decryptPrivateKey(
      readFileSync(join(keys, 'signing.key'), 'utf8'),
      Buffer.from('a passphrase for the release key'),
      'signing.key',
    );
    await signAndAttest(client, `${registry.address}/${REPO}`, digest, key);
  });

  afterAll(() => {
    registry?.process.kill();
  });

  it('keygen wrote a 0600 cosign-format key and a PEM public key openssl reads', async () => {
    const privateKey = readFileSync(join(keys, 'signing.key'), 'utf8');
    expect(privateKey).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    expect((await import('node:fs')).statSync(join(keys, 'signing.key')).mode & 0o777).toBe(0o600);
    const text = await exitOf('openssl', ['pkey', '-pubin', '-in', join(keys, 'signing.pub'), '-noout', '-text']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/prime256v1|P-256/);
    // The passphrase appears nowhere in the key file (it is encrypted, not stored).
    expect(privateKey).not.toContain('a passphrase');
  });

  it('the .sig payload names the repository and digest, and openssl verifies it with signing.pub only', async () => {
    const layers = await layersOf(registry, cosignTag(digest, 'sig'));
    expect(layers).toHaveLength(1);
    const [layer] = layers;
    expect(layer!.mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    const payload = await blob(registry, layer!.digest);
    const claims = JSON.parse(payload.toString()) as {
      critical: { identity: { 'docker-reference': string }; image: { 'docker-manifest-digest': string } };
    };
    expect(claims.critical.image['docker-manifest-digest']).toBe(digest);
    expect(claims.critical.identity['docker-reference']).toBe(`${registry.address}/${REPO}`);
    const signature = Buffer.from(layer!.annotations!['dev.cosignproject.cosign/signature']!, 'base64');
    const pub = join(keys, 'signing.pub');
    expect(await opensslVerifies(pub, signature, payload)).toBe(true);
    expect(await opensslVerifies(pub, signature, flipped(payload))).toBe(false);
    expect(await opensslVerifies(otherPub, signature, payload)).toBe(false);
  });

  it('every attestation is a DSSE envelope about this digest whose PAE openssl verifies; altered, not', async () => {
    const layers = await layersOf(registry, cosignTag(digest, 'att'));
    expect(layers.map((l) => l.annotations?.predicateType).sort()).toEqual([...REQUIRED_PREDICATES].sort());
    const pub = join(keys, 'signing.pub');
    for (const layer of layers) {
      expect(layer.mediaType).toBe('application/vnd.dsse.envelope.v1+json');
      const envelope = JSON.parse((await blob(registry, layer.digest)).toString()) as {
        payloadType: string;
        payload: string;
        signatures: { sig: string }[];
      };
      const payload = Buffer.from(envelope.payload, 'base64');
      const body = JSON.parse(payload.toString()) as { _type: string; subject: { digest: { sha256: string } }[] };
      expect(body._type).toBe('https://in-toto.io/Statement/v1');
      expect(`sha256:${body.subject[0]!.digest.sha256}`).toBe(digest);
      const signature = Buffer.from(envelope.signatures[0]!.sig, 'base64');
      const signed = pae(envelope.payloadType, payload);
      // PAE spelled out by hand here too, so the check does not rest on our own pae() alone.
      expect(signed.toString()).toBe(
        `DSSEv1 ${envelope.payloadType.length} ${envelope.payloadType} ${payload.length} ${payload.toString()}`,
      );
      expect(await opensslVerifies(pub, signature, signed)).toBe(true);
      expect(await opensslVerifies(pub, signature, pae(envelope.payloadType, flipped(payload)))).toBe(false);
      expect(await opensslVerifies(otherPub, signature, signed)).toBe(false);
    }
  });

  it('verify-release holds for the signed tag; not under another key, unsigned, or overwritten', async () => {
    const reference = `${registry.address}/${REPO}:signed`;
    const good = await exitOf(cli, ['verify-release', reference, '--key', join(keys, 'signing.pub'), '--json']);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    const verified = JSON.parse(good.stdout) as { ok: boolean; digest: string; attested: object };
    expect(verified).toMatchObject({
      ok: true,
      digest,
      attested: {
        sbomPackages: 1,
        sourceCommit: 'c0ffee',
        checksPassed: 1,
        vexStatements: 2,
        vexByStatus: { not_affected: 1, affected: 1 },
        seccompFile: 'seccomp/ubuntu-16.04.json',
        seccompAllowedSyscalls: allowedSyscalls(JSON.parse(seccompBytes.toString()) as never),
      },
    });
    const text = await exitOf(cli, [
      'verify-release',
      `${registry.address}/${REPO}@${digest}`,
      '--key',
      join(keys, 'signing.pub'),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/OK: signature and every attestation hold/);
    expect(text.stdout).toMatch(/^OpenVEX: 2 statements \(1 not_affected, 1 affected\)$/m);
    expect(text.stdout).toMatch(
      /^seccomp profile seccomp\/ubuntu-16\.04\.json: default SCMP_ACT_ERRNO, \d+ system calls allowed$/m,
    );
    expect(text.stdout).toMatch(/^mutation check: not run$/m);

    // Signed, and attested but for the VEX and the seccomp profile: each of them is required.
    for (const missing of [PREDICATE_OPENVEX, PREDICATE_SECCOMP]) {
      const tag = `partial-${missing.length}`;
      const partial = await pushImage(client, tag, missing);
      const types = REQUIRED_PREDICATES.filter((t) => t !== missing);
      await signAndAttest(client, `${registry.address}/${REPO}`, partial, key, types);
      const reference = `${registry.address}/${REPO}:${tag}`;
      const refused = await exitOf(cli, ['verify-release', reference, '--key', join(keys, 'signing.pub')]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`no verified attestation of ${missing}`);
    }

    const otherKey = await exitOf(cli, ['verify-release', reference, '--key', otherPub]);
    expect(otherKey.code).toBe(1);
    expect(otherKey.stderr.trim()).toMatch(/^memcached-hardened: verify-release: no signature by this key/);

    await pushImage(client, 'unsigned', 'two');
    const unsigned = await exitOf(cli, [
      'verify-release',
      `${registry.address}/${REPO}:unsigned`,
      '--key',
      join(keys, 'signing.pub'),
    ]);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toMatch(/no cosign signature/);

    await pushImage(client, 'overwritten', 'one');
    expect(
      (
        await exitOf(cli, [
          'verify-release',
          `${registry.address}/${REPO}:overwritten`,
          '--key',
          join(keys, 'signing.pub'),
        ])
      ).code,
    ).toBe(0);
    await pushImage(client, 'overwritten', 'three');
    const over = await exitOf(cli, [
      'verify-release',
      `${registry.address}/${REPO}:overwritten`,
      '--key',
      join(keys, 'signing.pub'),
    ]);
    expect(over.code).toBe(1);
  });

  it('verify-release refuses bad input with one line and exit 2', async () => {
    const noKey = await exitOf(cli, ['verify-release', `${registry.address}/${REPO}:signed`]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr.trim().split('\n')).toHaveLength(1);
    const noRegistry = await exitOf(cli, ['verify-release', 'memcached-hardened:signed', '--key', otherPub]);
    expect(noRegistry.code).toBe(2);
    const missing = await exitOf(cli, ['verify-release', `${registry.address}/${REPO}:nope`, '--key', otherPub]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/no such manifest/);
  });
});

describe('GPG simple signing in a lookaside folder, checked by Debian skopeo with examples/signing', () => {
  let registry: Registry;
  let client: RegistryClient;
  const gnupg = join(scratch, 'gnupg');
  const lookaside = join(scratch, 'lookaside');
  const env = { ...process.env, GNUPGHOME: gnupg };
  let fingerprint: string;
  let otherFingerprint: string;
  let policy: string;
  let registriesD: string;

  async function newGpgKey(name: string): Promise<string> {
    const made = await exitOf(
      'gpg',
      [
        '--batch',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
        '--quick-gen-key',
        `${name} <${name}@release.invalid>`,
        'rsa2048',
        'sign',
        'never',
      ],
      env,
    );
    expect(made.code, made.stderr).toBe(0);
    const listed = await exitOf('gpg', ['--batch', '--with-colons', '--list-keys', `${name}@release.invalid`], env);
    return /^fpr:+([0-9A-F]{40}):/m.exec(listed.stdout)![1]!;
  }

  /** skopeo copy under the shipped policy and registries.d; true when it copied. */
  async function skopeoCopies(tag: string): Promise<{ ok: boolean; stderr: string }> {
    const dest = mkdtempSync(join(scratch, 'copy-'));
    const result = await exitOf(
      'skopeo',
      [
        '--policy',
        policy,
        '--registries.d',
        registriesD,
        'copy',
        '--src-tls-verify=false',
        `docker://${registry.address}/${REPO}:${tag}`,
        `dir:${dest}`,
      ],
      env,
    );
    return { ok: result.code === 0, stderr: result.stderr };
  }

  async function sign(tag: string, digest: string, fpr: string): Promise<void> {
    const manifest = (await client.getManifest(digest))!.bytes;
    await gpgSign({
      manifest,
      digest,
      dockerReference: `${registry.address}/${REPO}:${tag}`,
      repositoryPath: REPO,
      fingerprint: fpr,
      lookaside,
    });
  }

  beforeAll(async () => {
    await ensureHostTool(REGISTRY_BINARY, 'docker-registry');
    await ensureHostTool('skopeo', 'skopeo');
    await ensureHostTool('gpg', 'gnupg');
    mkdirSync(gnupg, { mode: 0o700 });
    registry = await startRegistry(scratch, 'gpg', false);
    client = new RegistryClient(registry.address, REPO);
    process.env.GNUPGHOME = gnupg;
    fingerprint = await newGpgKey('release');
    otherFingerprint = await newGpgKey('intruder');
    const keyring = join(scratch, 'release.gpg');
    writeFileSync(
      keyring,
      (await run('gpg', ['--batch', '--export', fingerprint], { env, encoding: 'buffer' })).stdout,
    );
    const scope = `${registry.address}/${REPO}`;
    policy = join(scratch, 'policy.json');
    writeFileSync(
      policy,
      readFileSync(projectPath('examples/signing/policy.json'), 'utf8')
        .replaceAll('REGISTRY/REPOSITORY', scope)
        .replaceAll('/etc/pki/containers/memcached-hardened.gpg', keyring),
    );
    registriesD = join(scratch, 'registries.d');
    mkdirSync(registriesD);
    writeFileSync(
      join(registriesD, 'memcached-hardened.yaml'),
      readFileSync(projectPath('examples/signing/registries.d/memcached-hardened.yaml'), 'utf8')
        .replaceAll('REGISTRY/REPOSITORY', scope)
        .replaceAll('https://SIGNATURES_HOST/signatures', `file://${lookaside}`),
    );
  });

  afterAll(async () => {
    await exitOf('gpgconf', ['--kill', 'gpg-agent'], env);
    delete process.env.GNUPGHOME;
    registry?.process.kill();
  });

  it('copies the signed tag, and refuses an unsigned tag, another image over the tag, and another key', async () => {
    const digest = await pushImage(client, 'release', 'one');
    await sign('release', digest, fingerprint);
    const signed = await skopeoCopies('release');
    expect(signed.ok, signed.stderr).toBe(true);

    await pushImage(client, 'unsigned', 'two');
    const unsigned = await skopeoCopies('unsigned');
    expect(unsigned.ok).toBe(false);
    expect(unsigned.stderr).toMatch(/signature|rejected/i);

    // Another image pushed over the signed tag: the signature names the old digest only.
    await pushImage(client, 'release', 'three');
    const over = await skopeoCopies('release');
    expect(over.ok).toBe(false);

    const intruderDigest = await pushImage(client, 'intruder', 'four');
    await sign('intruder', intruderDigest, otherFingerprint);
    const intruder = await skopeoCopies('intruder');
    expect(intruder.ok).toBe(false);
    // Control: the same image signed by the release key is accepted.
    await sign('intruder', intruderDigest, fingerprint);
    const control = await skopeoCopies('intruder');
    expect(control.ok, control.stderr).toBe(true);
  });
});
