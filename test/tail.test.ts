import { describe, expect, it } from 'vitest';
import { LineTail } from '../src/tail.js';

describe('LineTail', () => {
  it('keeps only the last lines, oldest first', () => {
    const tail = new LineTail(2);
    expect(tail.lines()).toEqual([]);
    ['a', 'b', 'c'].forEach((line) => tail.push(line));
    expect(tail.lines()).toEqual(['b', 'c']);
  });
});
