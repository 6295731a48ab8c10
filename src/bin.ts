#!/usr/bin/env node
// The command-line entry: everything else is importable without side effects.
import { main } from './cli.js';

process.on('SIGINT', () => {
  // The engine cancels a build whose client goes away, so nothing gets tagged; process.exit still runs
  // the 'exit' handlers that remove what the build would have left half-made.
  console.error('memcached-hardened: interrupted');
  process.exit(130);
});

const code = await main(process.argv.slice(2));
// Everything main started has finished. Exiting explicitly skips tearing the whole heap down, a good part
// of a no-change rebuild's time; the output is flushed first.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
