import { describe, expect, it } from 'vitest';
import {
  interquartileRange,
  newLayers,
  quantile,
  round,
  roundOrder,
  roundRatios,
  withinNoise,
} from '../bench/stats.js';

describe('bench statistics', () => {
  it('takes nearest-rank quantiles', () => {
    const samples = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(quantile(samples, 0.5)).toBe(5);
    expect(quantile(samples, 0.95)).toBe(10);
    expect(quantile(samples, 0)).toBe(1);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('counts changed layers', () => {
    const known = new Set(['a', 'b', 'c', 'x']);
    expect(newLayers(known, ['a', 'b', 'd'])).toEqual(['d']);
    expect(newLayers(known, ['x', 'b', 'c'])).toEqual([]);
    expect(newLayers(new Set(), ['a', 'a'])).toEqual(['a', 'a']);
    expect(round(1.23456, 2)).toBe(1.23);
  });

  it("compares a side with its reference round by round: the median of the rounds' ratios and their range", () => {
    // A lucky round of one side must not meet an unlucky one of the other: 0.5 is no round's ratio.
    const rounds = [
      { measured: 90, reference: 100 },
      { measured: 200, reference: 100 },
      { measured: 50, reference: 100 },
      { measured: 99, reference: 100 },
      { measured: 100, reference: 100 },
    ];
    expect(roundRatios(rounds)).toEqual({ ratio: 0.99, low: 0.5, high: 2 });
    expect(roundRatios([{ measured: 3, reference: 4 }])).toEqual({ ratio: 0.75, low: 0.75, high: 0.75 });
    expect(() => roundRatios([])).toThrow('no rounds');
  });

  it('rotates the order of the sides, so each leads equally often', () => {
    expect(roundOrder(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(roundOrder(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(roundOrder(['a', 'b', 'c'], 5)).toEqual(['c', 'a', 'b']);
    expect(roundOrder(['a', 'b'], 3)).toEqual(['b', 'a']);
    const leads = [0, 1, 2, 3, 4, 5].map((r) => roundOrder(['a', 'b', 'c'], r)[0]);
    expect(leads.filter((side) => side === 'c')).toHaveLength(2);
  });

  it('calls two samples the same when their medians differ by no more than the larger interquartile range', () => {
    expect(interquartileRange([1, 2, 3, 4, 5, 6, 7, 8])).toBe(4);
    const steady = [300, 302, 305, 310, 320];
    expect(withinNoise(steady, [305, 306, 309, 312, 330])).toBe(true);
    expect(withinNoise(steady, [400, 402, 405, 410, 420])).toBe(false);
    // A noisy sample hides a shift its own spread covers.
    expect(withinNoise([250, 300, 350, 400, 450], [330, 340, 350, 360, 370])).toBe(true);
  });
});
