/**
 * Quorum mode (DESIGN §9): one group over K independent Redis deployments, K odd from 3 to 7,
 * decided by a majority Q = ⌊K/2⌋ + 1. What a member or a monitor concludes from the K servers'
 * words, as pure functions: no clock, no Redis, no side effects. A server that did not answer
 * (down, cut off, too slow) is `undefined` in every list below: it counts for nothing, and a
 * decision never waits for it when a majority has already spoken.
 */

/** Q for K servers: ⌊K/2⌋ + 1. Two majorities always share a server. */
export function quorumSize(servers: number): number {
  return Math.floor(servers / 2) + 1;
}

/** A slot and the epoch it is held with, as one server said it. */
export interface SlotGrant {
  slot: number;
  epoch: number;
}

/**
 * S4 over K servers: server i's grant is good until its own deadline (t0ᵢ + A·(1−ρ) − δ); the
 * member may act until the Q-th latest of them — past it, fewer than Q servers still hold its
 * lease, and a majority without it may grant the slot to another member. -Infinity when fewer
 * than Q servers granted a lease.
 */
export function quorumDeadline(deadlines: readonly (number | undefined)[], quorum: number): number {
  const known = deadlines.filter((d): d is number => d !== undefined).sort((a, b) => b - a);
  return known[quorum - 1] ?? Number.NEGATIVE_INFINITY;
}

/**
 * Named slots: a member holds a slot only while Q servers show it the same slot with the same
 * epoch. Two different grants can never both reach Q (each server shows one grant per member,
 * and 2Q > K). `held` is that grant, if any; `strays` are the servers showing any other grant
 * (a partial grant: released on all servers at once, never kept).
 */
export function tallyGrants(
  grants: readonly (SlotGrant | undefined)[],
  quorum: number,
): { held: SlotGrant | undefined; strays: number[] } {
  const counts = new Map<string, number>();
  for (const g of grants) {
    if (g) counts.set(grantKey(g), (counts.get(grantKey(g)) ?? 0) + 1);
  }
  let held: SlotGrant | undefined;
  for (const g of grants) {
    if (g && (counts.get(grantKey(g)) ?? 0) >= quorum) held = { slot: g.slot, epoch: g.epoch };
  }
  const strays: number[] = [];
  grants.forEach((g, server) => {
    if (g && !(held && g.slot === held.slot && g.epoch === held.epoch)) strays.push(server);
  });
  return { held, strays };
}

function grantKey(g: SlotGrant): string {
  return `${g.slot}:${g.epoch}`;
}

/**
 * S2 over K servers: a member proposes an epoch above every floor it has seen and above every
 * server's TIME in microseconds. A server accepts it only above its own floor; an activation
 * needs Q acceptances, and any two majorities share a server whose floor then rose, so epochs
 * strictly increase even where the servers' clocks disagree (the largest per-server epoch would
 * not: clock skew can invert it).
 */
export function proposeEpoch(floors: readonly number[], serverTimesMicros: readonly number[]): number {
  let highest = 0;
  for (const value of [...floors, ...serverTimesMicros]) if (value > highest) highest = value;
  const epoch = highest + 1;
  if (!Number.isSafeInteger(epoch)) throw new RangeError(`epoch ${epoch} is beyond 2^53 − 1`);
  return epoch;
}

/**
 * The slot a member proposes for: the lowest index that Q of the servers that answered report
 * free (a slot free on fewer than Q can never reach Q acceptances). Undefined when there is none.
 */
export function chooseSlot(freeSlots: readonly (readonly number[] | undefined)[], quorum: number): number | undefined {
  const counts = new Map<number, number>();
  for (const free of freeSlots) for (const slot of new Set(free ?? [])) counts.set(slot, (counts.get(slot) ?? 0) + 1);
  let chosen: number | undefined;
  for (const [slot, count] of counts) if (count >= quorum && (chosen === undefined || slot < chosen)) chosen = slot;
  return chosen;
}

/**
 * Preemption and goal changes take effect when Q servers ask the holder to release the grant it
 * holds; fewer asking (a minority whose view of the ranking differs) changes nothing.
 */
export function releaseAsked(asking: readonly (SlotGrant | undefined)[], held: SlotGrant, quorum: number): boolean {
  return asking.filter((g) => g?.slot === held.slot && g.epoch === held.epoch).length >= quorum;
}

/**
 * The join stamp: the largest server TIME among the first Q join replies (in the order they
 * arrived). Every server ranks by it, so the ranking is the same on all of them. Undefined
 * until Q servers accepted the join.
 */
export function joinStamp(arrivals: readonly number[], quorum: number): number | undefined {
  if (arrivals.length < quorum) return undefined;
  return Math.max(...arrivals.slice(0, quorum));
}

/** What ranking compares (DESIGN §9): weight, then holding a slot, then the join stamp, then the id. */
export interface QuorumRanked {
  id: string;
  weight: number;
  holding: boolean;
  stamp: number;
}

/** Orders two members as every server does: higher weight, then holding first, then the earlier stamp, then the id. */
export function compareQuorumRank(a: QuorumRanked, b: QuorumRanked): number {
  if (a.weight !== b.weight) return b.weight - a.weight;
  if (a.holding !== b.holding) return a.holding ? -1 : 1;
  if (a.stamp !== b.stamp) return a.stamp - b.stamp;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * A member that reaches fewer than Q servers is never next in line and never preempts
 * (advisory QUORUM_LOST): it cannot gather Q acceptances, and a minority must not move a holder.
 */
export function reachesQuorum(answered: readonly unknown[], quorum: number): boolean {
  return answered.filter((a) => a !== undefined).length >= quorum;
}
