import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { ScriptError } from '../errors.js';
import type { GroupKeys } from '../keys.js';
import { luaSource } from '../lua.js';

type Connection = Redis | Cluster;

export type MonitoredState = 'active' | 'releasing' | 'preparing' | 'standby';

export interface MonitoredMember {
  id: string;
  weight: number;
  /** 1 = ranks first among the live members. */
  rank: number;
  state: MonitoredState;
  /** Fencing epoch of its slot, when it holds one. */
  epoch: number | undefined;
  /** Until its lease lapses, on Redis's clock (≤ 0: lapsed, about to be dropped). */
  leaseRemainingMs: number;
  slot: number | undefined;
  host: string | undefined;
  pid: number | undefined;
}

export interface GroupSnapshot {
  group: string;
  /** Live members holding a slot (active, or releasing it for a handover). */
  activeCount: number;
  /** 0 when the group has no members (its parameters are forgotten). */
  activeGoal: number;
  activationInterval: number;
  heartbeatInterval: number;
  version: number;
  /** Newest fencing epoch granted in the group. */
  epoch: number;
  /** Time left in a quarantine (no activations) after lost state or a changed server. */
  quarantineRemainingMs: number;
  /** Live members, best ranked first. */
  members: MonitoredMember[];
  /** Redis time of the read, in ms. */
  serverTime: number;
}

const OBSERVE = 'observe.lua';
let observeSha: string | undefined;

/**
 * Runs the read-only observe script with EVALSHA_RO, falling back to EVAL_RO on NOSCRIPT.
 * (ioredis's defineCommand always sends EVALSHA / EVAL, which a user without write
 * permission may not run.)
 */
async function observe(connection: Connection, keys: GroupKeys): Promise<unknown[]> {
  const source = luaSource(OBSERVE);
  observeSha ??= createHash('sha1').update(source).digest('hex');
  const keyList = keys.scriptKeys.slice(0, 5);
  try {
    return (await connection.call('EVALSHA_RO', observeSha, keyList.length, ...keyList)) as unknown[];
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return (await connection.call('EVAL_RO', source, keyList.length, ...keyList)) as unknown[];
  }
}

function pairs(flat: unknown): [string, string][] {
  const list = Array.isArray(flat) ? (flat as string[]) : [];
  const result: [string, string][] = [];
  for (let i = 0; i + 1 < list.length; i += 2) result.push([String(list[i]), String(list[i + 1])]);
  return result;
}

interface SlotRecord {
  m: string;
  e: string;
  s: 'active' | 'releasing';
}

/**
 * Reads a group and computes what a monitor reports. A member whose last renewal is older
 * than `lostInterval` (default: the group's activation interval, i.e. its lease has
 * lapsed) counts as lost and is left out, even before any member's script drops it.
 */
export async function readGroup(
  connection: Connection,
  keys: GroupKeys,
  lostInterval?: number,
): Promise<GroupSnapshot> {
  const reply = await observe(connection, keys);
  if (!Array.isArray(reply) || reply.length !== 6) {
    throw new ScriptError('observe', `unexpected reply ${JSON.stringify(reply)}`);
  }
  const [nowRaw, config, rankFlat, leasesFlat, membersFlat, slotsFlat] = reply;
  const now = Number(nowRaw);
  const [goal, activation, heartbeat, version, epoch, quarantineUntil, , preparing] = config as string[];
  const activationInterval = Number(activation) || 0;
  const lost = lostInterval ?? activationInterval;
  const deadlines = new Map(pairs(leasesFlat).map(([id, d]) => [id, Number(d)]));
  const records = new Map(
    pairs(membersFlat).map(([id, json]) => [id, JSON.parse(json) as { w: number; h?: string; p?: number }]),
  );
  const slots = new Map<string, SlotRecord & { index: number }>();
  for (const [index, json] of pairs(slotsFlat)) {
    const record = JSON.parse(json) as SlotRecord;
    slots.set(record.m, { ...record, index: Number(index) });
  }
  const members: MonitoredMember[] = [];
  for (const [id] of pairs(rankFlat)) {
    const deadline = deadlines.get(id);
    if (deadline === undefined) continue;
    // lastRenewal = deadline − A; lost once now ≥ lastRenewal + lostInterval.
    if (now >= deadline - activationInterval + lost) continue;
    const slot = slots.get(id);
    const record = records.get(id);
    members.push({
      id,
      weight: record?.w ?? 0,
      rank: members.length + 1,
      state: slot ? slot.s : preparing === id ? 'preparing' : 'standby',
      epoch: slot ? Number(slot.e) : undefined,
      leaseRemainingMs: deadline - now,
      slot: slot?.index,
      host: record?.h,
      pid: record?.p === undefined ? undefined : Number(record.p),
    });
  }
  return {
    group: keys.group,
    activeCount: members.filter((m) => m.state === 'active' || m.state === 'releasing').length,
    activeGoal: Number(goal) || 0,
    activationInterval,
    heartbeatInterval: Number(heartbeat) || 0,
    version: Number(version) || 0,
    epoch: Number(epoch) || 0,
    quarantineRemainingMs: Math.max(0, (Number(quarantineUntil) || 0) - now),
    members,
    serverTime: now,
  };
}

/** When the next member would count as lost, in Redis ms (undefined: nobody to watch). */
export function nextLossAt(snapshot: GroupSnapshot, lostInterval?: number): number | undefined {
  const lost = lostInterval ?? snapshot.activationInterval;
  let earliest: number | undefined;
  for (const m of snapshot.members) {
    const at = snapshot.serverTime + m.leaseRemainingMs - snapshot.activationInterval + lost;
    if (earliest === undefined || at < earliest) earliest = at;
  }
  return earliest;
}
