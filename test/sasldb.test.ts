import { describe, expect, it } from 'vitest';
import { generatePassword } from '../src/sasldb.js';

describe('generatePassword', () => {
  it('makes distinct 32-character URL-safe passwords', () => {
    const a = generatePassword();
    const b = generatePassword();
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(a).not.toBe(b);
  });
});
