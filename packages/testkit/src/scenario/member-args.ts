import { parseArgs } from 'node:util';
import type { MemberConnection, MemberTopology } from './topology.js';

/** The intervals of a group, as `joinGroup` takes them (ms). */
export interface GroupIntervals {
  activeGoal: number;
  heartbeatInterval: number;
  /** 0 = no prepare hints. */
  preparationInterval: number;
  activationInterval: number;
}

/** What a history-recording member process is started with (its command line). */
export interface MemberArgs extends GroupIntervals, MemberConnection {
  /** Where it reaches a single Redis: its chaos proxy (empty for Sentinel and Cluster: see `nodes`). */
  url: string;
  group: string;
  id: string;
  weight: number;
  /** Its clock runs this many times as fast as the real one (1 = no drift). */
  clockRate: number;
  /** How long its deactivate handler takes, in ms (below A: a handler is abandoned after A). */
  deactivateMs: number;
  /** Its history file; sink decisions go to `sinkHistory`. */
  history: string;
  sinkHistory: string;
  sinkUrl: string;
  sinkKey: string;
  /** The sink Redis's clock minus the history's clock, in ns (see `redisClockOffset`). */
  sinkClockOffset: bigint;
  /**
   * Aborts the join's AbortSignal this many ms after `start()` was called (a random instant
   * inside the join, or after it); -1 = never.
   */
  abortJoinAfterMs: number;
  /** With the group feed: how long its `onMessage` takes, in ms; -1 = no `onMessage`. */
  messageMs: number;
}

/** A process's arguments as `--key=value` options (a member's or a queue worker's). */
export function memberArgv(args: object): string[] {
  // `--key=value`: a value that starts with a dash (-1) is not taken for an option.
  return Object.entries(args).map(([key, value]) => `--${key}=${String(value)}`);
}

const NUMBERS = [
  'weight',
  'activeGoal',
  'heartbeatInterval',
  'preparationInterval',
  'activationInterval',
  'clockRate',
  'abortJoinAfterMs',
  'deactivateMs',
  'messageMs',
] as const;
const STRINGS = [
  'url',
  'nodes',
  'masterName',
  'natMap',
  'group',
  'id',
  'history',
  'sinkHistory',
  'sinkUrl',
  'sinkKey',
  'sinkClockOffset',
] as const;

const TOPOLOGIES: readonly MemberTopology[] = ['single', 'sentinel', 'cluster', 'quorum'];

export function parseMemberArgv(argv: readonly string[]): MemberArgs {
  const options = Object.fromEntries(
    [...NUMBERS, ...STRINGS, 'topology'].map((name) => [name, { type: 'string' as const }]),
  );
  const { values } = parseArgs({ args: [...argv], options, strict: true });
  const value = (name: string): string => {
    const v = values[name];
    if (typeof v !== 'string') throw new Error(`history member: --${name} is required`);
    return v;
  };
  const number = (name: string): number => {
    const n = Number(value(name));
    if (!Number.isFinite(n)) throw new Error(`history member: --${name} must be a number, got ${value(name)}`);
    return n;
  };
  const topology = value('topology');
  if (!TOPOLOGIES.includes(topology as MemberTopology)) {
    throw new Error(`history member: --topology must be one of ${TOPOLOGIES.join(', ')}, got ${topology}`);
  }
  return {
    topology: topology as MemberTopology,
    url: value('url'),
    nodes: value('nodes'),
    masterName: value('masterName'),
    natMap: value('natMap'),
    group: value('group'),
    id: value('id'),
    weight: number('weight'),
    activeGoal: number('activeGoal'),
    heartbeatInterval: number('heartbeatInterval'),
    preparationInterval: number('preparationInterval'),
    activationInterval: number('activationInterval'),
    clockRate: number('clockRate'),
    deactivateMs: number('deactivateMs'),
    history: value('history'),
    sinkHistory: value('sinkHistory'),
    sinkUrl: value('sinkUrl'),
    sinkKey: value('sinkKey'),
    sinkClockOffset: BigInt(value('sinkClockOffset')),
    abortJoinAfterMs: number('abortJoinAfterMs'),
    messageMs: number('messageMs'),
  };
}

/** Commands the harness writes to a member's stdin, one JSON object per line. */
export type MemberCommand =
  | { cmd: 'weight'; weight: number }
  | { cmd: 'stall'; ms: number }
  /** The next prepare handler takes `ms`, as an application warming up would. */
  | { cmd: 'slow-prepare'; ms: number }
  /**
   * Its clock steps forward by `ms` (an NTP step, a VM resumed): a lease it holds ends on its
   * own clock while Redis still holds it.
   */
  | { cmd: 'clock-jump'; ms: number }
  | { cmd: 'leave' };

/** What a member reports on stdout, one JSON object per line (its history file has the details). */
export type MemberReport =
  | { event: 'joined' }
  /** A join the library refused or could not make; `code` is the error's (PARAM_MISMATCH, …). */
  | { event: 'join-failed'; error: string; code: string }
  /** The join's AbortSignal was aborted (`abortJoinAfterMs`); `state` is the member's then. */
  | { event: 'join-aborted'; state: string }
  | { event: 'prepare'; reason: string }
  | { event: 'activate'; epoch: string; reason: string }
  | { event: 'deactivate'; epoch: string; reason: string }
  | { event: 'advisory'; code: string; message: string }
  | { event: 'stall-end'; ms: number; active: boolean }
  /** A setWeight's outcome (ok false: unknown), or the weight the group turned out to have. */
  | { event: 'weight'; weight: number; ok: boolean }
  /** A renewal that failed, with the client's error: a scenario can tell a redirection the client did not follow. */
  | { event: 'renewal-failed'; error: string }
  /** A feed message in `onMessage` (the history has its epoch and slot). */
  | { event: 'message'; id: string; phase: 'start' | 'done'; active: boolean }
  /** A message delivered with `active: true` while `isActive()` was false: the library told a member to act outside its lease. */
  | { event: 'active-outside-lease'; id: string }
  /** A queue worker's handler began a delivery (worker-args.ts). */
  | { event: 'task-start'; task: string; token: string }
  /** How a queue worker's delivery ended (its `task` event). */
  | { event: 'task-end'; task: string; token: string; outcome: string }
  | { event: 'left' };
