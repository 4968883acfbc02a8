/** Milliseconds on CLOCK_MONOTONIC: comparable across the processes of one machine. */
export function hrNow(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

let groupCounter = 0;
/** A group name no other test uses (tests may share a server). */
export function uniqueGroup(label = 'g'): string {
  groupCounter += 1;
  return `${label}-${process.pid}-${groupCounter}`;
}

/**
 * Polls `probe` until it returns something other than undefined or false, and returns that;
 * fails after `timeoutMs` with a message naming `what`.
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string | (() => string),
  timeoutMs = 5000,
  intervalMs = 5,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) {
      const described = typeof what === 'string' ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${described}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
