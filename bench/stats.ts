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

/** The layers of an image that were not among `known` (every layer the engine held before its build). */
export function newLayers(known: ReadonlySet<string>, layers: readonly string[]): string[] {
  return layers.filter((layer) => !known.has(layer));
}

/** One round: the side measured and its reference, measured in the same round. */
export interface MeasuredRound {
  readonly measured: number;
  readonly reference: number;
}

/** A measured side against its reference over rounds: each round's ratio, their median and range. */
export interface RoundRatios {
  readonly ratio: number;
  readonly low: number;
  readonly high: number;
}

/**
 * measured / reference of each round, then the median and the range of those ratios: on a small shared
 * machine the noise is larger than the effect measured, and a ratio of two medians could pair a lucky
 * round of one side with an unlucky one of the other.
 */
export function roundRatios(rounds: ReadonlyArray<MeasuredRound>): RoundRatios {
  if (rounds.length === 0) throw new Error('no rounds to compare');
  const ratios = rounds.map((r) => r.measured / r.reference);
  return { ratio: quantile(ratios, 0.5), low: Math.min(...ratios), high: Math.max(...ratios) };
}

/** The sides in the order round `round` runs them: rotated by one every round, so each leads equally often. */
export function roundOrder<T>(sides: readonly T[], round: number): T[] {
  const shift = ((round % sides.length) + sides.length) % sides.length;
  return [...sides.slice(shift), ...sides.slice(0, shift)];
}

/** The spread of the middle half of the samples (nearest-rank quartiles). */
export function interquartileRange(samples: readonly number[]): number {
  return quantile(samples, 0.75) - quantile(samples, 0.25);
}

/**
 * Whether two samples are the same within their noise: their medians differ by no more than the larger of
 * their interquartile ranges.
 */
export function withinNoise(a: readonly number[], b: readonly number[]): boolean {
  const difference = Math.abs(quantile(a, 0.5) - quantile(b, 0.5));
  return difference <= Math.max(interquartileRange(a), interquartileRange(b));
}
