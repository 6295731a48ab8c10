import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { inject } from 'vitest';

/** One measured figure of a reliability run (cases tried, frames sent, connections held, durations). */
export interface Figure {
  readonly profile: string;
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

/** One cell of an end-of-run table: e.g. client compatibility, a client (row) × a profile and mode (column). */
export interface TableCell {
  readonly table: string;
  readonly row: string;
  readonly column: string;
  readonly value: string;
}

/** Records a figure for the end-of-run table (written by a test worker, read by the reporter). */
export function recordFigure(profile: string, name: string, value: number, unit: string): void {
  appendFileSync(inject('figuresFile'), `${JSON.stringify({ profile, name, value, unit } satisfies Figure)}\n`);
}

/** Records a table cell, in the same file as the figures. */
export function recordTableCell(cell: TableCell): void {
  appendFileSync(inject('figuresFile'), `${JSON.stringify({ cell })}\n`);
}

function readRecords(file: string | undefined): Array<Figure | { cell: TableCell }> {
  if (!file || !existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Figure | { cell: TableCell });
}

export function readFigures(file: string | undefined): Figure[] {
  return readRecords(file).filter((record): record is Figure => !('cell' in record));
}

export function readTableCells(file: string | undefined): TableCell[] {
  return readRecords(file).flatMap((record) => ('cell' in record ? [record.cell] : []));
}
