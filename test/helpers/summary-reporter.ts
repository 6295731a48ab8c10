import { basename } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { readFigures, readTableCells } from './figures.js';

/**
 * A short human summary after vitest's own output: per profile, per check (test file), pass or fail.
 * Integration tests name their top-level describe after the profile, e.g. "ubuntu-16.04".
 */
export default class SummaryReporter implements Reporter {
  private printFigures(): void {
    const figures = readFigures(process.env.MEMCACHED_HARDENED_FIGURES);
    if (figures.length === 0) return;
    const lines = figures.map(
      (f) => `  ${f.profile.padEnd(34)} ${f.name.padEnd(58)} ${String(f.value).padStart(10)} ${f.unit}`,
    );
    process.stdout.write(`\nFigures:\n${lines.join('\n')}\n`);
  }

  /** Each recorded table as Markdown (rows sorted, columns in the order the run measured them). */
  private printTables(): void {
    const tables = new Map<string, Map<string, Map<string, string>>>();
    const columns = new Map<string, string[]>();
    for (const cell of readTableCells(process.env.MEMCACHED_HARDENED_FIGURES)) {
      const rows = tables.get(cell.table) ?? new Map<string, Map<string, string>>();
      tables.set(cell.table, rows);
      rows.set(cell.row, (rows.get(cell.row) ?? new Map<string, string>()).set(cell.column, cell.value));
      const seen = columns.get(cell.table) ?? [];
      if (!seen.includes(cell.column)) columns.set(cell.table, [...seen, cell.column]);
    }
    for (const [table, rows] of tables) {
      const heads = columns.get(table) ?? [];
      const line = (cells: string[]) => `  | ${cells.join(' | ')} |`;
      const body = [...rows.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([row, values]) => line([row, ...heads.map((h) => values.get(h) ?? '—')]));
      process.stdout.write(
        `\n${table}:\n${[line(['', ...heads]), line(['---', ...heads.map(() => '---')]), ...body].join('\n')}\n`,
      );
    }
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const rows = new Map<string, { passed: number; failed: number; skipped: number }>();
    for (const module of testModules) {
      if (module.project.name === 'unit') continue;
      const check = basename(module.moduleId).replace(/\.test\.ts$/, '');
      for (const test of module.children.allTests()) {
        const profile = test.fullName.split(' > ')[0] ?? '';
        const key = `${/^(ubuntu|debian)-/.test(profile) ? profile : 'all profiles'}\u0000${check}`;
        const row = rows.get(key) ?? { passed: 0, failed: 0, skipped: 0 };
        const state = test.result().state;
        if (state === 'passed') row.passed++;
        else if (state === 'failed') row.failed++;
        else row.skipped++;
        rows.set(key, row);
      }
    }
    this.printFigures();
    this.printTables();
    if (rows.size === 0) return;
    const lines = [...rows.entries()].sort().map(([key, row]) => {
      const [profile, check] = key.split('\u0000');
      const verdict = row.failed > 0 ? 'FAIL' : row.passed > 0 ? 'pass' : 'not run';
      const skipped = row.skipped ? `, ${row.skipped} not run` : '';
      const counts = `${row.passed} passed, ${row.failed} failed${skipped}`;
      return `  ${verdict.padEnd(7)} ${profile?.padEnd(34)} ${check?.padEnd(22)} ${counts}`;
    });
    process.stdout.write(`\nVerification summary (per profile, per check):\n${lines.join('\n')}\n`);
  }
}
