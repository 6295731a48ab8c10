import {
  BUILD_USAGE,
  KEYGEN_USAGE,
  parseBuildArgs,
  parseKeygenArgs,
  parseReleaseArgs,
  parseVerifyReleaseArgs,
  RELEASE_USAGE,
  VERIFY_RELEASE_USAGE,
} from './config.js';
import { badInput, EXIT_BAD_INPUT, EXIT_FAILURE, UserError } from './errors.js';

const USAGE = `Usage: memcached-hardened <command> [options]

Commands:
  build           build the hardened memcached image (npm run build -- --help)
  release         build, verify with the suite, push only if it passed, sign and attest the digest
  keygen          make the release signing key pair (cosign format)
  verify-release  check a release's signature and attestations with the public key

Run a command with --help for its options.`;

const progress = (line: string) => process.stderr.write(`${line}\n`);

async function build(argv: readonly string[]): Promise<number> {
  const config = parseBuildArgs(argv);
  if (!config) {
    console.log(BUILD_USAGE);
    return 0;
  }
  // Loaded only now: help and bad input answer without loading the engine client.
  const [{ buildWithOutputs, summary }, { connectEngine }] = await Promise.all([
    import('./outputs.js'),
    import('./engine/index.js'),
  ]);
  const built = await buildWithOutputs(config, connectEngine(), progress);
  const { result } = built;
  console.log(
    config.json
      ? JSON.stringify(summary(config, built))
      : `built ${result.tags.join(', ')} (${result.imageId}) from ${result.base}, ` +
          `${(result.sizeBytes / 1e6).toFixed(1)} MB`,
  );
  return 0;
}

async function release(argv: readonly string[]): Promise<number> {
  const config = parseReleaseArgs(argv);
  if (!config) {
    console.log(RELEASE_USAGE);
    return 0;
  }
  const [{ releaseImage }, { summary }] = await Promise.all([import('./release.js'), import('./outputs.js')]);
  const released = await releaseImage(config, progress);
  const s = released.signatures;
  const result = {
    ...summary(config, released.built),
    verified: true,
    pushed: released.pushed,
    reference: released.reference,
    digest: released.digest,
    signed: s !== undefined,
    ...(s ? { signature: s.signature, attestations: s.attestations, predicateTypes: s.predicateTypes } : {}),
    ...(s?.gpgSignature ? { gpgSignature: s.gpgSignature } : {}),
  };
  const text = s
    ? [
        `pushed ${released.pushed}`,
        `deploy it by digest: ${released.reference}`,
        `signed ${s.signature}`,
        `attested ${s.attestations}`,
        ...(s.gpgSignature ? [`GPG-signed ${s.gpgSignature}`] : []),
      ]
    : [`pushed ${released.pushed}`, 'UNSIGNED: released with --unsigned, no signature and no attestations'];
  console.log(config.json ? JSON.stringify(result) : text.join('\n'));
  return 0;
}

async function keygen(argv: readonly string[]): Promise<number> {
  const config = parseKeygenArgs(argv);
  if (!config) {
    console.log(KEYGEN_USAGE);
    return 0;
  }
  const { keygen: makeKeys } = await import('./signing/key.js');
  const written = makeKeys(config);
  const text = `wrote ${written.privateKey} (mode 0600) and ${written.publicKey}`;
  console.log(config.json ? JSON.stringify(written) : text);
  return 0;
}

async function verifyRelease(argv: readonly string[]): Promise<number> {
  const config = parseVerifyReleaseArgs(argv);
  if (!config) {
    console.log(VERIFY_RELEASE_USAGE);
    return 0;
  }
  const [{ verifyRelease: verify, describeVerification }, { readPublicKey }, { registryAuth }, references] =
    await Promise.all([
      import('./signing/verify-release.js'),
      import('./signing/key.js'),
      import('./release.js'),
      import('./image-reference.js'),
    ]);
  const key = readPublicKey(config.keyFile);
  let registry: string | undefined;
  try {
    registry = references.parseImageReference(config.reference).registry;
  } catch (error) {
    throw badInput((error as Error).message);
  }
  const verification = await verify(config.reference, key, registry ? registryAuth(registry) : undefined);
  console.log(config.json ? JSON.stringify(verification) : describeVerification(verification).join('\n'));
  if (!verification.ok && !config.json) {
    console.error(`memcached-hardened: verify-release: ${verification.problems[0]}`);
  }
  return verification.ok ? 0 : EXIT_FAILURE;
}

/** Runs one command and resolves to its exit code: 0 ok, 1 failure, 2 bad input. Never exits the process. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'build':
        return await build(rest);
      case 'release':
        return await release(rest);
      case 'keygen':
        return await keygen(rest);
      case 'verify-release':
        return await verifyRelease(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        console.log(USAGE);
        return command === undefined ? EXIT_BAD_INPUT : 0;
      default:
        throw badInput(`unknown command '${command}' (see --help)`);
    }
  } catch (error) {
    if (error instanceof UserError) {
      console.error(`memcached-hardened: ${error.message}`);
      return error.exitCode;
    }
    console.error(`memcached-hardened: unexpected error: ${(error as Error).message.split('\n')[0]}`);
    return EXIT_FAILURE;
  }
}
