/**
 * The line-length rule for the project's text files (code, scripts, docs): at most 120 characters (code
 * points, so `×` or `п` is one).
 * Rewrap prose, turn wide tables into lists, break commands with `\`. Only two kinds of line may be longer:
 * a line that is nothing but a URL (or a link reference definition), which cannot be broken, and the lines of
 * a block a program writes (between its `<!-- NAME:start -->` and `<!-- NAME:end -->` markers), which are
 * regenerated on every run: only the bench's table, whose rows `bench/report.ts` renders.
 */
export const MAX_LINE = 120;

/** Markers of the blocks a program regenerates; a block written by hand is checked like any other line. */
export const GENERATED_BLOCKS = ['bench'];

const URL_ONLY = /^\s*(?:\[[^\]]+\]:\s*)?<?https?:\/\/\S+>?\s*$/;

export interface LongLine {
  line: number;
  length: number;
}

/** The lines of `text` longer than `max` characters, outside the allowed kinds (1-based line numbers). */
export function longLines(text: string, max = MAX_LINE): LongLine[] {
  const found: LongLine[] = [];
  let generated: string | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    const marker = /^<!-- ([\w-]+):(start|end) -->$/.exec(line.trim());
    if (marker && GENERATED_BLOCKS.includes(marker[1]!)) {
      generated = marker[2] === 'start' ? marker[1] : undefined;
      return;
    }
    const length = [...line].length;
    if (length > max && generated === undefined && !URL_ONLY.test(line)) found.push({ line: index + 1, length });
  });
  return found;
}
