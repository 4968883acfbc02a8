import { parseArgs } from 'node:util';
import type { MemberConnection, MemberTopology } from './topology.js';

/** A queue's options for a scenario's workers, as `joinQueue` takes them (ms). */
export interface QueueParams {
  capacity: number;
  completeTime: number;
  maxDeliveries: number;
  heartbeatInterval: number;
  activationInterval: number;
}

/** A queue worker of a scenario: test/fixtures/queue-worker.ts in a process of its own. */
export interface WorkerSpec {
  /** Unique in the run: a restarted worker gets a new id (a worker id with a live lease is refused). */
  id: string;
  weight: number;
}

/** What a queue-worker process is started with (its command line). */
export interface WorkerArgs extends QueueParams, MemberConnection {
  /** Where it reaches a single Redis: its chaos proxy (empty for Sentinel: see `nodes`). */
  url: string;
  queue: string;
  id: string;
  weight: number;
  /** Its history file. */
  history: string;
  /** How often its handler acts (a `task-step`) while a task runs, in ms. */
  stepMs: number;
}

const NUMBERS = [
  'weight',
  'capacity',
  'completeTime',
  'maxDeliveries',
  'heartbeatInterval',
  'activationInterval',
  'stepMs',
] as const;
const STRINGS = ['url', 'nodes', 'masterName', 'natMap', 'queue', 'id', 'history'] as const;
const TOPOLOGIES: readonly MemberTopology[] = ['single', 'sentinel'];

export function parseWorkerArgv(argv: readonly string[]): WorkerArgs {
  const options = Object.fromEntries(
    [...NUMBERS, ...STRINGS, 'topology'].map((name) => [name, { type: 'string' as const }]),
  );
  const { values } = parseArgs({ args: [...argv], options, strict: true });
  const value = (name: string): string => {
    const v = values[name];
    if (typeof v !== 'string') throw new Error(`queue worker: --${name} is required`);
    return v;
  };
  const number = (name: (typeof NUMBERS)[number]): number => {
    const n = Number(value(name));
    if (!Number.isFinite(n)) throw new Error(`queue worker: --${name} must be a number, got ${value(name)}`);
    return n;
  };
  const topology = value('topology');
  if (!TOPOLOGIES.includes(topology as MemberTopology)) {
    throw new Error(`queue worker: --topology must be one of ${TOPOLOGIES.join(', ')}, got ${topology}`);
  }
  const strings = Object.fromEntries(STRINGS.map((name) => [name, value(name)])) as Record<
    (typeof STRINGS)[number],
    string
  >;
  const numbers = Object.fromEntries(NUMBERS.map((name) => [name, number(name)])) as Record<
    (typeof NUMBERS)[number],
    number
  >;
  return { topology: topology as MemberTopology, ...strings, ...numbers };
}
