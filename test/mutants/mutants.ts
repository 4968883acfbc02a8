// Semantic mutants of the core (`pnpm mutants`, docs/RELIABILITY.md "Mutants"): each breaks one
// rule of DESIGN §2 (or the demote-before-promote handover of §1) with a small edit, and names
// the tests of the default run that must catch it. `find` must occur exactly once in `file`:
// when the code moves, the runner says the mutant no longer applies, and it is updated here.

export interface MutantTest {
  /** A test file of the default run, from the repository root. */
  file: string;
  /** Only the tests whose full name contains this (vitest `-t`); all of the file's when absent. */
  name?: string;
}

export interface Mutant {
  id: string;
  /** The rule it breaks: S1–S7, L1–L3 (DESIGN §2), `handover` (§1) or `§11` (a queue's own rules). */
  rule: string;
  /** What the mutant does, in words. */
  breaks: string;
  file: string;
  find: string;
  replace: string;
  /** Tried in order; the first that fails kills the mutant. */
  tests: readonly MutantTest[];
}

const MEMBER = 'packages/core/src/member/member.ts';
const LEASE = 'packages/core/src/member/lease.ts';
const CLOCK = 'packages/core/src/member/clock.ts';
const VIEW = 'packages/core/src/member/view.ts';
const LEDGER = 'packages/core/src/member/ledger.ts';
const COMMON = 'packages/core/src/lua/common.lua';
const LIB = 'packages/core/src/lua/lib.lua';
const FAULTS = 'test/fault-injection.test.ts';
const RENEW = 'packages/core/src/lua/renew.lua';
const STEADY = 'packages/core/test/steady-renewal.test.ts';
const QUORUM_MEMBER = 'packages/core/src/member/quorum-member.ts';
const QUEUE_LIB = 'packages/core/src/lua/queue/lib.lua';
const QUEUE_FAULTS = 'packages/core/test/queue-faults.test.ts';

export const MUTANTS: readonly Mutant[] = [
  // ---- the seven of issue 13 ----
  {
    id: 's4-t0-after-reply',
    rule: 'S4',
    breaks: 'the lease is extended from the reply’s arrival instead of from t0 taken before sending',
    file: LEASE,
    find: '    const deadline = leaseDeadline(sentAt, a, s.clockDrift, margin);',
    replace: '    const deadline = leaseDeadline(s.clock.now(), a, s.clockDrift, margin);',
    tests: [{ file: 'packages/core/test/lease.test.ts', name: 'runs from t0' }],
  },
  {
    id: 's4-isactive-ignores-deadline',
    rule: 'S4',
    breaks: '`isActive()` ignores the lease deadline',
    file: MEMBER,
    find: "    return this.state === 'active' && this.#ledger.held !== undefined && this.#lease.valid();",
    replace: "    return this.state === 'active' && this.#ledger.held !== undefined;",
    tests: [{ file: 'packages/core/test/lease.test.ts' }],
  },
  {
    id: 's6-no-quarantine-on-server-change',
    rule: 'S6',
    breaks: 'no quarantine when the script runs on another server than the one that last wrote the group',
    file: LIB,
    find: '  G.repl_id = repl_id\n  G.quarantine_until = G.now + G.activation\n',
    replace: '  G.repl_id = repl_id\n  G.quarantine_until = G.now\n',
    tests: [
      { file: 'packages/core/test/failover.test.ts', name: 'holds every grant for A when the group was last written' },
    ],
  },
  {
    id: 's2-epoch-stored-plus-one',
    rule: 'S2',
    breaks: 'the epoch is only the stored epoch + 1, not also above Redis’s time',
    file: COMMON,
    find: '  local n = math.max(S[field] + 1, S.now * 1000)',
    replace: '  local n = S[field] + 1',
    tests: [
      { file: 'packages/core/test/epochs.test.ts' },
      { file: 'packages/core/test/failover.test.ts', name: 'activates nobody for A after a restart that outlived' },
    ],
  },
  {
    id: 'handover-releasing-not-held',
    rule: 'handover',
    breaks: 'a releasing slot is not counted as held, so the preemptor is granted before the old holder stopped',
    file: LIB,
    find: '    count = count + 1\n',
    replace: "    if s.s == 'active' then count = count + 1 end\n",
    tests: [
      { file: 'packages/core/test/handover.test.ts', name: 'waits for its handler before activating the newcomer' },
      { file: FAULTS, name: 'pub/sub connections killed during a preemption' },
    ],
  },
  {
    id: 's5-offline-queue',
    rule: 'S5',
    breaks: 'the lease connection queues commands while disconnected and resends them after a reconnect',
    file: 'packages/core/src/connections/settings.ts',
    find: '    enableOfflineQueue: false,\n    autoResendUnfulfilledCommands: false,\n',
    replace: '    enableOfflineQueue: true,\n    autoResendUnfulfilledCommands: true,\n',
    tests: [{ file: FAULTS, name: 'blackhole of an active' }],
  },
  {
    id: 's4-late-reply-extends',
    rule: 'S4',
    breaks: 'a renewal reply handled after the deadline extends the lease instead of finding it lost',
    file: LEASE,
    find: '    this.check();\n    this.#extend(reply, margin);',
    replace: '    this.#extend(reply, margin);',
    tests: [{ file: 'packages/core/test/lease.test.ts' }],
  },
  // ---- the findings of issue 13 that the core fixes, one each ----
  {
    id: 's6-delivers-retired-epoch',
    rule: 'S6',
    breaks: 'the member keeps no ledger: it may deliver an epoch it has seen released or revoked',
    file: LEDGER,
    find: '    if (epoch > this.#floor) this.#floor = epoch;\n',
    replace: '',
    tests: [
      { file: 'packages/core/test/ledger.test.ts' },
      {
        file: 'packages/core/test/lost-state.test.ts',
        name: 'never delivers a grant that was given back on the old master',
      },
    ],
  },
  {
    id: 's6-missing-key-not-lost',
    rule: 'S6',
    breaks: 'a group key that is missing (deleted, evicted) is not treated as lost state',
    file: LIB,
    find: "  lost_state(G, table.concat(lost, ','))\n",
    replace: '',
    tests: [{ file: 'packages/core/test/lost-state.test.ts', name: 'DEL of the' }],
  },
  // ---- at least one per rule of DESIGN §2 ----
  {
    id: 's1-lease-ignores-drift',
    rule: 'S1',
    breaks: 'a member believes for A after t0, ignoring clock drift (ρ) and event-loop lag (δ)',
    file: CLOCK,
    find: '  return sentAt + activationInterval * (1 - clockDrift) - margin;',
    replace: '  return sentAt + activationInterval;',
    tests: [{ file: FAULTS, name: 'member clocks drifting at the bound' }],
  },
  {
    id: 's3-coarse-redis-clock',
    rule: 'S3',
    breaks: 'scripts read Redis’s clock to the second, so leases lapse up to a second early',
    file: COMMON,
    find: '  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)',
    replace: '  return tonumber(t[1]) * 1000',
    tests: [
      { file: 'packages/core/test/failover.test.ts', name: 'activates the ranking standby within A of a SIGKILL' },
      { file: FAULTS, name: 'SIGKILL of the active' },
    ],
  },
  {
    id: 's7-deaf-after-a-future-version',
    rule: 'S7',
    breaks: 'a reply no longer resets what the member last heard: one announcement from the future deafens it',
    file: VIEW,
    find: '      this.#heardVersion = view.version;\n',
    replace: '',
    tests: [{ file: 'packages/core/test/announcements.test.ts' }, { file: 'packages/core/test/stale-server.test.ts' }],
  },
  {
    id: 'l1-lowest-ranked-desired',
    rule: 'L1',
    breaks: 'the group keeps the lowest-ranked live members active instead of the top ones',
    file: LIB,
    find: "  if not G.quorum then return call('ZRANGE', K.rank, 0, count - 1) end",
    replace: "  if not G.quorum then return call('ZRANGE', K.rank, -count, -1) end",
    tests: [{ file: 'packages/core/test/ranking.test.ts' }],
  },
  {
    id: 'l1-quarantine-left-open',
    rule: 'L1',
    breaks: 'a renewal after a quarantine ended does not reconcile: a preemption it held back never runs',
    file: LIB,
    find: '  if G.quarantine_until > 0 then return true end',
    replace: '  if false then return true end',
    tests: [{ file: 'packages/core/test/lost-state.test.ts', name: 'joined during the quarantine' }],
  },
  {
    id: 'l1-second-quarantine',
    rule: 'L1',
    breaks: 'a lost-state quarantine does not look at the server: the next grant waits out a second one',
    file: LIB,
    find: '  if G.activation > 0 and not server_changed(G) then',
    replace: '  if G.activation > 0 then',
    tests: [{ file: 'packages/core/test/lost-state.test.ts', name: 'costs one quarantine' }],
  },
  {
    id: 'l2-no-takeover-timer',
    rule: 'L2',
    breaks: 'the next in line arms no timer at the actives’ lease deadline: it notices a lapse at its next renewal',
    file: 'packages/core/src/member/lease.ts',
    find: '    if (!watching || view.watchDeadline <= 0) return;',
    replace: '    if (!watching || view.watchDeadline > -1) return;',
    tests: [{ file: 'packages/core/test/takeover.test.ts' }],
  },
  {
    id: 'l3-leave-without-script',
    rule: 'L3',
    breaks: 'leave() gives nothing back: the next member waits for the lease to lapse',
    file: MEMBER,
    find: '      await this.#calls.leave();',
    replace: '      await Promise.resolve();',
    tests: [
      {
        file: 'packages/core/test/handover.test.ts',
        name: 'activates the next member at once when the active one leaves',
      },
    ],
  },
  // ---- the steady-state renewal (issue 15): each check it skips is one the full renewal makes ----
  {
    id: 's7-steady-ignores-version',
    rule: 'S7',
    breaks: 'a renewal answers shortly whatever version the member knows: it never learns of a change',
    file: RENEW,
    find: '  if c[1] ~= ARGV[14] or c[2] ~= ARGV[13]',
    replace: '  if c[2] ~= ARGV[13]',
    tests: [{ file: STEADY, name: 'another member joins' }],
  },
  {
    id: 's6-steady-ignores-own-slot',
    rule: 'S6',
    breaks: 'a steady renewal takes the slot a holder claims as listed for it, whatever the slots say (slots restored)',
    file: RENEW,
    find: "    local s = redis.call('HGET', KEYS[5], ARGV[11])",
    replace: `    local s = '"m":"' .. id .. '","e":"' .. ARGV[10] .. '","s":"active",' .. nonce`,
    tests: [{ file: STEADY, name: 'older copy of the slots' }],
  },
  {
    id: 's6-steady-ignores-lost-keys',
    rule: 'S6',
    breaks: 'a steady renewal does not notice a key of the group deleted or evicted',
    file: RENEW,
    find: "  if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[5]) ~= (held > 0 and 5 or 4) then return nil end",
    replace: '',
    tests: [{ file: STEADY, name: 'the rank key is lost' }],
  },
  {
    id: 's6-steady-ignores-lease-end',
    rule: 'S6',
    breaks: 'a steady renewal does not notice a lease that ends before its member was told (leases restored)',
    file: RENEW,
    find: '      if old < told then',
    replace: '      if false then',
    tests: [{ file: STEADY, name: 'older copy of the leases' }],
  },
  {
    id: 's7-seal-ignores-version',
    rule: 'S7',
    breaks: 'a standby renews steadily on any seal, whatever version the member knows: it never learns of a change',
    file: RENEW,
    find: '    if not stamp or string.find(stamp, head, 1, true) ~= 1 then return nil end',
    replace: '    if not stamp then return nil end',
    tests: [{ file: STEADY, name: 'another member joins' }],
  },
  {
    id: 's7-seal-outlives-partial-script',
    rule: 'S7',
    breaks:
      'a script that changes the config and stops part way leaves the seal: standbys renew steadily on a config they never saw',
    file: LIB,
    find: "    call('HDEL', K.config, 'stamp')\n    unsealed = true",
    replace: '    unsealed = true',
    tests: [{ file: STEADY, name: 'stopped part way' }],
  },
  {
    id: 's6-seal-ignores-quarantine',
    rule: 'S6',
    breaks: 'the config is sealed during a quarantine: standbys renew steadily and none closes it once it ends',
    file: LIB,
    find: "c[5] and c[6] == '0' and c[7]",
    replace: 'c[5] and c[7]',
    tests: [{ file: STEADY, name: 'quarantined' }],
  },
  {
    id: 's6-lapse-trusts-leases',
    rule: 'S6',
    breaks:
      'a lease an older copy of the leases ended is taken as lapsed by any script: a join drops the live holder and takes its slot',
    file: LIB,
    find: "    if type(left) == 'number' and left > 0 and G.now + left > lease + HB_SLACK then",
    replace: '    if false then',
    tests: [{ file: 'packages/core/test/s6-review.test.ts', name: 'a join right after it drops no live member' }],
  },
  // ---- queues: keys restored from an older copy (S6 for queues, DESIGN §11) ----
  {
    id: 's6-queue-completion-trusts-record',
    rule: 'S6',
    breaks:
      'a completion is judged by the delivery record alone: one restored from an older copy lets the worker the task was taken from complete it, or hand it back while another runs it',
    file: 'packages/core/src/lua/queue/complete.lua',
    find: 'elseif named and holder ~= nil and holder ~= consumer(id) then',
    replace: 'elseif false then',
    // (The first test through the scripts alone: through workers, a renewal may take the record
    // back before the completion arrives, and the mutant then survives a run on a busy machine.)
    tests: [
      { file: QUEUE_FAULTS, name: 'refuses, with no timing to it, the completion an older record names' },
      { file: QUEUE_FAULTS, name: 'refuses the completion of the worker a task was taken from' },
    ],
  },
  {
    id: 's6-queue-expiry-trusts-record',
    rule: 'S6',
    breaks:
      'an expired delivery is handed back from the worker an older record names: the counts of tasks in flight drift from what the workers hold',
    file: QUEUE_LIB,
    find: '    if holder ~= nil and holder ~= consumer(r.w) then',
    replace: '    if false then',
    tests: [{ file: QUEUE_FAULTS, name: 'not the one an older record names' }],
  },
  {
    id: 's6-queue-lapse-trusts-leases',
    rule: 'S6',
    breaks: 'a lease ended by an older copy of the leases drops a live worker and hands its tasks to another',
    file: QUEUE_LIB,
    find: '    if w and w.l > Q.now then',
    replace: '    if false then',
    tests: [{ file: QUEUE_FAULTS, name: 'older copy of the leases' }],
  },
  {
    id: 's6-queue-idle-keys-unchecked',
    rule: 'S6',
    breaks:
      "an idle queue's scripts take its keys as agreeing whatever is missing: a lost workers hash or leases set is not found, and the queue runs on without a quarantine",
    file: QUEUE_LIB,
    find: '(present == 3 and call',
    replace: '(present >= 2 and call',
    tests: [{ file: QUEUE_FAULTS, name: 'idle queue, nothing in flight' }],
  },
  {
    id: 'l1-steady-ignores-server-change',
    rule: 'L1',
    breaks:
      'a steady renewal after a restart does not take the full path: the quarantine the change of server calls for begins only at the next grant, which then waits one A more (F29)',
    file: RENEW,
    find: '  if SEEN_HERE and not SEEN_HERE[KEYS[1]] then return nil end',
    replace: '',
    tests: [{ file: STEADY, name: 'never ran the library' }],
  },
  {
    id: 'l1-full-renewal-ignores-server-change',
    rule: 'L1',
    breaks:
      'the first full renewal on a restarted server does not check it: the quarantine begins only at the next grant (F29)',
    file: RENEW,
    find: '  server_changed(G)\n  if (SEEN_HERE.n',
    replace: '  if (SEEN_HERE.n',
    tests: [{ file: STEADY, name: 'never ran the library' }],
  },
  {
    id: 'queue-dispatch-to-lapsed',
    rule: '§11',
    breaks:
      'a dispatch gives a task to a worker whose lease lapsed while nothing reaped it yet (completions leave the reaping to the renewals)',
    file: QUEUE_LIB,
    find: '    local lapsed = w.l <= Q.now and not Q.reaped',
    replace: '    local lapsed = false',
    tests: [{ file: 'packages/core/test/queue-trim.test.ts', name: 'gives nothing to a worker whose lease lapsed' }],
  },
  // ---- quorum mode (issue 16) ----
  {
    id: 's4-quorum-late-reply',
    rule: 'S4',
    breaks: 'a quorum member handles a reply that came after its quorum deadline before deactivating',
    file: QUORUM_MEMBER,
    find: '          this.#checkDeadline();',
    replace: '',
    tests: [{ file: 'packages/core/test/quorum-member.test.ts', name: 'arrives after the quorum deadline' }],
  },
];
