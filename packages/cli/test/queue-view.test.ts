import type { QueueSnapshot } from '@understudy/core';
import { describe, expect, it } from 'vitest';
import { queueView } from '../src/commands/queue/view.js';

const NOW = 1_796_507_744_984;

function queue(workers: number, inFlight: number): QueueSnapshot {
  return {
    queue: 'thumbnails',
    createdAt: NOW - 60_000,
    serverTime: NOW,
    depth: 7,
    inFlight,
    dead: 0,
    workers: Array.from({ length: workers }, (_, i) => ({
      id: `w${i}`,
      weight: 10,
      capacity: 100,
      inFlight: Math.min(100, inFlight - i * 100),
      activationInterval: 3000,
      leaseRemainingMs: 2000,
      lastReceivedAt: NOW - 1500,
    })),
    // What a read lists: the 100 soonest to expire; the first one expired already.
    tasks: Array.from({ length: Math.min(100, inFlight) }, (_, i) => ({
      id: `${NOW - 10_000 + i}-0`,
      worker: `w${i % workers}`,
      deliveries: 1,
      token: (NOW - 10_000 + i) * 1000,
      remainingMs: i * 100,
    })),
    quarantineUntil: NOW + 1200,
    quarantineReason: 'server-changed',
  };
}

describe('the queue view', () => {
  it('shows everything without a height: the headline, every worker, the tasks listed and how many more', () => {
    const lines = queueView(queue(3, 250), false);

    expect(lines[0]).toBe(
      'queue thumbnails · depth 7 · 250 in flight · 3 workers · 0 dead letters · quarantine 1.2s (server-changed)',
    );
    expect(lines[2]).toMatch(/^\s+w0\s+10\s+100\s+100\s+\S+ 2\.0s\s+\d\d:\d\d:\d\d\.\d{3} \(1\.5s ago\)$/);
    expect(lines.filter((l) => /^\s+\d+-0\s/.test(l))).toHaveLength(100);
    expect(lines.find((l) => l.includes(`${NOW - 10_000}-0`))).toMatch(/expired$/);
    expect(lines.at(-1)).toBe('  … 150 more in flight');
  });

  it('fits a terminal: the tasks get the room the workers leave, and say how many more are in flight', () => {
    const lines = queueView(queue(3, 250), false, 0, 12);

    expect(lines).toHaveLength(11);
    expect(lines[0]).toMatch(/^queue thumbnails · /);
    // Headline, worker header, three workers, a blank line, the task header: room for 3 tasks.
    expect(lines.filter((l) => /^\s+\d+-0\s/.test(l))).toHaveLength(3);
    expect(lines.at(-1)).toBe('  … 247 more in flight');
  });

  it('ages leases, deadlines and the quarantine by the time since the read', () => {
    const lines = queueView(queue(1, 2), false, 1500);

    expect(lines[0]).not.toContain('quarantine');
    expect(lines[2]).toMatch(/ 0\.5s\s+\S+ \(3\.0s ago\)$/);
    expect(lines.filter((l) => l.endsWith('expired'))).toHaveLength(2);
  });
});
