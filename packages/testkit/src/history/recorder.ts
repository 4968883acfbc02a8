import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { HistoryEvent, HistoryEventType } from './types.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event as handed to `record()`: the recorder stamps `t`, and `member` defaults to the recorder's. */
export type NewHistoryEvent = DistributiveOmit<HistoryEvent, 't' | 'member'> & { member?: string };

/**
 * Appends one process's events to a file, one JSON line each, bigints as decimal strings.
 * Writes are synchronous on purpose: once `record()` returns, the event is in the kernel,
 * so a SIGKILL a moment later cannot lose it, and the order on disk is the order of calls.
 */
export class HistoryRecorder {
  readonly path: string;
  readonly member: string;
  readonly #clock: () => bigint;
  #fd: number | undefined;

  constructor(path: string, member: string, clock: () => bigint = () => process.hrtime.bigint()) {
    this.path = path;
    this.member = member;
    this.#clock = clock;
    this.#fd = openSync(path, 'a');
  }

  record(event: NewHistoryEvent): HistoryEvent {
    if (this.#fd === undefined) throw new Error(`history recorder for ${this.path} is closed`);
    const stamped = { ...event, t: this.#clock(), member: event.member ?? this.member } as HistoryEvent;
    writeSync(this.#fd, `${serializeEvent(stamped)}\n`);
    return stamped;
  }

  /** Idempotent. */
  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

export function serializeEvent(event: HistoryEvent): string {
  return JSON.stringify(event, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
}

/**
 * Reads the files of several processes into one history ordered by `t` (events with equal
 * times keep file order). A last line without its newline is a write torn by SIGKILL and is
 * skipped; any other malformed line is an error naming the file and line.
 */
export function readHistory(paths: readonly string[]): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (const path of paths) {
    const lines = readFileSync(path, 'utf8').split('\n');
    const torn = lines.pop();
    lines.forEach((line, index) => {
      if (line.trim() !== '') events.push(parseEvent(line, `${path}:${index + 1}`));
    });
    if (torn) {
      try {
        events.push(parseEvent(torn, `${path}:${lines.length + 1}`));
      } catch {
        // torn write
      }
    }
  }
  return events.sort(byTime);
}

export function byTime(a: HistoryEvent, b: HistoryEvent): number {
  return a.t < b.t ? -1 : a.t > b.t ? 1 : 0;
}

type FieldKind = 'string' | 'number' | 'boolean' | 'decimal' | 'bigint' | 'slots' | 'ids';

/** The fields each event type needs beyond t, member and type; `?` marks optional ones. */
const FIELDS: Record<HistoryEventType, Record<string, FieldKind>> = {
  join: { weight: 'number', 'clockRate?': 'number' },
  renewal: {
    outcome: 'string',
    'deadline?': 'bigint',
    'sentAt?': 'bigint',
    'claimedSentAt?': 'bigint',
    'repliedAt?': 'bigint',
  },
  prepare: {},
  activate: { epoch: 'decimal', 'requestSentAt?': 'bigint', 'slot?': 'number' },
  deactivate: { epoch: 'decimal', reason: 'string' },
  'deactivate-settled': { epoch: 'decimal' },
  work: { epoch: 'decimal' },
  resend: { firstSentAt: 'bigint' },
  'redis-state': { goal: 'number', slots: 'slots', 'server?': 'string' },
  leave: {},
  killed: {},
  fault: { fault: 'string' },
  heal: { fault: 'string' },
  'sink-accept': { epoch: 'decimal' },
  'sink-reject': { epoch: 'decimal' },
  weight: { weight: 'number' },
  observe: { version: 'number' },
  publish: { id: 'string' },
  message: { id: 'string', phase: 'string', active: 'boolean', 'epoch?': 'decimal', 'slot?': 'number' },
  commit: { id: 'string', slot: 'number', epoch: 'decimal' },
  enqueue: { task: 'string' },
  'task-start': { task: 'string', token: 'decimal' },
  'task-step': { task: 'string', token: 'decimal' },
  'task-abort': { task: 'string', token: 'decimal' },
  'task-done': { task: 'string', token: 'decimal' },
  'task-end': { task: 'string', token: 'decimal', outcome: 'string' },
  'queue-state': { waiting: 'ids', dead: 'ids' },
};

const DECIMAL = /^\d+$/;

export function parseEvent(line: string, where: string): HistoryEvent {
  const fail = (why: string): never => {
    throw new Error(`${where}: ${why}: ${line}`);
  };
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return fail('not JSON');
  }
  const type = raw.type as HistoryEventType;
  const fields = FIELDS[type];
  if (!fields) return fail(`unknown event type ${String(raw.type)}`);
  const event: Record<string, unknown> = { ...raw };
  const all: Record<string, FieldKind> = { t: 'bigint', member: 'string', ...fields };
  for (const [spec, kind] of Object.entries(all)) {
    const optional = spec.endsWith('?');
    const name = optional ? spec.slice(0, -1) : spec;
    const value = raw[name];
    if (value === undefined) {
      if (!optional) fail(`missing ${name}`);
      continue;
    }
    if (kind === 'slots') {
      if (!Array.isArray(value) || !value.every(isSlot)) fail(`${name} must be a list of slots`);
    } else if (kind === 'ids') {
      if (!Array.isArray(value) || !value.every((id) => typeof id === 'string')) fail(`${name} must be a list of ids`);
    } else if (kind === 'bigint' || kind === 'decimal') {
      if (typeof value !== 'string' || !DECIMAL.test(value)) fail(`${name} must be a decimal string`);
      if (kind === 'bigint') event[name] = BigInt(value as string);
    } else if (typeof value !== kind) {
      fail(`${name} must be a ${kind}`);
    }
  }
  if (type === 'renewal') {
    if (!['ok', 'failed', 'unknown'].includes(raw.outcome as string)) fail('outcome must be ok, failed or unknown');
    if (raw.outcome === 'ok' && raw.deadline === undefined) fail('an ok renewal needs its deadline');
  }
  return event as unknown as HistoryEvent;
}

function isSlot(value: unknown): boolean {
  const s = value as Record<string, unknown>;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.index === 'number' &&
    typeof s.member === 'string' &&
    typeof s.epoch === 'string' &&
    DECIMAL.test(s.epoch) &&
    typeof s.state === 'string' &&
    typeof s.recorded === 'boolean'
  );
}
