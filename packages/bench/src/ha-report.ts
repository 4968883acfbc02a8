// Tables and text of the HA family: failover of a group on Sentinel and Cluster, and the
// durability trade.
import { runLine } from './family.js';
import type { DurabilityResult } from './scenarios/durability.js';
import type { HaResult } from './scenarios/ha.js';
import { HA_GOAL } from './scenarios/ha.js';
import type { HaResults } from './scenarios/ha-suite.js';
import { type Summary, summarize } from './stats.js';
import { table } from './table.js';
import { format } from './targets.js';

const TOPOLOGY = { sentinel: 'Sentinel', cluster: 'Cluster' } as const;

const defined = (values: readonly (number | undefined)[]): number[] =>
  values.filter((v): v is number => v !== undefined && Number.isFinite(v));

const cell = (values: readonly (number | undefined)[], key: keyof Summary = 'p50'): string => {
  const present = defined(values);
  return present.length ? format(summarize(present)[key]) : '–';
};

/** A median of counts. */
const countCell = (values: readonly number[], key: keyof Summary = 'p50'): string =>
  values.length ? String(Math.round(summarize(values)[key])) : '–';

/** A median, with how many rounds had the value when not all did. */
const medianOf = (values: readonly (number | undefined)[], n: number): string => {
  const present = defined(values);
  if (!present.length) return 'none';
  return present.length === n ? cell(present) : `${cell(present)} (${present.length} of ${n})`;
};

function caseName(c: HaResult): string {
  return `${TOPOLOGY[c.plan.topology]}, ${c.plan.fault}, ${c.plan.durability}`;
}

/** Medians of each step, ms after the signal to the master. */
export function haTimelineTable(ha: HaResults): string {
  return table(
    [
      'case',
      'A',
      'n',
      'replica promoted',
      'Sentinel +switch-master',
      'members reach the new master',
      'quarantine (S6) from → until',
      'first activation',
      'correct active set',
    ],
    ha.cases.map((c) => {
      const r = c.rounds;
      const n = r.length;
      const quarantined = r.filter((x) => x.quarantineFrom !== undefined);
      return [
        caseName(c),
        String(c.plan.activationMs),
        String(n),
        cell(r.map((x) => x.promoted)),
        c.plan.topology === 'sentinel'
          ? medianOf(
              r.map((x) => x.switchMaster),
              n,
            )
          : 'n/a',
        medianOf(
          r.map((x) => x.reconnected),
          n,
        ),
        quarantined.length
          ? `${cell(quarantined.map((x) => x.quarantineFrom))} → ${cell(quarantined.map((x) => x.quarantineUntil))}` +
            (quarantined.length === n ? '' : ` (${quarantined.length} of ${n})`)
          : 'none',
        medianOf(
          r.map((x) => x.firstActivation),
          n,
        ),
        cell(r.map((x) => x.correct)),
      ];
    }),
  );
}

/** The time to a correct set, its spread, and what the members did meanwhile. */
export function haOutcomeTable(ha: HaResults): string {
  return table(
    [
      'case',
      'A',
      'n',
      'correct set p50',
      'p95',
      'p99',
      'max',
      'actives kept through',
      'activations / failover',
      'member scripts / failover (p50)',
      'WAIT / failover (p50)',
      `most active at once (goal ${HA_GOAL})`,
      'overlap, ms',
      'epochs going back',
      'rounds that failed',
      'master moved again',
    ],
    ha.cases.map((c) => {
      const r = c.rounds;
      const correct = r.map((x) => x.correct);
      return [
        caseName(c),
        String(c.plan.activationMs),
        String(r.length),
        cell(correct),
        cell(correct, 'p95'),
        cell(correct, 'p99'),
        cell(correct, 'max'),
        `${r.reduce((s, x) => s + x.keptActive, 0)} of ${r.length * HA_GOAL}`,
        r.length ? (r.reduce((s, x) => s + x.activations, 0) / r.length).toFixed(1) : '–',
        countCell(r.map((x) => x.scripts)),
        countCell(r.map((x) => x.waits)),
        String(c.maxConcurrency),
        format(c.overlapMs),
        String(c.epochsBack),
        `${c.plan.rounds - r.length} of ${c.plan.rounds}`,
        `${r.filter((x) => x.note?.includes('moved again')).length} of ${r.length}`,
      ];
    }),
  );
}

/** SIGSTOP cases: how long the resumed old master still called itself master. */
export function haResumeTable(ha: HaResults): string {
  const stopped = ha.cases.filter((c) => c.plan.fault === 'SIGSTOP');
  if (!stopped.length) return '';
  return table(
    ['case', 'A', 'n', 'resumed old master → a replica, p50', 'max'],
    stopped.map((c) => {
      const values = c.rounds.map((x) => x.oldMasterDemoted);
      return [
        caseName(c),
        String(c.plan.activationMs),
        `${defined(values).length} of ${c.rounds.length}`,
        cell(values),
        cell(values, 'max'),
      ];
    }),
  );
}

/** The peers through the same Sentinel failovers, next to understudy's cases at the same lease. */
export function haPeerTable(ha: HaResults): string {
  if (!ha.peers.length) return '';
  const ttl = ha.peers[0]?.plan.activationMs;
  const rows = ha.cases
    .filter((c) => c.plan.topology === 'sentinel' && c.plan.durability === 'async' && c.plan.activationMs === ttl)
    .map((c) => {
      const r = c.rounds;
      return [
        `understudy (goal ${HA_GOAL} of 3)`,
        c.plan.fault,
        String(r.length),
        cell(r.map((x) => x.correct)),
        cell(
          r.map((x) => x.correct),
          'p95',
        ),
        cell(
          r.map((x) => x.correct),
          'max',
        ),
        `${r.reduce((s, x) => s + x.keptActive, 0)} of ${r.length * HA_GOAL}`,
        `${c.plan.rounds - r.length} of ${c.plan.rounds}`,
        `${c.maxConcurrency} (${HA_GOAL})`,
        format(c.overlapMs),
      ];
    });
  for (const p of ha.peers) {
    const r = p.rounds;
    rows.push([
      `${p.label} (${p.slots} of ${p.slots + 1})`,
      p.plan.fault,
      String(r.length),
      cell(r.map((x) => x.holders)),
      cell(
        r.map((x) => x.holders),
        'p95',
      ),
      cell(
        r.map((x) => x.holders),
        'max',
      ),
      `${r.reduce((s, x) => s + x.keptHolding, 0)} of ${r.length * p.slots}`,
      `${r.filter((x) => x.holders === undefined).length} of ${r.length}`,
      `${p.maxConcurrency} (${p.slots})`,
      format(p.overlapMs),
    ]);
  }
  return table(
    [
      `Sentinel, lease / TTL ${ttl} ms`,
      'fault',
      'n',
      'fault → holders again, p50',
      'p95',
      'max',
      'holders kept through',
      'not back within 3 A + 20 s',
      'most holding at once (allowed)',
      'overlap, ms',
    ],
    rows,
  );
}

function summaryRow(label: string, values: readonly number[]): string[] {
  const s = summarize(values);
  return [label, String(s.n), format(s.p50), format(s.p95), format(s.p99), format(s.max)];
}

export function durabilityLatencyTable(ha: HaResults): string {
  const rows: string[][] = [];
  for (const d of ha.durability) {
    rows.push(
      summaryRow(
        `${d.durability}: handover (an active leaves → the standby's activate)`,
        d.handovers.map((h) => h.handover),
      ),
    );
    rows.push(
      summaryRow(
        `${d.durability}: preemption (the leaver joins again → its activate)`,
        d.handovers.map((h) => h.preemption),
      ),
    );
  }
  for (const c of ha.cases.filter((x) => x.plan.topology === 'sentinel' && x.plan.fault === 'SIGKILL')) {
    rows.push(
      summaryRow(
        `${c.plan.durability}: master SIGKILL → correct set, A = ${c.plan.activationMs}`,
        c.rounds.map((x) => x.correct),
      ),
    );
  }
  return table(['durability: what, ms', 'n', 'p50', 'p95', 'p99', 'max'], rows);
}

export function durabilityCommandTable(ha: HaResults): string {
  return table(
    [
      'Sentinel, SIGKILL of the master',
      'A',
      'n',
      'member scripts / failover p50 (max)',
      'WAIT / failover p50 (max)',
      'activations / failover',
    ],
    ha.cases
      .filter((x) => x.plan.topology === 'sentinel' && x.plan.fault === 'SIGKILL')
      .map((c) => {
        const r = c.rounds;
        return [
          c.plan.durability,
          String(c.plan.activationMs),
          String(r.length),
          `${countCell(r.map((x) => x.scripts))} (${countCell(
            r.map((x) => x.scripts),
            'max',
          )})`,
          `${countCell(r.map((x) => x.waits))} (${countCell(
            r.map((x) => x.waits),
            'max',
          )})`,
          r.length ? (r.reduce((s, x) => s + x.activations, 0) / r.length).toFixed(1) : '–',
        ];
      }),
  );
}

const total = (d: DurabilityResult, key: 'activations' | 'beforeReplication' | 'withoutGrant' | 'rolledBack') =>
  String(d.rollbacks.filter((r) => r.grantLost).reduce((s, r) => s + r[key], 0));

export function rollbackTable(ha: HaResults): string {
  return table(
    [
      'durability',
      'rounds (grant lost / run)',
      "standby's activations",
      'delivered before any replica had the grant',
      'delivered after the failover without a grant there',
      'taken back',
      'kill → correct set p50 (max)',
      'leave → standby active for good, p50',
    ],
    ha.durability.map((d) => {
      const forced = d.rollbacks.filter((r) => r.grantLost);
      return [
        d.durability,
        `${forced.length} / ${d.rollbacks.length}`,
        total(d, 'activations'),
        total(d, 'beforeReplication'),
        total(d, 'withoutGrant'),
        total(d, 'rolledBack'),
        `${cell(forced.map((r) => r.correct))} (${cell(
          forced.map((r) => r.correct),
          'max',
        )})`,
        cell(forced.map((r) => r.standbyActive)),
      ];
    }),
  );
}

export function durabilitySafetyLine(ha: HaResults): string {
  return ha.durability
    .map(
      (d) =>
        `${d.durability}: most active at once ${d.maxConcurrency} (goal ${HA_GOAL}), overlap ${format(d.overlapMs)} ms, ` +
        `epochs going back ${d.epochsBack}`,
    )
    .join('; ');
}

export function haProblems(ha: HaResults): string[] {
  return [
    ...ha.cases.flatMap((c) => c.problems.map((p) => `${caseName(c)}, A = ${c.plan.activationMs}: ${p}`)),
    ...ha.peers.flatMap((p) => p.problems.map((x) => `${p.label}, ${p.plan.fault}: ${x}`)),
    ...ha.durability.flatMap((d) => d.problems.map((p) => `durability ${d.durability}: ${p}`)),
    ...ha.failures,
  ];
}

/** The HA tables for the console. */
export function haConsoleReport(ha: HaResults): string {
  const problems = haProblems(ha);
  return [
    '## Failover of the group on Sentinel and Cluster (ms after the signal to the master; medians)',
    runLine(ha.run),
    haTimelineTable(ha),
    haOutcomeTable(ha),
    haResumeTable(ha),
    haPeerTable(ha),
    '## Durability: async or replicated (Sentinel)',
    durabilityLatencyTable(ha),
    durabilityCommandTable(ha),
    rollbackTable(ha),
    durabilitySafetyLine(ha),
    ...(problems.length ? ['## HA problems', problems.join('\n')] : []),
  ]
    .filter(Boolean)
    .join('\n\n');
}

/** The HA sections of docs/BENCHMARKS.md. */
export function haMarkdown(ha: HaResults): string {
  const [short, long] = ha.leases;
  const problems = haProblems(ha);
  return [
    '## Failover of the group on Sentinel and Cluster',
    `${runLine(ha.run)} To measure only these sections again: \`pnpm bench --only ha\` (it keeps the other figures of \`docs/bench/results.json\` and writes this file again).`,
    [
      `- **Topologies**, started by the test kit from \`redis-server\` binaries on loopback (\`startSentinelSet()\`, \`startCluster()\`): ${ha.topologies.sentinel}; ${ha.topologies.cluster}. ` +
        'One of each serves every round; after a round the lost master comes back as a replica (restarted empty after a SIGKILL, resumed after a SIGSTOP), and the next round starts once every replica is in sync.',
      `- **The group**: three members, each a process of its own, weights 30, 20 and 10, goal ${HA_GOAL}; H = ${short.heartbeatMs} ms and A = ${short.activationMs} ms (shorter than a Redis failover) or A = ${long.activationMs} ms (longer). ` +
        "They connect as the command line's `--sentinel … --master-name` (ioredis Sentinel options) and `--cluster` (an ioredis Cluster) do.",
      "- **A round**: once the set is correct, at a random phase of the renewals, the master (on Cluster: the master of the group's slot) gets SIGKILL or SIGSTOP at a recorded hrtime. Every time below is measured from that signal.",
      "- **Replica promoted**: the successors (the Sentinel set's replicas; the Cluster master's replica) are asked `ROLE` every 10 ms; the first to answer `master`. **Sentinel +switch-master**: when a Sentinel published it. A client that asks the Sentinels for the master (ioredis, understudy) can find the new one only from then.",
      "- **Members reach the new master**: the first read (every 10 ms) of the new master's `leases` showing a lease that ends after the loss + A, that is a renewal made there.",
      "- **Quarantine**: the new master's `quarantine` log entry (reason `server-changed`): its Redis time, and the end it set (A later), mapped onto hrtime.",
      "- **Correct active set**: the first read from which on (for 3 H, until the round ends) the new master's `slots` hold exactly the two heaviest members, `active`, each with a lease renewed on the new master, and exactly those two believe they are active (their activate / deactivate callbacks).",
      '- **SIGSTOP**: once the set is correct the old master is resumed (SIGCONT). It calls itself master until the Sentinels reconfigure it, or the cluster bus tells it, which the last table times.',
      '- **Member scripts / WAIT per failover**: the `FCALL` + `EVALSHA` + `EVAL` (and `WAIT`) calls the new master served from the fault to the correct set (`INFO commandstats`, after `CONFIG RESETSTAT` on every successor just before the fault; Sentinel and replication send no scripts).',
      "- **Most active at once / overlap**: every member's belief intervals over all rounds of a case, merged. **Epochs going back**: activations whose epoch is not above the epoch of an activation that had ended before they began (S2 as a downstream sees it).",
      "- **Master moved again**: rounds where, before coming to rest, the Sentinels named yet another replica master after the promotion timed here (a second failover). Those rounds' times end at the correct set on the first promoted replica; the safety columns cover the whole round.",
      `- Percentiles are nearest-rank: with ${Math.max(...ha.cases.map((c) => c.plan.rounds))} rounds, p95 and p99 are the largest value.`,
    ].join('\n'),
    '### The steps, medians (ms after the signal)',
    haTimelineTable(ha),
    '### Time to a correct active set, and what the members did',
    haOutcomeTable(ha),
    haResumeTable(ha),
    [
      `With A shorter than the failover (A = ${short.activationMs} ms), the actives' leases run out before any member reaches the new master: they stop on their own (\`lease-lost\`), ` +
        'the first script on the new master that would grant a slot finds another `run_id` and quarantines the group for A (S6), and the two heaviest members are then granted new epochs: ' +
        'the correct set comes back about one A after the members reached the new master.',
      `With A longer than the failover (A = ${long.activationMs} ms), the actives keep their slots when their renewals reach the new master before their leases end, and nothing is quarantined; ` +
        'when they do not, the round goes as with a short A. On Sentinel what counts is when the Sentinels publish +switch-master, not when the replica is promoted.',
    ].join(' '),
    '### The peers through the same failovers',
    "redlock's leader loop and redis-semaphore's Semaphore (2 permits) on the same Sentinel set, TTL = A of the shorter lease, refreshed every H, each holder and standby a process of its own. " +
      'They take an ioredis client made from the same Sentinel options, set as in the single-Redis runs: `maxRetriesPerRequest: 0`, and for redlock a command timeout of H; ' +
      'no `failoverDetector` or `reconnectOnError` (a client that keeps its connection to a paused master does not look for the new one until that connection breaks). ' +
      '"Holders again": from then on (for 3 H) exactly as many processes believed they held as the lock allows (0: the holders never stopped believing, through a failover longer than their TTL); a round where that did not happen within 3 A + 20 s counts under "not back", and its processes are replaced before the next round. ' +
      'A library\'s unhandled promise rejection is reported ("Problems" below) and its process competes on. ' +
      'Neither peer keeps a quarantine: a lock the promoted replica lost is handed out again at once, while its old holder may still believe it holds it until its own refresh fails.',
    haPeerTable(ha),
    '## Durability: async or replicated',
    [
      "`durability: 'replicated'` makes a member renew and send `WAIT 1` (timeout H / 2) before it delivers `activate`, so that the grant is on a replica first; it retries until a replica acknowledges. Measured side by side on the Sentinel set above:",
      `- **Latency**: a group as above (A = ${short.activationMs} ms): a random active leaves, the standby takes over (handover), the leaver joins again and preempts the standby (preemption). The failover rows are the Sentinel SIGKILL cases of the tables above.`,
      '- **Commands per failover**: scripts and WAITs the new master served from the kill to the correct set.',
      `- **The case replication is for** (A = ${long.activationMs} ms, so the members outlive the failover): the master's replicas are cut off (\`CLIENT KILL TYPE replica\`, and the default user loses \`PSYNC\` / \`SYNC\` / \`REPLCONF\` so they cannot come back), ` +
        "the middle member leaves, the standby is granted the slot on the master alone, and the master is SIGKILLed: with 'async' right after the standby's activate callback, with 'replicated' 2 H after the grant. " +
        "A round counts only if the promoted replica indeed lacked the grant. 'Taken back': an activation delivered before the kill that the standby did not keep (it was deactivated, and activated again with a new epoch).",
    ].join('\n'),
    durabilityLatencyTable(ha),
    durabilityCommandTable(ha),
    rollbackTable(ha),
    `Safety over every durability round: ${durabilitySafetyLine(ha)}.`,
    ...(problems.length ? ['### Problems seen during the HA run', problems.map((p) => `- ${p}`).join('\n')] : []),
  ]
    .filter(Boolean)
    .join('\n\n');
}
