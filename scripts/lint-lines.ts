// Every text file of the project (tracked, or new and not ignored): code, scripts, docs, manifests keep to
// the line-length rule of scripts/long-lines.ts; prints `file:line: N characters` for each longer line and
// exits 1 if there is one. JSON is data (profiles, tables, seccomp profiles, package.json): its strings
// cannot wrap, so it is left out, and so is any file holding a NUL byte (binary fixtures).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { projectPath } from '../src/paths.js';
import { longLines, MAX_LINE } from './long-lines.js';

const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
  cwd: projectPath(),
  encoding: 'utf8',
});
if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr.trim()}`);
const files = [...new Set(listed.stdout.split('\0').filter((file) => file && !file.endsWith('.json')))].sort();
let failures = 0;
for (const file of files) {
  let text: string;
  try {
    text = readFileSync(projectPath(file), 'utf8');
  } catch {
    continue; // listed by git but deleted in the working tree
  }
  if (text.includes('\0')) continue;
  for (const { line, length } of longLines(text)) {
    console.log(`${file}:${line}: ${length} characters (at most ${MAX_LINE})`);
    failures += 1;
  }
}
if (failures > 0) {
  console.log(`${failures} line(s) longer than ${MAX_LINE} characters: rewrap them`);
  process.exitCode = 1;
} else {
  console.log(`Line length: ${files.length} files within ${MAX_LINE} characters`);
}
