import type { QueueSnapshot } from '@understudy/core';
import pc from 'picocolors';
import { clock, columns, header, leaseBar, plural, seconds, shown } from '../../format.js';

/** The quarantine left, `1.2s (server-changed)`, or '' with none. */
export function quarantine(s: QueueSnapshot, elapsedMs = 0): string {
  const left = s.quarantineUntil - s.serverTime - elapsedMs;
  if (s.quarantineUntil === 0 || left <= 0) return '';
  return `${seconds(left)}${s.quarantineReason ? ` (${shown(s.quarantineReason)})` : ''}`;
}

/** `queue thumbnails · depth 3 · 2 in flight · 2 workers · 0 dead letters`. */
export function queueHeadline(s: QueueSnapshot, colour: boolean, elapsedMs = 0): string {
  const depth = `depth ${s.depth}`;
  const waiting = s.depth > 0 && s.workers.every((w) => w.inFlight >= w.capacity);
  const dead = plural(s.dead, 'dead letter');
  const left = quarantine(s, elapsedMs);
  const held = left && `quarantine ${left}`;
  return [
    `queue ${shown(s.queue)}`,
    colour && waiting ? pc.yellow(depth) : depth,
    `${s.inFlight} in flight`,
    plural(s.workers.length, 'worker'),
    colour && s.dead > 0 ? pc.red(dead) : dead,
    ...(held ? [colour ? pc.red(held) : held] : []),
  ].join(' · ');
}

/**
 * The queue in full: the headline, its workers (heaviest first) and its tasks in flight (the
 * soonest to expire first); `elapsedMs` ages the times since the snapshot was read. Within
 * `height` lines (a terminal's), the tasks get the room the workers leave, and the view is cut
 * to one line less (log-update keeps the cursor on a line of its own).
 */
export function queueView(
  s: QueueSnapshot,
  colour: boolean,
  elapsedMs = 0,
  height = Number.POSITIVE_INFINITY,
): string[] {
  const lines = [queueHeadline(s, colour, elapsedMs)];
  if (s.workers.length === 0) lines.push('  (no workers)');
  else {
    const rows = s.workers.map((w) => [
      shown(w.id),
      String(w.weight),
      String(w.capacity),
      String(w.inFlight),
      leaseBar(w.leaseRemainingMs - elapsedMs, w.activationInterval),
      w.lastReceivedAt > 0
        ? `${clock(w.lastReceivedAt)} (${seconds(s.serverTime + elapsedMs - w.lastReceivedAt)} ago)`
        : '-',
    ]);
    const titles = ['WORKER', 'WEIGHT', 'CAPACITY', 'IN FLIGHT', 'LEASE', 'LAST RECEIVED'];
    lines.push(...columns([header(titles, colour), ...rows]).map((l) => `  ${l}`));
  }
  // The blank line, the header and the line saying how many more are in flight.
  const room = Math.max(0, height - 1 - lines.length - 3);
  const tasks = s.tasks.slice(0, room);
  if (tasks.length > 0) {
    const rows = tasks.map((t) => [
      shown(t.id),
      shown(t.worker),
      String(t.deliveries),
      String(t.token),
      t.remainingMs - elapsedMs > 0 ? seconds(t.remainingMs - elapsedMs) : 'expired',
    ]);
    lines.push(
      '',
      ...columns([header(['TASK', 'WORKER', 'DELIVERY', 'TOKEN', 'EXPIRES IN'], colour), ...rows]).map((l) => `  ${l}`),
    );
    const more = s.inFlight - tasks.length;
    if (more > 0) lines.push(`  … ${more} more in flight`);
  }
  return lines.slice(0, Math.max(1, height - 1));
}
