import type { Cluster, Redis } from 'ioredis';
import { CorruptStateError } from '../errors.js';
import type { GroupKeys } from '../keys.js';

type Connection = Redis | Cluster;

export type TransitionType = 'join' | 'leave' | 'lapse' | 'activate' | 'deactivate' | 'weight' | 'goal' | 'quarantine';

/** One entry of a group's transition log (the `…:log` stream written by the member scripts). */
export interface Transition {
  /** Stream entry id: `<ms>-<seq>`, increasing. */
  id: string;
  /** Redis time of the transition, in ms. */
  time: number;
  type: TransitionType;
  /** Empty for group-wide transitions (goal, quarantine). */
  member: string;
  epoch?: number;
  reason?: string;
  weight?: number;
  goal?: number;
  /** The slot granted (activate) or freed (deactivate). */
  slot?: number;
  /** A deactivate after a lapse: Redis time of the holder's last renewal. */
  lastRenewal?: number;
  /** A deactivate of a slot the group asked back (preempted, goal lowered): Redis time it asked. */
  requestedAt?: number;
}

type StreamEntry = [string, string[]];

/** A log key of another type was written by someone else: say so, naming the key. */
function wrongType(keys: GroupKeys): (error: unknown) => never {
  return (error) => {
    if (error instanceof Error && error.message.startsWith('WRONGTYPE')) {
      throw new CorruptStateError(keys.group, keys.log, 'is not a stream (WRONGTYPE); understudy did not write it', {
        cause: error,
      });
    }
    throw error;
  };
}

function parseEntry([id, flat]: StreamEntry): Transition {
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), String(flat[i + 1]));
  const number = (name: string) => (fields.has(name) ? Number(fields.get(name)) : undefined);
  const transition: Transition = {
    id,
    time: number('time') ?? Number(id.split('-')[0]),
    type: fields.get('type') as TransitionType,
    member: fields.get('member') ?? '',
  };
  const epoch = number('epoch');
  if (epoch !== undefined) transition.epoch = epoch;
  const reason = fields.get('reason');
  if (reason) transition.reason = reason;
  const weight = number('weight');
  if (weight !== undefined) transition.weight = weight;
  const goal = number('goal');
  if (goal !== undefined) transition.goal = goal;
  const slot = number('slot');
  if (slot !== undefined) transition.slot = slot;
  const renewed = number('renewed');
  if (renewed !== undefined) transition.lastRenewal = renewed;
  const requested = number('requested');
  if (requested !== undefined) transition.requestedAt = requested;
  return transition;
}

/** The last `count` transitions of a group, oldest first. */
export async function readTransitions(connection: Connection, keys: GroupKeys, count: number): Promise<Transition[]> {
  if (count <= 0) return [];
  const entries = (await connection
    .xrevrange(keys.log, '+', '-', 'COUNT', count)
    .catch(wrongType(keys))) as StreamEntry[];
  return entries.reverse().map(parseEntry);
}

/** Transitions after the entry `afterId` (exclusive), oldest first, at most `count`. */
export async function readTransitionsAfter(
  connection: Connection,
  keys: GroupKeys,
  afterId: string,
  count = 1000,
): Promise<Transition[]> {
  const entries = (await connection
    .xrange(keys.log, `(${afterId}`, '+', 'COUNT', count)
    .catch(wrongType(keys))) as StreamEntry[];
  return entries.map(parseEntry);
}
