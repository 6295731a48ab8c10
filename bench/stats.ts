/** The q-quantile (0..1) of the samples, nearest-rank. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** How many layers differ between two images' layer lists (by position), plus added ones. */
export function changedLayers(before: readonly string[], after: readonly string[]): number {
  let changed = Math.abs(after.length - before.length);
  for (let i = 0; i < Math.min(before.length, after.length); i++) if (before[i] !== after[i]) changed++;
  return changed;
}
