import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/paths.js';
import { serializeUsers } from '../../src/credentials.js';
import { generatePassword } from '../../src/sasldb.js';
import { VERIFICATION_FILES } from '../../src/verify.js';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { parseAllDocuments } from 'yaml';
import { vexProduct } from '../../src/signing/evidence.js';
import { MUTATION_RESULT_KIND, type MutationResult } from '../../src/signing/mutation-result.js';
import { pae, PREDICATE_OPENVEX, PREDICATE_SECCOMP, PREDICATE_TEST_RESULT } from '../../src/signing/payloads.js';
import { REQUIRED_PREDICATES } from '../../src/signing/verify-release.js';
import { loadVulnerabilityTable } from '../../src/vulnerabilities.js';
import { ensureHostTool } from '../helpers/host-tools.js';
import { REGISTRY_BINARY, startRegistry, tags, type Registry } from './registry.js';
import { RELEASE_PLACEHOLDER } from './reference.js';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'mh-release-'));
const id = Date.now().toString(36);
const gnupg = join(scratch, 'gnupg');
const env = { ...process.env, GNUPGHOME: gnupg };

async function release(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cli(['release', ...args]);
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(projectPath('bin/memcached-hardened'), args, {
    cwd: scratch,
    env,
    timeout: 900_000,
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );
}

async function opensslVerifies(publicKey: string, signature: Buffer, bytes: Buffer): Promise<boolean> {
  const dir = mkdtempSync(join(scratch, 'openssl-'));
  writeFileSync(join(dir, 'sig'), signature);
  writeFileSync(join(dir, 'data'), bytes);
  return run('openssl', [
    'dgst',
    '-sha256',
    '-verify',
    publicKey,
    '-signature',
    join(dir, 'sig'),
    join(dir, 'data'),
  ]).then(
    ({ stdout }) => stdout.includes('Verified OK'),
    () => false,
  );
}

interface Layer {
  digest: string;
  annotations?: Record<string, string>;
}

const flipped = (bytes: Buffer) => {
  const copy = Buffer.from(bytes);
  copy[copy.length >> 1] = copy[copy.length >> 1]! ^ 1;
  return copy;
};

describe('npm run release: build, verify, push only if green, sign and attest what was pushed', () => {
  let open: Registry;
  let readOnly: Registry;
  const usersFile = join(scratch, 'users');
  const keys = join(scratch, 'keys');
  const passphraseFile = join(scratch, 'passphrase');
  const lookaside = join(scratch, 'lookaside');
  let fingerprint = '';
  const signing = () => ['--signing-key', join(keys, 'signing.key'), '--passphrase-file', passphraseFile];
  let good: { digest: string; tag: string; imageId: string; reference: string } | undefined;
  const mutationResult = join(scratch, 'mutation-result.json');

  beforeAll(async () => {
    await ensureHostTool(REGISTRY_BINARY, 'docker-registry');
    await ensureHostTool('skopeo', 'skopeo');
    await ensureHostTool('gpg', 'gnupg');
    writeFileSync(usersFile, serializeUsers([{ name: 'release', password: generatePassword() }]), { mode: 0o600 });
    writeFileSync(passphraseFile, `${generatePassword()}\n`, { mode: 0o600 });
    const keygen = await cli(['keygen', '--out', keys, '--passphrase-file', passphraseFile]);
    expect(keygen.code, keygen.stderr).toBe(0);
    mkdirSync(gnupg, { mode: 0o700 });
    await run(
      'gpg',
      [
        '--batch',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
        '--quick-gen-key',
        'release <release@release.invalid>',
        'rsa2048',
        'sign',
        'never',
      ],
      { env },
    );
    fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(
      (await run('gpg', ['--batch', '--with-colons', '--list-keys'], { env })).stdout,
    )![1]!;
    [open, readOnly] = await Promise.all([
      startRegistry(scratch, 'open', false),
      startRegistry(scratch, 'readonly', true),
    ]);
    // The mutation check, cut to one mutant (its real image and checks are the same), for the release to carry.
    const mutants = ['--profile', 'ubuntu-16.04', '--only', 'udp-on', '--json-out', mutationResult];
    await run('npm', ['run', '-s', 'test:mutants', '--', ...mutants], {
      cwd: projectPath(),
      timeout: 900_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  }, 1_200_000);

  afterAll(async () => {
    await run('gpgconf', ['--kill', 'gpg-agent'], { env }).catch(() => undefined);
    open?.process.kill();
    readOnly?.process.kill();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('pushes a verified image, signs and attests the digest the registry holds', async () => {
    const tag = `${open.address}/memcached-hardened:good-${id}`;
    const result = await release([
      '--profile',
      'ubuntu-16.04',
      '--users-file',
      usersFile,
      '--tag',
      tag,
      '--json',
      ...signing(),
      '--gpg-sign-by',
      fingerprint,
      '--lookaside',
      lookaside,
      '--mutation-result',
      mutationResult,
    ]);
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    const output = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as {
      reference: string;
      digest: string;
      verified: boolean;
      sbom: string;
      signed: boolean;
      signature: string;
      attestations: string;
      imageId: string;
    };
    expect(output.verified).toBe(true);
    expect(output.signed).toBe(true);
    expect(output.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(existsSync(output.sbom)).toBe(true);
    const manifest = await fetch(`http://${open.address}/v2/memcached-hardened/manifests/good-${id}`, {
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(output.digest);
    expect(output.signature).toBe(`${open.address}/memcached-hardened:${output.digest.replace(':', '-')}.sig`);
    expect(output.reference).toBe(`${open.address}/memcached-hardened@${output.digest}`);
    good = { digest: output.digest, tag, imageId: output.imageId, reference: output.reference };
    // Nothing secret in what the release printed.
    const passphrase = readFileSync(passphraseFile, 'utf8').trim();
    expect(result.stdout + result.stderr).not.toContain(passphrase);
  });

  it('the .sig payload names the pushed digest; openssl verifies it with signing.pub, not altered', async () => {
    expect(good).toBeDefined();
    const sigTag = `${good!.digest.replace(':', '-')}.sig`;
    const sig = await fetch(`http://${open.address}/v2/memcached-hardened/manifests/${sigTag}`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(sig.status).toBe(200);
    const [layer] = ((await sig.json()) as { layers: Layer[] }).layers;
    const payload = Buffer.from(
      await (await fetch(`http://${open.address}/v2/memcached-hardened/blobs/${layer!.digest}`)).arrayBuffer(),
    );
    expect(JSON.parse(payload.toString()).critical.image['docker-manifest-digest']).toBe(good!.digest);
    const signature = Buffer.from(layer!.annotations!['dev.cosignproject.cosign/signature']!, 'base64');
    expect(await opensslVerifies(join(keys, 'signing.pub'), signature, payload)).toBe(true);
    const altered = Buffer.from(payload);
    altered[altered.length - 3] = altered[altered.length - 3]! ^ 1;
    expect(await opensslVerifies(join(keys, 'signing.pub'), signature, altered)).toBe(false);
  });

  it('verify-release agrees; the report names the digest, the image id and checks of every suite file', async () => {
    expect(good).toBeDefined();
    const verified = await cli(['verify-release', good!.tag, '--key', join(keys, 'signing.pub'), '--json']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const v = JSON.parse(verified.stdout) as {
      ok: boolean;
      digest: string;
      attested: { checksPassed: number; checksFailed: number; sbomPackages: number; sourceCommit: string };
    };
    expect(v.ok).toBe(true);
    expect(v.digest).toBe(good!.digest);
    expect(v.attested.checksPassed).toBeGreaterThan(0);
    expect(v.attested.checksFailed).toBe(0);
    expect(v.attested.sbomPackages).toBeGreaterThan(0);
    const att = await fetch(
      `http://${open.address}/v2/memcached-hardened/manifests/${good!.digest.replace(':', '-')}.att`,
      {
        headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
      },
    );
    const layers = ((await att.json()) as { layers: Layer[] }).layers;
    const reportLayer = layers.find(
      (l) => l.annotations?.predicateType === 'https://in-toto.io/attestation/test-result/v0.1',
    );
    const envelope = JSON.parse(
      Buffer.from(
        await (await fetch(`http://${open.address}/v2/memcached-hardened/blobs/${reportLayer!.digest}`)).arrayBuffer(),
      ).toString(),
    ) as { payload: string };
    const report = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as {
      subject: { digest: { sha256: string } }[];
      predicate: {
        passedTests: string[];
        skippedTests: string[];
        failedTests: string[];
        configuration: { annotations: { imageId: string } }[];
      };
    };
    expect(`sha256:${report.subject[0]!.digest.sha256}`).toBe(good!.digest);
    expect(report.predicate.configuration[0]!.annotations.imageId).toBe(good!.imageId);
    expect(report.predicate.failedTests).toEqual([]);
    const ran = [...report.predicate.passedTests, ...report.predicate.skippedTests];
    const files = new Set(ran.map((name) => name.split(' > ')[0]));
    expect([...files].sort()).toEqual([...VERIFICATION_FILES].sort());
  });

  it('each of the five attestations verifies with openssl over its PAE; altered or by another key, not', async () => {
    expect(good).toBeDefined();
    const base = `http://${open.address}/v2/memcached-hardened`;
    const att = await fetch(`${base}/manifests/${good!.digest.replace(':', '-')}.att`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    const layers = ((await att.json()) as { layers: Layer[] }).layers;
    expect(layers.map((l) => l.annotations?.predicateType).sort()).toEqual([...REQUIRED_PREDICATES].sort());
    const otherPub = join(scratch, 'other.pub');
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(otherPub, other.publicKey.export({ type: 'spki', format: 'pem' }));
    const predicates = new Map<string, unknown>();
    for (const layer of layers) {
      const envelope = JSON.parse(
        Buffer.from(await (await fetch(`${base}/blobs/${layer.digest}`)).arrayBuffer()).toString(),
      ) as { payloadType: string; payload: string; signatures: { sig: string }[] };
      const payload = Buffer.from(envelope.payload, 'base64');
      const signature = Buffer.from(envelope.signatures[0]!.sig, 'base64');
      // DSSE's PAE spelled out here, not taken from our pae() alone.
      const signed = Buffer.concat([
        Buffer.from(`DSSEv1 ${envelope.payloadType.length} ${envelope.payloadType} ${payload.length} `),
        payload,
      ]);
      expect(signed.equals(pae(envelope.payloadType, payload))).toBe(true);
      const type = layer.annotations!.predicateType!;
      expect(await opensslVerifies(join(keys, 'signing.pub'), signature, signed), type).toBe(true);
      expect(await opensslVerifies(join(keys, 'signing.pub'), signature, flipped(signed)), type).toBe(false);
      expect(await opensslVerifies(otherPub, signature, signed), type).toBe(false);
      const body = JSON.parse(payload.toString()) as { subject: { digest: { sha256: string } }[]; predicate: unknown };
      expect(`sha256:${body.subject[0]!.digest.sha256}`).toBe(good!.digest);
      predicates.set(type, body.predicate);
    }
    // The seccomp profile attested is the project's file for this profile, byte for byte.
    const seccompFile = readFileSync(projectPath('seccomp', 'ubuntu-16.04.json'));
    expect(predicates.get(PREDICATE_SECCOMP)).toEqual({
      file: 'seccomp/ubuntu-16.04.json',
      digest: { sha256: createHash('sha256').update(seccompFile).digest('hex') },
      profile: JSON.parse(seccompFile.toString()),
    });
    // The VEX is the release's own suite run's: every entry of the table, about this image id, each with its probe.
    const vex = predicates.get(PREDICATE_OPENVEX) as {
      statements: { vulnerability: { name: string }; products: { '@id': string }[]; status_notes: string }[];
    };
    const table = loadVulnerabilityTable('ubuntu-16.04');
    expect(vex.statements.map((s) => s.vulnerability.name)).toEqual(table.entries.map((e) => e.id));
    for (const [i, s] of vex.statements.entries()) {
      expect(s.products.map((p) => p['@id'])).toEqual([vexProduct(good!.imageId)]);
      expect(s.status_notes).toContain(`probe ${table.entries[i]!.probe}`);
    }
    // The mutation check ran on its own build of this commit: the report says so, and that the inputs matched.
    const mutation = JSON.parse(readFileSync(mutationResult, 'utf8')) as MutationResult;
    expect(mutation.kind).toBe(MUTATION_RESULT_KIND);
    const report = predicates.get(PREDICATE_TEST_RESULT) as {
      configuration: { annotations: { mutationCheck: Record<string, unknown> } }[];
    };
    expect(report.configuration[0]!.annotations.mutationCheck).toMatchObject({
      result: 'PASSED',
      commit: mutation.commit,
      mutantsCaught: ['udp-on'],
      mutantsNotCaught: [],
      judgedImage: mutation.runs[0]!.imageId,
      sameBuildInputs: true,
    });
    expect(mutation.runs[0]!.imageId).not.toBe(good!.imageId);
    const text = await cli(['verify-release', good!.reference, '--key', join(keys, 'signing.pub')]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^OpenVEX: \d+ statements \(\d+ not_affected/m);
    expect(text.stdout).toMatch(/^seccomp profile seccomp\/ubuntu-16\.04\.json: default SCMP_ACT_ERRNO, \d+ system/m);
    expect(text.stdout).toMatch(/^mutation check: PASSED, 1 of 1 mutants caught, .*\(the same build inputs as this/m);
  });

  it('the examples deploy it by digest: the Deployment filled as the README says, Compose given it', async () => {
    expect(good).toBeDefined();
    await ensureHostTool('docker-compose', 'docker-compose');
    const deployment = join(scratch, 'deployment.yaml');
    writeFileSync(deployment, readFileSync(projectPath('examples/kubernetes/deployment.yaml')));
    await run('sed', ['-i', `s|${RELEASE_PLACEHOLDER}|${good!.reference}|`, deployment]);
    const filled = new Deployment(parseAllDocuments(readFileSync(deployment, 'utf8'))[0]!.toJS() as never);
    expect(() => filled.validate()).not.toThrow();
    expect(filled.spec!.template.spec!.containers[0]!.image).toBe(good!.reference);
    const composeConfig = (extra: NodeJS.ProcessEnv) =>
      run('docker-compose', ['-f', projectPath('examples/compose.yaml'), 'config'], {
        cwd: scratch,
        // The example names the seccomp profile relative to the project; Compose reads it from the cwd.
        env: {
          ...process.env,
          MEMCACHED_USERS_SECRET: usersFile,
          MEMCACHED_SECCOMP_PROFILE: projectPath('seccomp', 'ubuntu-16.04.json'),
          ...extra,
        },
      }).then(
        ({ stdout }) => ({ ok: true, out: stdout }),
        (error: { stderr: string }) => ({ ok: false, out: error.stderr }),
      );
    const composed = await composeConfig({ MEMCACHED_IMAGE: good!.reference });
    expect(composed.ok, composed.out).toBe(true);
    expect(composed.out).toContain(`image: ${good!.reference}`);
    // Control: without it, Compose refuses rather than run some default image.
    const unnamed = await composeConfig({ MEMCACHED_IMAGE: '' });
    expect(unnamed.ok).toBe(false);
    expect(unnamed.out).toMatch(/MEMCACHED_IMAGE to the release by digest/);
    // The registry serves exactly the signed manifest under that reference.
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${good!.reference}`], {
      encoding: 'buffer',
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(good!.digest);
  });

  it("Debian's skopeo with the shipped policy copies the release; refuses it with the tag overwritten", async () => {
    expect(good).toBeDefined();
    const keyring = join(scratch, 'release.gpg');
    writeFileSync(
      keyring,
      (await run('gpg', ['--batch', '--export', fingerprint], { env, encoding: 'buffer' })).stdout,
    );
    const scope = `${open.address}/memcached-hardened`;
    const policy = join(scratch, 'policy.json');
    writeFileSync(
      policy,
      readFileSync(projectPath('examples/signing/policy.json'), 'utf8')
        .replaceAll('REGISTRY/REPOSITORY', scope)
        .replaceAll('/etc/pki/containers/memcached-hardened.gpg', keyring),
    );
    const registriesD = join(scratch, 'registries.d');
    mkdirSync(registriesD, { recursive: true });
    writeFileSync(
      join(registriesD, 'memcached-hardened.yaml'),
      readFileSync(projectPath('examples/signing/registries.d/memcached-hardened.yaml'), 'utf8')
        .replaceAll('REGISTRY/REPOSITORY', scope)
        .replaceAll('https://SIGNATURES_HOST/signatures', `file://${lookaside}`),
    );
    const copy = (reference: string) =>
      run(
        'skopeo',
        [
          '--policy',
          policy,
          '--registries.d',
          registriesD,
          'copy',
          '--src-tls-verify=false',
          `docker://${reference}`,
          `dir:${mkdtempSync(join(scratch, 'copy-'))}`,
        ],
        { env },
      ).then(
        () => true,
        () => false,
      );
    expect(await copy(good!.tag)).toBe(true);
    // Another image pushed over the tag: the release's own .att image will do (any other manifest would).
    const oci = {
      Accept: 'application/vnd.oci.image.manifest.v1+json',
      'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
    };
    const other = await fetch(`http://${scope.replace('/', '/v2/')}/manifests/${good!.digest.replace(':', '-')}.att`, {
      headers: oci,
    });
    const put = await fetch(`http://${scope.replace('/', '/v2/')}/manifests/good-${id}`, {
      method: 'PUT',
      headers: oci,
      body: await other.arrayBuffer(),
    });
    expect(put.status).toBe(201);
    expect(await copy(good!.tag)).toBe(false);
  });

  it('does not push (nor sign) an image that fails verification', async () => {
    // A baked allowlist makes the image refuse to start without NET_ADMIN: the suite fails on it.
    const tag = `${open.address}/memcached-hardened:broken-${id}`;
    const result = await release([
      '--profile',
      'ubuntu-16.04',
      '--users-file',
      usersFile,
      '--tag',
      tag,
      '--allow-from',
      '10.9.9.9/32',
      ...signing(),
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/verification failed: .* was not pushed/);
    const listed = await tags(open, 'memcached-hardened');
    expect(listed).not.toContain(`broken-${id}`);
    // Control: the registry does list the good release and its signature; no other signature appeared.
    expect(listed).toContain(`good-${id}`);
    expect(listed.filter((t) => t.endsWith('.sig'))).toEqual([`${good!.digest.replace(':', '-')}.sig`]);
  });

  it('reports a refused push with exit 1 and pushes nothing; --unsigned says so', async () => {
    const tag = `${readOnly.address}/memcached-hardened:refused-${id}`;
    const result = await release(['--profile', 'ubuntu-16.04', '--users-file', usersFile, '--tag', tag, '--unsigned']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--unsigned: the image will be pushed WITHOUT a signature/);
    expect(result.stderr).toMatch(/push of .* refused/);
    expect(result.stderr.trim().split('\n').pop()).toMatch(/^memcached-hardened: push of/);
    expect(await tags(readOnly, 'memcached-hardened')).toEqual([]);
  });

  it('refuses a tag without a registry, and a release without a key, before building anything', async () => {
    const result = await release(['--users-file', usersFile, '--tag', 'memcached-hardened:no-registry', '--unsigned']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toMatch(
      /^memcached-hardened: --tag 'memcached-hardened:no-registry' names no registry/,
    );
    const unsigned = await release([
      '--users-file',
      usersFile,
      '--tag',
      `${open.address}/memcached-hardened:nokey-${id}`,
    ]);
    expect(unsigned.code).toBe(2);
    expect(unsigned.stderr.trim()).toMatch(
      /^memcached-hardened: release signs what it pushes: give --signing-key FILE --passphrase-file FILE/,
    );
    const wrong = join(scratch, 'wrong-passphrase');
    writeFileSync(wrong, 'not the passphrase\n');
    const badPassphrase = await release([
      '--users-file',
      usersFile,
      '--tag',
      `${open.address}/memcached-hardened:nokey-${id}`,
      '--signing-key',
      join(keys, 'signing.key'),
      '--passphrase-file',
      wrong,
    ]);
    expect(badPassphrase.code).toBe(2);
    expect(badPassphrase.stderr.trim()).toMatch(/^memcached-hardened: --signing-key .*: wrong passphrase/);
    expect(badPassphrase.stderr).not.toMatch(/\[build\]/);
    const noGpgKey = await release([
      ...['--users-file', usersFile, '--tag', `${open.address}/memcached-hardened:nokey-${id}`, ...signing()],
      ...['--gpg-sign-by', '0123456789ABCDEF', '--lookaside', lookaside],
    ]);
    expect(noGpgKey.code).toBe(2);
    expect(noGpgKey.stderr.trim()).toMatch(/^memcached-hardened: --gpg-sign-by 0123456789ABCDEF: gpg holds no secret/);
    expect(noGpgKey.stderr).not.toMatch(/\[build\]/);
    const stale = join(scratch, 'stale-mutation-result.json');
    const staleResult = JSON.parse(readFileSync(mutationResult, 'utf8')) as MutationResult;
    writeFileSync(stale, JSON.stringify({ ...staleResult, commit: '0'.repeat(40) }));
    const otherCommit = await release([
      ...['--users-file', usersFile, '--tag', `${open.address}/memcached-hardened:nokey-${id}`, ...signing()],
      ...['--mutation-result', stale],
    ]);
    expect(otherCommit.code).toBe(2);
    expect(otherCommit.stderr.trim()).toMatch(/^memcached-hardened: --mutation-result .*: it ran at commit 0{40}, /);
    expect(otherCommit.stderr).not.toMatch(/\[build\]/);
    expect(await tags(open, 'memcached-hardened')).not.toContain(`nokey-${id}`);
  });
});
