// The quorum family's tables, targets and section of docs/BENCHMARKS.md.
import { runLine } from './family.js';
import { QUORUM_K, QUORUM_Q, type QuorumResults, type QuorumSetupResult } from './scenarios/quorum.js';
import { summarize } from './stats.js';
import { table } from './table.js';
import { check, format, type TargetCheck, verdict } from './targets.js';

const ms = (v: number) => (Number.isFinite(v) ? format(v) : '–');

function main(q: QuorumResults): QuorumSetupResult | undefined {
  return q.setups.find((s) => s.kind === 'quorum' && s.rttMs === q.settings.rttsMs[0]);
}

/** The handlers' share of a handover: the benchmark's handlers return at once. */
const HANDLERS_MS = 0;

export function quorumFailoverTable(q: QuorumResults): string {
  return table(
    [
      'setup, ms',
      'RTT',
      'crashes',
      'kill → active p50',
      'p99',
      'past the Q-th deadline p50',
      'p99',
      'handovers',
      'leave → active p50',
      'p99',
    ],
    q.setups.map((s) => {
      const total = summarize(s.crash.map((c) => c.total));
      const past = summarize(s.crash.flatMap((c) => (c.pastDeadline === undefined ? [] : [c.pastDeadline])));
      const leave = summarize(s.leave);
      return [
        s.label,
        String(s.rttMs),
        String(s.crash.length),
        ms(total.p50),
        ms(total.p99),
        ms(past.p50),
        ms(past.p99),
        String(s.leave.length),
        ms(leave.p50),
        ms(leave.p99),
      ];
    }),
  );
}

export function regionLossTable(q: QuorumResults): string {
  return table(
    [
      'setup',
      'RTT, ms',
      'rounds',
      'active kept',
      'deactivations',
      'without an active, ms (max)',
      'kill → active again, ms (max)',
    ],
    q.setups.map((s) => {
      const again = s.regionLoss.flatMap((r) => (r.activeAgainMs === undefined ? [] : [r.activeAgainMs]));
      return [
        s.label,
        String(s.rttMs),
        String(s.regionLoss.length),
        `${s.regionLoss.filter((r) => r.kept).length} / ${s.regionLoss.length}`,
        String(s.regionLoss.reduce((n, r) => n + r.deactivations, 0)),
        ms(Math.max(...s.regionLoss.map((r) => r.withoutActiveMs))),
        again.length ? ms(Math.max(...again)) : '–',
      ];
    }),
  );
}

export function quorumSafetyTable(q: QuorumResults): string {
  return table(
    ['setup', 'RTT, ms', 'most believers at once (N = 1)', 'epochs that went back'],
    q.setups.map((s) => [
      s.label,
      String(s.rttMs),
      String(s.maxConcurrency),
      s.epochsBack === undefined ? '– (no epochs)' : String(s.epochsBack),
    ]),
  );
}

/** The Show list of issue 16, against the quorum setups (RTT_Q: the main links' round trip). */
export function quorumTargets(q: QuorumResults): TargetCheck[] {
  const A = q.lease.activationMs;
  const checks: TargetCheck[] = [];
  for (const s of q.setups.filter((x) => x.kind === 'quorum')) {
    const rtt = s.rttMs;
    const crash = summarize(s.crash.map((c) => c.total));
    const leave = summarize(s.leave);
    checks.push(
      check(
        `quorum, RTT ${rtt} ms: minority loss (one server SIGKILLed), deactivations in ${s.regionLoss.length} rounds`,
        s.regionLoss.length ? s.regionLoss.reduce((n, r) => n + r.deactivations, 0) : Number.NaN,
        0,
        '',
      ),
      check(`quorum, RTT ${rtt} ms: crash failover p50 (≤ A + 2·RTT + 0.5 s)`, crash.p50, A + 2 * rtt + 500, ' ms'),
      check(`quorum, RTT ${rtt} ms: crash failover p99 (≤ A + 2·RTT + 0.5 s)`, crash.p99, A + 2 * rtt + 500, ' ms'),
      check(
        `quorum, RTT ${rtt} ms: leave → next active p50 (≤ 3·RTT + handlers)`,
        leave.p50,
        3 * rtt + HANDLERS_MS,
        ' ms',
      ),
      check(
        `quorum, RTT ${rtt} ms: leave → next active p99 (≤ 3·RTT + handlers)`,
        leave.p99,
        3 * rtt + HANDLERS_MS,
        ' ms',
      ),
      check(`quorum, RTT ${rtt} ms: members active at once (never more than N = 1)`, s.maxConcurrency, 1, ''),
      check(`quorum, RTT ${rtt} ms: activations whose epoch went back`, s.epochsBack ?? Number.NaN, 0, ''),
    );
  }
  return checks;
}

function problems(q: QuorumResults): string[] {
  return [...q.setups.flatMap((s) => s.problems.map((p) => `${s.label}, RTT ${s.rttMs} ms: ${p}`)), ...q.failures];
}

function targetsTable(q: QuorumResults): string {
  return table(
    ['target', 'goal', 'measured', 'verdict'],
    quorumTargets(q).map((t) => [t.what, t.target, t.measured, verdict(t.met)]),
  );
}

export function quorumConsoleReport(q: QuorumResults): string {
  const p = problems(q);
  return [
    '## Quorum mode over WAN links',
    runLine(q.run),
    quorumFailoverTable(q),
    regionLossTable(q),
    quorumSafetyTable(q),
    targetsTable(q),
    ...(p.length ? ['## Quorum problems', p.join('\n')] : []),
  ].join('\n\n');
}

/** The quorum section of docs/BENCHMARKS.md, with its method. */
export function quorumMarkdown(q: QuorumResults): string {
  const { activationMs: A, heartbeatMs: H } = q.lease;
  const s = q.settings;
  const m = main(q);
  const p = problems(q);
  return [
    '## Quorum mode over WAN links (K = 3)',
    `${runLine(q.run)} To measure only this section again: \`pnpm bench --only quorum\` (it keeps the other figures of \`docs/bench/results.json\` and writes this file again); \`pnpm bench --quick --only quorum\` prints the same tables with small counts.`,
    [
      `- **The group**: goal 1, two members (each a process of its own, started before anything is timed, events stamped with hrtime), A = ${A} ms, H = ${H} ms in every setup. ` +
        `A is ${Math.round(A / (s.rttsMs[0] ?? 30))} round trips of the main links: well above the 10 × RTT the docs ask of a single primary, so that a renewal that meets one slow round trip still lands in time.`,
      `- **Links**: ${QUORUM_K} independent \`redis-server\` processes (\`startRedisQuorum({ count: ${QUORUM_K}, proxied: true })\`), each behind a chaos proxy of its own that holds every chunk RTT / 2 ± ${Math.round(q.jitter * 100)} % of that in each direction: ` +
        `${s.rttsMs.join(' ms and ')} ms round trips. Every member and holder reaches every server through its proxy; the benchmark reads deadlines past the proxies.`,
      `- **Crash failover**: the active member's process gets SIGKILL at a random phase of its renewals; the time runs from the signal to the standby's activate callback. ` +
        `Right after the kill the benchmark reads the dead member's lease deadline on every server (its score in the group's \`leases\` zset, Redis time mapped onto hrtime) and takes the Q-th latest of them (Q = ${QUORUM_Q}; on Sentinel the master's one deadline): the time past it is the next column. A new member replaces the dead one before the next round.`,
      `- **Graceful handover**: the active member is told to \`leave()\`; the time runs from the command to the standby's activate callback (the handlers return at once). It then joins again.`,
      `- **Region loss**: while the group runs, one server (quorum: server i mod ${QUORUM_K} in round i; Sentinel: the master) is SIGKILLed. The window runs from the signal for 3·A, and on until some member is active, plus 2·H. ` +
        "'Active kept': the member active at the signal never got a deactivate callback in the window; deactivations count every member's; 'without an active': the time in the window when no member believed it was active. The server comes back empty afterwards, and the group gets 2·A to write itself onto it again.",
      `- **Side by side, at the main RTT**: the same group on a Sentinel set (the test kit's: 1 master, 2 replicas, 3 Sentinels, down-after 3 s) whose members reach every server through a proxy with the same delay (ioredis \`natMap\`; the Sentinels' own links are not delayed), the region lost being the master's; ` +
        `and the existing redlock loop (\`@sesamecare-oss/redlock\`, TTL A, extension every H, retry 200 ± 100 ms) over the same ${QUORUM_K} servers, one client each (Redlock proper), the time past the deadline taken from the lock key's PTTL on the servers, Q-th latest. ` +
        'These side setups, and the 100 ms run, have fewer rounds than the main one.',
      '- **Safety**: the most members believing at once over every round of a setup (goal 1), and activations whose epoch was not above that of an activation that had already ended (understudy only; redlock has no epochs).',
      '- p99 is the nearest-rank 99th percentile: with fewer than 100 samples it is the largest one or close to it.',
    ].join('\n'),
    '### Crash failover and graceful handover',
    quorumFailoverTable(q),
    '### Losing one region while the group runs',
    regionLossTable(q),
    '### Safety',
    quorumSafetyTable(q),
    '### Targets (issue 16)',
    m ? targetsTable(q) : 'The main quorum setup did not run.',
    ...(p.length ? ['### Problems seen during the quorum run', p.map((x) => `- ${x}`).join('\n')] : []),
  ].join('\n\n');
}
