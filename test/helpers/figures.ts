import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { inject } from 'vitest';

/** One measured figure of a reliability run (cases tried, frames sent, connections held, durations). */
export interface Figure {
  readonly profile: string;
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

/** Records a figure for the end-of-run table (written by a test worker, read by the reporter). */
export function recordFigure(profile: string, name: string, value: number, unit: string): void {
  appendFileSync(inject('figuresFile'), `${JSON.stringify({ profile, name, value, unit } satisfies Figure)}\n`);
}

export function readFigures(file: string | undefined): Figure[] {
  if (!file || !existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Figure);
}
