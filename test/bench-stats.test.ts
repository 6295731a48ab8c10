import { describe, expect, it } from 'vitest';
import { newLayers, quantile, round } from '../bench/stats.js';

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
});
