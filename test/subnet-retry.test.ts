import { describe, expect, it } from 'vitest';
import { onAnotherSubnetIfTaken } from './helpers/docker.js';

/** Picks 10.200.0, 10.200.1, … in turn, recording each. */
function picker(): { pick: () => string; picked: string[] } {
  const picked: string[] = [];
  const pick = () => {
    const prefix = `10.200.${picked.length}`;
    picked.push(prefix);
    return prefix;
  };
  return { pick, picked };
}

const overlap = new Error('Pool overlaps with other one on this address space');

describe('onAnotherSubnetIfTaken', () => {
  it('creates on the first /24 that is free, picking another after each overlap', async () => {
    const { pick, picked } = picker();
    const created = await onAnotherSubnetIfTaken(pick, async (prefix) => {
      if (prefix !== '10.200.2') throw overlap;
      return `network on ${prefix}`;
    });
    expect({ created, picked }).toEqual({
      created: 'network on 10.200.2',
      picked: ['10.200.0', '10.200.1', '10.200.2'],
    });
  });

  it("gives up after five overlaps with the engine's own error", async () => {
    const { pick, picked } = picker();
    await expect(onAnotherSubnetIfTaken(pick, () => Promise.reject(overlap))).rejects.toBe(overlap);
    expect(picked).toHaveLength(5);
  });

  it('does not retry any other error', async () => {
    const { pick, picked } = picker();
    const other = new Error('permission denied');
    await expect(onAnotherSubnetIfTaken(pick, () => Promise.reject(other))).rejects.toBe(other);
    expect(picked).toEqual(['10.200.0']);
  });
});
