import { BUILD_USAGE, parseBuildArgs, RELEASE_USAGE } from './config.js';
import { badInput, EXIT_BAD_INPUT, EXIT_FAILURE, UserError } from './errors.js';

const USAGE = `Usage: memcached-hardened <command> [options]

Commands:
  build     build the hardened memcached image (npm run build -- --help)
  release   build, verify with the suite, push only if it passed (npm run release -- --help)

Run a command with --help for its options.`;

const progress = (line: string) => process.stderr.write(`${line}\n`);

async function build(argv: readonly string[]): Promise<number> {
  const config = parseBuildArgs(argv);
  if (!config) {
    console.log(BUILD_USAGE);
    return 0;
  }
  // Loaded only now: help and bad input answer without loading the engine client.
  const [{ buildWithOutputs, summary }, { connectEngine }] = await Promise.all([import('./outputs.js'), import('./engine/index.js')]);
  const built = await buildWithOutputs(config, connectEngine(), progress);
  const { result } = built;
  console.log(config.json ? JSON.stringify(summary(config, built)) : `built ${result.tags.join(', ')} (${result.imageId}) from ${result.base}, ${(result.sizeBytes / 1e6).toFixed(1)} MB`);
  return 0;
}

async function release(argv: readonly string[]): Promise<number> {
  const config = parseBuildArgs(argv);
  if (!config) {
    console.log(RELEASE_USAGE);
    return 0;
  }
  const [{ releaseImage }, { summary }] = await Promise.all([import('./release.js'), import('./outputs.js')]);
  const released = await releaseImage(config, progress);
  console.log(config.json ? JSON.stringify({ ...summary(config, released.built), verified: true, pushed: released.pushed, digest: released.digest }) : `pushed ${released.pushed}`);
  return 0;
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
