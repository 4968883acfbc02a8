import type { GroupSnapshot } from './observe.js';

/** What `changes` needs of a monitor: its 'change' event. */
interface ChangeSource {
  on(event: 'change', listener: (snapshot: GroupSnapshot) => void): unknown;
  off(event: 'change', listener: (snapshot: GroupSnapshot) => void): unknown;
}

/**
 * A monitor's changes as an async iterator: `current` (if any), then one snapshot per 'change'
 * event of `source`, until `closed()`. A pending `next()` waits on a waker in `wakers`, which the
 * monitor calls when it closes.
 */
export function changes(
  source: ChangeSource,
  current: GroupSnapshot | undefined,
  closed: () => boolean,
  wakers: Set<() => void>,
): AsyncIterator<GroupSnapshot> {
  const queue: GroupSnapshot[] = current ? [current] : [];
  let wake: (() => void) | undefined;
  const onChange = (snapshot: GroupSnapshot) => {
    queue.push(snapshot);
    wake?.();
  };
  source.on('change', onChange);
  const finish = (): IteratorReturnResult<undefined> => {
    source.off('change', onChange);
    if (wake) wakers.delete(wake);
    return { done: true, value: undefined };
  };
  return {
    next: async () => {
      while (queue.length === 0) {
        if (closed()) return finish();
        await new Promise<void>((resolve) => {
          wake = resolve;
          wakers.add(resolve);
        });
        if (wake) wakers.delete(wake);
        wake = undefined;
      }
      return { done: false, value: queue.shift() as GroupSnapshot };
    },
    return: async () => finish(),
  };
}
