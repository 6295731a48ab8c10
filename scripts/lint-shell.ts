// shellcheck over every shell file of the project, as it is in the tree: the image's scripts are static too.
// The one shell file the build generates for them (values.sh, the profile's values) is rendered for each
// profile into a scratch folder that shellcheck searches when a script sources it, and is checked as well.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { projectPath } from '../src/paths.js';
import { listProfiles, loadProfile } from '../src/profiles.js';
import { IMAGE_VALUES_PATH, imageValuesShell } from '../src/render.js';

const SHEBANG = /^#!.*\b(ba|da)?sh\b/;
/** What a sourced file without a shebang says first (the image's phases, the users-file rules). */
const SHELL_DIRECTIVE = /^# shellcheck shell=/;

/** The project's shell files, tracked or new (git knows the tree and what it ignores), by their first line. */
function shellFiles(): string[] {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: projectPath(),
    encoding: 'utf8',
  });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  return [...new Set(listed.stdout.split('\0'))].filter((file) => {
    if (!file) return false;
    try {
      const first = readFileSync(projectPath(file), 'utf8').split('\n', 1)[0] ?? '';
      return SHEBANG.test(first) || SHELL_DIRECTIVE.test(first);
    } catch {
      return false; // listed, but deleted in the working tree
    }
  });
}

const scratch = mkdtempSync(join(tmpdir(), 'mh-lint-shell-'));
try {
  const files = shellFiles().map((file) => projectPath(file));
  let failed = false;
  for (const name of listProfiles()) {
    const dir = join(scratch, name);
    mkdirSync(dir);
    const values = join(dir, basename(IMAGE_VALUES_PATH));
    writeFileSync(values, imageValuesShell(loadProfile(name)));
    // -x follows what a script sources; -P finds this profile's values.sh where the image has it.
    const run = spawnSync('shellcheck', ['--severity=style', '-x', '-P', dir, ...files, values], { stdio: 'inherit' });
    if (run.error) {
      throw new Error(`shellcheck could not run (${run.error.message}); Debian: apt-get install shellcheck`);
    }
    if (run.status !== 0) failed = true;
  }
  process.exitCode = failed ? 1 : 0;
  if (!failed) console.log(`shellcheck: ${files.length} files clean, with each profile's values.sh`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
