/**
 * How hard the reliability tests push: RELIABILITY_SCALE=fast (CI: the minimums, a few minutes)
 * or full (the default for `npm run test:reliability`: several times more).
 */
export function reliabilityScale(): 'fast' | 'full' {
  return process.env.RELIABILITY_SCALE === 'fast' ? 'fast' : 'full';
}

export function scaled(fast: number, full: number): number {
  return reliabilityScale() === 'fast' ? fast : full;
}
