import { type Lock, Redlock } from '@sesamecare-oss/redlock';
import { peerClients } from './connection.js';
import type { StartCandidate } from './types.js';

/**
 * The leader loop people write with redlock: try to take the lock (retrying at redlock's
 * default 200 ± 100 ms), extend it every H while holding, and stop believing when an
 * extension fails or the lock's validity (`expiration` = start + TTL − drift) runs out.
 */
export const startRedlock: StartCandidate = async (config, { id }, emit) => {
  // One client per server: one Redis, or the K independent servers of a quorum (Redlock proper).
  const clients = peerClients(config, { maxRetriesPerRequest: 0, commandTimeout: config.heartbeatMs });
  for (const client of clients) client.on('error', () => undefined);
  const redlock = new Redlock(clients, { retryCount: 0 });
  const { retryDelay, retryJitter } = redlock.settings;
  const A = config.activationMs;
  let stopped = false;
  let lock: Lock | undefined;
  let extendTimer: NodeJS.Timeout | undefined;
  let validityTimer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const drop = (why: 'lost' | 'released', reason: string) => {
    if (!lock) return;
    clearTimeout(extendTimer);
    clearTimeout(validityTimer);
    emit(why, { member: id, reason });
    const held = lock;
    lock = undefined;
    // The loop waits while it holds the lock: wake it to try again (an expiry, too).
    wake?.();
    return held;
  };
  const armValidity = () => {
    clearTimeout(validityTimer);
    const current = lock;
    if (!current) return;
    validityTimer = setTimeout(() => drop('lost', 'expired'), Math.max(0, current.expiration - Date.now()));
  };
  const extend = async () => {
    const current = lock;
    if (!current || stopped) return;
    try {
      const extended = await current.extend(A);
      // Dropped while the extension was in flight (its validity ran out, or a leave): the loop
      // no longer believes it holds, so the lock it extended is given back, not kept unseen.
      if (lock !== current) {
        await extended.release().catch(() => undefined);
        return;
      }
      lock = extended;
      armValidity();
      extendTimer = setTimeout(extend, config.heartbeatMs);
    } catch {
      if (lock === current) drop('lost', 'extend-failed');
    }
  };
  const loop = async () => {
    while (!stopped) {
      if (!lock) {
        try {
          lock = await redlock.acquire([config.key], A);
          if (stopped) {
            await lock.release().catch(() => undefined);
            return;
          }
          emit('acquired', { member: id });
          armValidity();
          extendTimer = setTimeout(extend, config.heartbeatMs);
          continue;
        } catch {
          // held by someone else: try again after redlock's retry delay
        }
        const delay = retryDelay + Math.floor((Math.random() * 2 - 1) * retryJitter);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, delay);
        });
      } else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
  };
  void loop();
  return {
    async leave() {
      stopped = true;
      const held = drop('released', 'leave');
      wake?.();
      if (held) await held.release().catch(() => undefined);
      for (const client of clients) client.disconnect();
    },
  };
};
