// Every Markdown file of the project (tracked, or new and not ignored) keeps to the line-length rule of
// scripts/long-lines.ts; prints `file:line: N characters` for each longer line and exits 1 if there is one.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { projectPath } from '../src/paths.js';
import { longLines, MAX_LINE } from './long-lines.js';

const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '*.md'], {
  cwd: projectPath(),
  encoding: 'utf8',
});
if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr.trim()}`);
const files = [...new Set(listed.stdout.split('\0').filter(Boolean))].sort();
let failures = 0;
for (const file of files) {
  let text: string;
  try {
    text = readFileSync(projectPath(file), 'utf8');
  } catch {
    continue; // listed by git but deleted in the working tree
  }
  for (const { line, length } of longLines(text)) {
    console.log(`${file}:${line}: ${length} characters (at most ${MAX_LINE})`);
    failures += 1;
  }
}
if (failures > 0) {
  console.log(`${failures} Markdown line(s) longer than ${MAX_LINE} characters: rewrap them`);
  process.exitCode = 1;
} else {
  console.log(`Markdown lines: ${files.length} files within ${MAX_LINE} characters`);
}
