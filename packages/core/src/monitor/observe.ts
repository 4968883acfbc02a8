import type { Cluster, Redis } from 'ioredis';
import { CorruptStateError } from '../errors.js';
import type { GroupKeys } from '../keys.js';
import { MAX_ACTIVE_GOAL, MAX_INTERVAL } from '../options.js';
import { readScript } from '../scripts.js';

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

/** A value to show in a message: ids understudy writes are shown, anything else is not echoed. */
function shown(value: string): string {
  return /^[A-Za-z0-9._:@/-]{1,200}$/.test(value) ? value : '(a value understudy does not write)';
}

/** A JSON object stored in a hash field, or a CorruptStateError naming the key and field. */
function parseObject(keys: GroupKeys, key: string, field: string, json: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CorruptStateError(keys.group, key, `field ${shown(field)} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** The config's numeric fields and their bounds, as the scripts check them (lua/lib.lua). */
const CONFIG_NUMBERS: readonly [string, (now: number) => number][] = [
  ['activeGoal', () => MAX_ACTIVE_GOAL],
  ['activationInterval', () => MAX_INTERVAL],
  ['heartbeatInterval', () => MAX_INTERVAL],
  ['version', () => Number.MAX_SAFE_INTEGER],
  ['epoch', () => Number.MAX_SAFE_INTEGER],
  ['quarantineUntil', (now) => now + MAX_INTERVAL],
];

/** The config's numeric fields: absent (''), or whole numbers within their bounds. */
function configNumbers(keys: GroupKeys, config: string[], now: number): number[] {
  return CONFIG_NUMBERS.map(([name, bound], i) => {
    const raw = config[i] ?? '';
    if (raw === '') return 0;
    const n = Number(raw);
    const high = bound(now);
    if (!Number.isSafeInteger(n) || n < 0 || n > high) {
      throw new CorruptStateError(keys.group, keys.config, `field ${name} is not a whole number from 0 to ${high}`);
    }
    return n;
  });
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
  const {
    now,
    config,
    rank: rankFlat,
    leases: leasesFlat,
    members: membersFlat,
    slots: slotsFlat,
  } = await readScript(connection, 'observe', keys, {});
  const [goal, activationInterval, heartbeat, version, epoch, quarantineUntil] = configNumbers(
    keys,
    config as string[],
    now,
  ) as [number, number, number, number, number, number];
  const preparing = (config as string[])[7];
  const lost = lostInterval ?? activationInterval;
  const deadlines = new Map(pairs(leasesFlat).map(([id, d]) => [id, Number(d)]));
  const records = new Map(
    pairs(membersFlat).map(([id, json]) => {
      const record = parseObject(keys, keys.members, id, json);
      if (!Number.isInteger(record.w)) {
        throw new CorruptStateError(keys.group, keys.members, `field ${shown(id)} has no valid weight (w)`);
      }
      return [id, record as { w: number; h?: string; p?: number }];
    }),
  );
  const slots = new Map<string, SlotRecord & { index: number }>();
  for (const [index, json] of pairs(slotsFlat)) {
    const record = parseObject(keys, keys.slots, index, json);
    if (typeof record.m !== 'string' || !Number.isSafeInteger(Number(record.e))) {
      throw new CorruptStateError(keys.group, keys.slots, `field ${shown(index)} is not a slot (holder, epoch)`);
    }
    slots.set(record.m, { ...(record as unknown as SlotRecord), index: Number(index) });
  }
  for (const [holder, slot] of slots) {
    if (!records.has(holder)) {
      throw new CorruptStateError(
        keys.group,
        keys.slots,
        `field ${slot.index} names ${shown(holder)}, which has no record`,
      );
    }
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
    activeGoal: goal,
    activationInterval,
    heartbeatInterval: heartbeat,
    version,
    epoch,
    quarantineRemainingMs: Math.max(0, quarantineUntil - now),
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
