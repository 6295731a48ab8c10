/**
 * Tiny checkers for parsed JSON. A checker returns the value it was given, typed (objects and lists
 * rebuilt, so the result shares nothing with the input), or throws a `ShapeError` for the first
 * problem it finds, naming where (`path`) and what (`problem`).
 */

export type Path = readonly (string | number)[];
export type Check<T> = (value: unknown, path: Path) => T;

export class ShapeError extends Error {
  constructor(
    readonly path: Path,
    readonly problem: string,
  ) {
    super(path.length > 0 ? `${path.join('.')}: ${problem}` : problem);
    this.name = 'ShapeError';
  }
}

function fail(path: Path, problem: string): never {
  throw new ShapeError(path, problem);
}

/** A string, matching `pattern` if one is given (else `message`). */
export function string(pattern?: RegExp, message = `must match ${String(pattern)}`): Check<string> {
  return (value, path) => {
    if (typeof value !== 'string') fail(path, 'must be a string');
    if (pattern && !pattern.test(value)) fail(path, message);
    return value;
  };
}

export const boolean: Check<boolean> = (value, path) =>
  typeof value === 'boolean' ? value : fail(path, 'must be true or false');

/** One of `values` (compared with ===). */
export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  return (value, path) =>
    values.includes(value as T) ? (value as T) : fail(path, `must be one of ${values.join(', ')}`);
}

/** A list whose items all pass `item`; with `nonEmpty`, at least one. */
export function list<T>(item: Check<T>, { nonEmpty = false } = {}): Check<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) fail(path, nonEmpty ? 'must be a non-empty list' : 'must be a list');
    if (nonEmpty && value.length === 0) fail(path, 'must be a non-empty list');
    return value.map((element, index) => item(element, [...path, index]));
  };
}

/** An object with exactly these keys, each passing its checker; unknown and missing keys are refused. */
export function object<T extends object>(fields: { [K in keyof T]-?: Check<T[K]> }): Check<T> {
  const keys = Object.keys(fields) as (keyof T & string)[];
  return (value, path) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be an object');
    const unknown = Object.keys(value).find((key) => !Object.hasOwn(fields, key));
    if (unknown !== undefined) fail(path, `unknown key '${unknown}'`);
    const result = {} as T;
    for (const key of keys) {
      if (!Object.hasOwn(value, key)) fail([...path, key], 'is missing');
      result[key] = fields[key]((value as Record<string, unknown>)[key], [...path, key]);
    }
    return result;
  };
}
