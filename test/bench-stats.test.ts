import { describe, expect, it } from 'vitest';
import { changedLayers, quantile, round } from '../bench/stats.js';

describe('bench statistics', () => {
  it('takes nearest-rank quantiles', () => {
    const samples = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(quantile(samples, 0.5)).toBe(5);
    expect(quantile(samples, 0.95)).toBe(10);
    expect(quantile(samples, 0)).toBe(1);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('counts changed layers', () => {
    expect(changedLayers(['a', 'b', 'c'], ['a', 'b', 'd'])).toBe(1);
    expect(changedLayers(['a', 'b'], ['a', 'b', 'c'])).toBe(1);
    expect(changedLayers(['a'], ['a'])).toBe(0);
    expect(round(1.23456, 2)).toBe(1.23);
  });
});
