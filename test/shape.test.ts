import { describe, expect, it } from 'vitest';
import { boolean, type Check, list, object, oneOf, ShapeError, string } from '../src/shape.js';

/** The path and problem of the ShapeError `check` throws for `value`. */
function problem<T>(check: Check<T>, value: unknown): { path: (string | number)[]; problem: string } {
  try {
    check(value, []);
  } catch (error) {
    if (error instanceof ShapeError) return { path: [...error.path], problem: error.problem };
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(value)}`);
}

describe('shape', () => {
  it('checks strings, and their pattern with its message', () => {
    expect(string()('any', [])).toBe('any');
    expect(problem(string(), 3)).toEqual({ path: [], problem: 'must be a string' });
    const lower = string(/^[a-z]+$/, 'must be lower-case');
    expect(lower('abc', [])).toBe('abc');
    expect(problem(lower, 'aBc')).toEqual({ path: [], problem: 'must be lower-case' });
    expect(problem(string(/^a$/), 'b').problem).toBe('must match /^a$/');
  });

  it('checks booleans', () => {
    expect(boolean(false, [])).toBe(false);
    expect(problem(boolean, 'true')).toEqual({ path: [], problem: 'must be true or false' });
    expect(problem(boolean, 0).problem).toBe('must be true or false');
  });

  it('checks one of a set of values', () => {
    const flag = oneOf(['-F', '-X']);
    expect(flag('-X', [])).toBe('-X');
    expect(problem(flag, '-x')).toEqual({ path: [], problem: 'must be one of -F, -X' });
    expect(problem(flag, ['-F']).problem).toBe('must be one of -F, -X');
  });

  it('checks lists item by item, naming the index, and non-empty ones', () => {
    expect(list(string())([], [])).toEqual([]);
    expect(problem(list(string()), 'a')).toEqual({ path: [], problem: 'must be a list' });
    expect(problem(list(string()), ['a', 2])).toEqual({ path: [1], problem: 'must be a string' });
    const some = list(string(), { nonEmpty: true });
    expect(some(['a'], [])).toEqual(['a']);
    expect(problem(some, [])).toEqual({ path: [], problem: 'must be a non-empty list' });
    expect(problem(some, { 0: 'a' })).toEqual({ path: [], problem: 'must be a non-empty list' });
  });

  it('checks objects key by key, refusing unknown and missing keys at every level', () => {
    const point = object<{ x: string; inner: { on: boolean } }>({ x: string(), inner: object({ on: boolean }) });
    expect(point({ x: 'a', inner: { on: true } }, [])).toEqual({ x: 'a', inner: { on: true } });
    expect(problem(point, null)).toEqual({ path: [], problem: 'must be an object' });
    expect(problem(point, ['a'])).toEqual({ path: [], problem: 'must be an object' });
    expect(problem(point, { x: 'a', inner: { on: true }, y: 1 })).toEqual({ path: [], problem: "unknown key 'y'" });
    expect(problem(point, { x: 'a', inner: { on: true, off: false } })).toEqual({
      path: ['inner'],
      problem: "unknown key 'off'",
    });
    expect(problem(point, { inner: { on: true } })).toEqual({ path: ['x'], problem: 'is missing' });
    expect(problem(point, { x: 'a', inner: { on: 'yes' } })).toEqual({
      path: ['inner', 'on'],
      problem: 'must be true or false',
    });
    expect(problem(point, JSON.parse('{"x":"a","inner":{"on":true},"__proto__":{}}'))).toEqual({
      path: [],
      problem: "unknown key '__proto__'",
    });
  });

  it('returns new objects and lists, sharing nothing with the input', () => {
    const input = { tags: ['a'], inner: { on: true } };
    const output = object<typeof input>({ tags: list(string()), inner: object({ on: boolean }) })(input, []);
    expect(output).toEqual(input);
    expect(output).not.toBe(input);
    expect(output.tags).not.toBe(input.tags);
    expect(output.inner).not.toBe(input.inner);
  });

  it('continues the path it is given and says where in its message', () => {
    const error = problem(list(oneOf(['a'])), ['b']);
    expect(error.path).toEqual([0]);
    expect(() => list(oneOf(['a']))(['b'], ['outer', 'items'])).toThrow(
      new ShapeError(['outer', 'items', 0], 'must be one of a'),
    );
    expect(new ShapeError(['outer', 0], 'is missing').message).toBe('outer.0: is missing');
  });
});
