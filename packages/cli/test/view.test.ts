import { stripVTControlCharacters } from 'node:util';
import type { GroupSnapshot, MonitoredMember, Transition } from '@understudy/core';
import { describe, expect, it } from 'vitest';
import { liveView } from '../src/commands/monitor/view.js';

// Issue 19 item 9: the live view fits the terminal, whatever the group's size.

function group(size: number, activeGoal: number): GroupSnapshot {
  const members: MonitoredMember[] = Array.from({ length: size }, (_, i) => ({
    id: `host-${String(i).padStart(3, '0')}.example.com:${1000 + i}:abcd1234`,
    weight: 1000 - i,
    rank: i + 1,
    // The actives are not all at the top: a weight change can leave one further down.
    state: i < activeGoal - 1 || i === size - 1 ? 'active' : i === activeGoal ? 'preparing' : 'standby',
    epoch: i < activeGoal - 1 || i === size - 1 ? 100 + i : undefined,
    leaseRemainingMs: 2500,
    slot: undefined,
    host: undefined,
    pid: undefined,
  }));
  return {
    group: 'big',
    activeCount: activeGoal,
    activeGoal,
    activationInterval: 3000,
    heartbeatInterval: 1000,
    version: 42,
    epoch: 400,
    quarantineRemainingMs: 0,
    members,
    serverTime: Date.now(),
  };
}

const transitions: Transition[] = Array.from({ length: 20 }, (_, i) => ({
  id: `${i}-0`,
  time: Date.now(),
  type: 'activate',
  member: `host-${i}`,
  epoch: i,
}));

describe('the live view of monitor', () => {
  it.each([
    { width: 120, height: 30, size: 200, goal: 5 },
    { width: 50, height: 15, size: 200, goal: 5 },
    { width: 50, height: 15, size: 2, goal: 1 },
    { width: 80, height: 8, size: 200, goal: 3 },
  ])(
    'fits $size members on $width×$height: headline and actives shown, the rest summarised',
    ({ width, height, size, goal }) => {
      const s = group(size, goal);
      const lines = liveView(s, { width, height, colour: true, elapsedMs: 0, transitions, history: 8 });
      const plain = lines.map((l) => stripVTControlCharacters(l));

      expect(lines.length).toBeLessThanOrEqual(height - 1);
      for (const line of plain) expect(line.length).toBeLessThanOrEqual(width);
      expect(plain[0]).toMatch(/^group big · \d+\/\d+ active · \d+ members?/);
      const actives = s.members.filter((m) => m.state !== 'standby');
      for (const m of actives)
        expect(plain.some((l) => l.includes(` ${m.rank} `) || l.startsWith(`${m.rank} `))).toBe(true);
      const shown = plain.filter((l) => /^\d+\s/.test(l)).length;
      if (shown < size) {
        expect(plain).toContainEqual(
          expect.stringMatching(new RegExp(`^… ${size - shown} more members not shown \\(\\d+ standby\\)$`)),
        );
      }
    },
  );

  it('shows every member and the latest transitions when there is room', () => {
    const lines = liveView(group(3, 1), {
      width: 120,
      height: 30,
      colour: false,
      elapsedMs: 0,
      transitions,
      history: 8,
    });
    expect(lines.filter((l) => /^\d+\s/.test(l))).toHaveLength(3);
    expect(lines).toContain('Latest transitions');
    expect(lines.filter((l) => l.startsWith('  ') && l.includes('activate'))).toHaveLength(8);
  });

  it('says Redis is unreachable, since when, and that what it shows may be stale', () => {
    const since = Date.now() - 12_000;
    const [headline] = liveView(group(3, 1), {
      width: 200,
      height: 30,
      colour: false,
      elapsedMs: 0,
      transitions: [],
      history: 0,
      unreachable: { since, error: 'connect ECONNREFUSED', now: since + 12_000 },
    });
    expect(headline).toMatch(
      /^group big · Redis unreachable since \d\d:\d\d:\d\d\.\d{3} \(12 s\): connect ECONNREFUSED · showing what was read at/,
    );
  });
});
