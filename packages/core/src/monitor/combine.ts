import { tallyGrants } from '../quorum.js';
import type { GroupSnapshot, MonitoredMember, MonitoredState } from './observe.js';

/**
 * One snapshot of a group in quorum mode (DESIGN §9) from the snapshots of the K servers that
 * answered (`undefined`: the server did not). Pure. A member is listed when Q servers list it
 * live; it counts as active only when Q servers show it the same slot with the same epoch, and
 * as releasing only when Q of those ask it to release (a minority asking changes nothing). The
 * other figures are what a majority vouches for: the goal and intervals most servers report,
 * the Q-th largest epoch (a majority has seen it), the Q-th latest lease end, and the time
 * until Q servers are out of quarantine. Undefined when fewer than Q servers answered.
 */
export function combineSnapshots(
  servers: readonly (GroupSnapshot | undefined)[],
  quorum: number,
): GroupSnapshot | undefined {
  const answered = servers.filter((s): s is GroupSnapshot => s !== undefined);
  if (answered.length < quorum) return undefined;
  const views = new Map<string, (MonitoredMember | undefined)[]>();
  servers.forEach((snapshot, i) => {
    for (const m of snapshot?.members ?? []) {
      let seen = views.get(m.id);
      if (!seen) {
        seen = new Array(servers.length).fill(undefined);
        views.set(m.id, seen);
      }
      seen[i] = m;
    }
  });
  const ranked: { member: MonitoredMember; order: number }[] = [];
  for (const [id, seen] of views) {
    const present = seen.filter((m): m is MonitoredMember => m !== undefined);
    if (present.length < quorum) continue;
    const holding = seen.map((m) =>
      m && (m.state === 'active' || m.state === 'releasing') && m.slot !== undefined && m.epoch !== undefined
        ? { slot: m.slot, epoch: m.epoch }
        : undefined,
    );
    const { held } = tallyGrants(holding, quorum);
    let state: MonitoredState = 'standby';
    if (held) {
      const asking = seen.filter((m) => m?.state === 'releasing' && m.slot === held.slot && m.epoch === held.epoch);
      state = asking.length >= quorum ? 'releasing' : 'active';
    } else if (present.filter((m) => m.state === 'preparing').length >= quorum) {
      state = 'preparing';
    }
    const first = present[0] as MonitoredMember;
    ranked.push({
      member: {
        id,
        weight: mostCommon(present.map((m) => m.weight)) ?? first.weight,
        rank: 0,
        state,
        epoch: held?.epoch,
        leaseRemainingMs: qthLargest(
          present.map((m) => m.leaseRemainingMs),
          quorum,
        ),
        slot: held?.slot,
        host: first.host,
        pid: first.pid,
      },
      // Every server ranks the same way (weight, holding, join stamp, id); where their views
      // differ, the rank a majority gives at least.
      order: qthSmallest(
        present.map((m) => m.rank),
        quorum,
      ),
    });
  }
  ranked.sort(
    (a, b) =>
      b.member.weight - a.member.weight ||
      Number(isHolding(b.member)) - Number(isHolding(a.member)) ||
      a.order - b.order ||
      (a.member.id < b.member.id ? -1 : a.member.id > b.member.id ? 1 : 0),
  );
  const members = ranked.map(({ member }, i) => ({ ...member, rank: i + 1 }));
  const first = answered[0] as GroupSnapshot;
  return {
    group: first.group,
    activeCount: members.filter(isHolding).length,
    activeGoal: mostCommon(answered.map((s) => s.activeGoal)) ?? 0,
    activationInterval: mostCommon(answered.map((s) => s.activationInterval)) ?? 0,
    heartbeatInterval: mostCommon(answered.map((s) => s.heartbeatInterval)) ?? 0,
    version: Math.max(...answered.map((s) => s.version)),
    epoch: qthLargest(
      answered.map((s) => s.epoch),
      quorum,
    ),
    quarantineRemainingMs: qthSmallest(
      answered.map((s) => s.quarantineRemainingMs),
      quorum,
    ),
    members,
    serverTime: Math.max(...answered.map((s) => s.serverTime)),
  };
}

function isHolding(m: MonitoredMember): boolean {
  return m.state === 'active' || m.state === 'releasing';
}

/** The Q-th largest value (at least Q values are given). */
function qthLargest(values: number[], quorum: number): number {
  return values.sort((a, b) => b - a)[Math.min(quorum, values.length) - 1] ?? 0;
}

function qthSmallest(values: number[], quorum: number): number {
  return values.sort((a, b) => a - b)[Math.min(quorum, values.length) - 1] ?? 0;
}

/** The value most servers report (the first seen among equals); undefined for none. */
function mostCommon(values: number[]): number | undefined {
  const counts = new Map<number, number>();
  let best: number | undefined;
  for (const v of values) {
    const c = (counts.get(v) ?? 0) + 1;
    counts.set(v, c);
    if (best === undefined || c > (counts.get(best) ?? 0)) best = v;
  }
  return best;
}
