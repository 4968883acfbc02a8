import { describe, expect, it } from 'vitest';
import { decide, type ServerWord, type Situation, type Step } from '../src/member/decide.js';

// The table of docs/member-state-machine.md ("Converging"), row by row, without Redis: what the
// member does given the group's word and its own ledger.

/** A row gives what differs from a standby member with nothing held; `settling` lists epochs whose handler runs. */
type Given = Partial<Omit<Situation, 'server' | 'settling'>> & { server: Partial<ServerWord>; settling?: number[] };
type Row = [name: string, given: Given, steps: Step[]];

function situation(row: Given): Situation {
  const settling = new Set(row.settling ?? []);
  return {
    held: undefined,
    floor: 0,
    pending: undefined,
    state: 'standby',
    quarantined: false,
    idle: true,
    ...row,
    settling: (epoch) => settling.has(epoch),
    server: { role: 'standby', epoch: 0, slot: -1, reason: '', confirmed: true, ...row.server },
  };
}

const ROWS: Row[] = [
  // group says active E
  [
    'active E from a renewal, nothing held, E above the floor: activate',
    { server: { role: 'active', epoch: 5 }, floor: 4 },
    [{ do: 'activate', epoch: 5 }],
  ],
  [
    'active E from another reply: renew first (only a renewal delivers)',
    { server: { role: 'active', epoch: 5, confirmed: false } },
    [{ do: 'renew' }],
  ],
  ['active E already pending: nothing more', { server: { role: 'active', epoch: 5 }, pending: 5 }, []],
  [
    'active E at the floor: release it, never deliver it again',
    { server: { role: 'active', epoch: 5, reason: 'failover' }, floor: 5 },
    [{ do: 'release', epoch: 5, reason: 'lease-lost' }],
  ],
  [
    'active E below the floor: release it',
    { server: { role: 'active', epoch: 3 }, floor: 5 },
    [{ do: 'release', epoch: 3, reason: 'lease-lost' }],
  ],
  [
    'active E at the floor while its deactivate handler runs: wait',
    { server: { role: 'active', epoch: 5 }, floor: 5, settling: [5] },
    [],
  ],
  ['active E, E held: steady state', { server: { role: 'active', epoch: 5 }, held: 5, state: 'active' }, []],
  [
    "active E, E' held: deactivate E' (lease-lost) and release it",
    { server: { role: 'active', epoch: 6 }, held: 5, state: 'active' },
    [{ do: 'deactivate', reason: 'lease-lost', release: true, advise: false }],
  ],
  [
    'active E, another epoch pending: revoke it, activate E',
    { server: { role: 'active', epoch: 6 }, pending: 5 },
    [
      { do: 'revoke', epoch: 5 },
      { do: 'activate', epoch: 6 },
    ],
  ],
  // group says releasing E
  [
    'releasing E, E held: deactivate with the group’s reason, then release',
    { server: { role: 'releasing', epoch: 5, reason: 'preempted' }, held: 5, state: 'active' },
    [{ do: 'deactivate', reason: 'preempted', release: true, advise: false }],
  ],
  [
    'releasing E, nothing held: release E',
    { server: { role: 'releasing', epoch: 5, reason: 'goal-lowered' } },
    [
      { do: 'retire', epoch: 5 },
      { do: 'release', epoch: 5, reason: 'goal-lowered' },
    ],
  ],
  [
    'releasing E, nothing held, handler still running: retire only',
    { server: { role: 'releasing', epoch: 5, reason: 'preempted' }, settling: [5] },
    [{ do: 'retire', epoch: 5 }],
  ],
  [
    "releasing E, E' held: deactivate E' and release E (F19)",
    { server: { role: 'releasing', epoch: 6, reason: 'preempted' }, held: 5, state: 'active' },
    [
      { do: 'deactivate', reason: 'lease-lost', release: true, advise: false },
      { do: 'retire', epoch: 6 },
      { do: 'release', epoch: 6, reason: 'preempted' },
    ],
  ],
  [
    'releasing E pending: revoke, retire, release',
    { server: { role: 'releasing', epoch: 5, reason: 'preempted' }, pending: 5 },
    [
      { do: 'revoke', epoch: 5 },
      { do: 'retire', epoch: 5 },
      { do: 'release', epoch: 5, reason: 'preempted' },
    ],
  ],
  // group says standby, preparing or gone
  [
    'standby, E held: deactivate (lease-lost), advisory, no release',
    { server: { role: 'standby' }, held: 5, state: 'active' },
    [{ do: 'deactivate', reason: 'lease-lost', release: false, advise: true }],
  ],
  [
    'gone, E held: deactivate (lease-lost)',
    { server: { role: 'gone' }, held: 5, state: 'active' },
    [{ do: 'deactivate', reason: 'lease-lost', release: false, advise: true }],
  ],
  [
    'standby during quarantine, E held: deactivate (quarantine)',
    { server: { role: 'standby' }, held: 5, state: 'active', quarantined: true },
    [{ do: 'deactivate', reason: 'quarantine', release: false, advise: true }],
  ],
  [
    'standby, E pending: revoke it (granted, then taken back)',
    { server: { role: 'standby' }, pending: 5 },
    [{ do: 'revoke', epoch: 5 }],
  ],
  ['preparing, not prepared: prepare', { server: { role: 'preparing' } }, [{ do: 'prepare' }]],
  ['preparing, already prepared: nothing', { server: { role: 'preparing' }, state: 'preparing' }, []],
  [
    'standby while preparing and idle: the hint was withdrawn',
    { server: { role: 'standby' }, state: 'preparing' },
    [{ do: 'withdraw-prepare' }],
  ],
  [
    'standby while preparing, a handler running: wait',
    { server: { role: 'standby' }, state: 'preparing', idle: false },
    [],
  ],
  ['standby, nothing held: nothing', { server: { role: 'standby' } }, []],
  ['gone, nothing held: nothing (the next renewal adds it again)', { server: { role: 'gone' } }, []],
];

describe('the decision table', () => {
  it.each(ROWS)('%s', (_name, row, steps) => {
    expect(decide(situation(row))).toEqual(steps);
  });

  it('is pure: the same situation gives the same steps', () => {
    for (const [, row] of ROWS) expect(decide(situation(row))).toEqual(decide(situation(row)));
  });
});
