/** Ctrl-C (SIGINT) or SIGTERM, for the commands that run until stopped. */
export interface Interruption {
  /** Aborts at the first of the two signals. */
  readonly signal: AbortSignal;
  /** Settles once interrupted. */
  readonly interrupted: Promise<void>;
  /** Stops listening for the signals (idempotent). */
  dispose(): void;
}

export function interruption(): Interruption {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    interrupted: new Promise((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true })),
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
