// shellcheck over every shell file of the project: the static ones as they are, and the image's scripts as
// each profile renders them (their placeholders are filled at build time, so shellcheck reads the output).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { renderFiles } from '../src/context.js';
import { projectPath } from '../src/paths.js';
import { listProfiles, loadProfile } from '../src/profiles.js';
import { profileValues } from '../src/render.js';

const SHEBANG = /^#!.*\b(ba|da)?sh\b/;

/** The project's own shell files, by their first line (git knows the tree). */
function staticShellFiles(): string[] {
  const listed = spawnSync('git', ['ls-files', '-z'], { cwd: projectPath(), encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  return listed.stdout
    .split('\0')
    .filter((file) => file && !file.startsWith('image-files/'))
    .filter((file) => {
      try {
        return SHEBANG.test(readFileSync(projectPath(file), 'utf8').split('\n', 1)[0] ?? '');
      } catch {
        return false;
      }
    });
}

const scratch = mkdtempSync(join(tmpdir(), 'mh-lint-shell-'));
try {
  const rendered: string[] = [];
  for (const name of listProfiles()) {
    for (const tls of [false, true]) {
      const values = profileValues(loadProfile(name), { credentials: 'runtime', tls });
      for (const file of renderFiles(values)) {
        const text = file.content.toString('utf8');
        const isScript = SHEBANG.test(text.split('\n', 1)[0] ?? '') || file.name.endsWith('.sh');
        if (!file.name.startsWith('image-files/') || !isScript) continue;
        const path = join(scratch, `${name}${tls ? '-tls' : ''}`, file.name);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, text);
        rendered.push(path);
      }
    }
  }
  const files = [...staticShellFiles().map((file) => projectPath(file)), ...rendered];
  // -x follows sourced files; the rendered image scripts source each other by their image paths.
  const run = spawnSync('shellcheck', ['--severity=style', ...files], { stdio: 'inherit' });
  if (run.error) throw new Error(`shellcheck could not run (${run.error.message}); Debian: apt-get install shellcheck`);
  process.exitCode = run.status ?? 1;
  if (run.status === 0) console.log(`shellcheck: ${files.length} files clean`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
