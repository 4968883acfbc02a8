import { Mutex, Semaphore } from 'redis-semaphore';
import { peerClient } from './connection.js';
import type { StartCandidate } from './types.js';

/**
 * redis-semaphore's Mutex (or Semaphore with `slots` permits): `acquire()` polls at the
 * library's default retry interval (10 ms) until it gets the lock, the library refreshes it
 * every H, and `onLockLost` fires when a refresh finds it gone.
 */
export const startSemaphore: StartCandidate = async (config, { id }, emit) => {
  const client = peerClient(config, { maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  let holding = false;
  const options = {
    lockTimeout: config.activationMs,
    refreshInterval: config.heartbeatMs,
    acquireTimeout: Number.POSITIVE_INFINITY,
    identifier: id,
    onLockLost: () => {
      if (!holding) return;
      holding = false;
      emit('lost', { member: id, reason: 'refresh-failed' });
    },
  };
  const lock =
    config.kind === 'mutex'
      ? new Mutex(client, config.key, options)
      : new Semaphore(client, config.key, config.slots, options);
  const abort = new AbortController();
  lock.acquire(abort.signal).then(
    () => {
      holding = true;
      emit('acquired', { member: id });
    },
    () => undefined, // aborted by leave()
  );
  return {
    async leave() {
      abort.abort();
      if (holding) {
        holding = false;
        emit('released', { member: id, reason: 'leave' });
        await lock.release().catch(() => undefined);
      }
      client.disconnect();
    },
  };
};
