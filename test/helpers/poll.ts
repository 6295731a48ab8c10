/** What a poll waits for, and what to say when it gives up. */
export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** What the condition means, for the failure message ("memcached at 10.0.0.2 answers"). */
  readonly what: string;
  /** Extra context for the failure message, fetched only on failure (e.g. the container's logs). */
  readonly diagnose?: () => Promise<string>;
}

/**
 * Calls `probe` until it returns a value other than undefined, then returns it. Errors thrown by the
 * probe count as "not yet" (the last one is reported). The one polling loop of the test helpers.
 */
export async function pollUntil<T>(probe: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError = 'condition never held';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
  const context = options.diagnose
    ? await options.diagnose().catch((error: Error) => `(no diagnosis: ${error.message})`)
    : '';
  throw new Error(
    `gave up after ${options.timeoutMs} ms waiting until ${options.what}: ${lastError}` +
      (context ? `\n${context.trim()}` : ''),
  );
}
