import type { Redis } from 'ioredis';
import type { Contender } from './processes.js';
import type { Interval } from './stats.js';

/** A holder's belief intervals from its events: acquired → released / lost, or → `end` (its death). */
export function beliefIntervals(contender: Contender, end: number): Interval[] {
  const intervals: Interval[] = [];
  let start: number | undefined;
  for (const e of contender.events) {
    if (e.event === 'acquired') start ??= e.t;
    else if ((e.event === 'released' || e.event === 'lost') && start !== undefined) {
      intervals.push({ holder: contender.label, start, end: e.t });
      start = undefined;
    }
  }
  if (start !== undefined) intervals.push({ holder: contender.label, start, end });
  return intervals;
}

/** One entry of an understudy group's transition log (docs/keys.md, `…:log`). */
export interface LogEntry {
  type: string;
  member: string;
  /** Redis ms of the script that wrote it. */
  time: number;
  /** Every field of the entry (`epoch`, `reason`, a quarantine's `until`, …). */
  fields: Record<string, string>;
}

/** The group's log entries written at or after `sinceRedisMs`. */
export async function readGroupLog(redis: Redis, group: string, sinceRedisMs: number): Promise<LogEntry[]> {
  const since = String(Math.max(0, Math.floor(sinceRedisMs)));
  const entries = (await redis.xrange(`understudy:{${group}}:log`, since, '+')) as [string, string[]][];
  return entries.map(([, fields]) => {
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i] as string] = fields[i + 1] as string;
    return { type: record.type ?? '', member: record.member ?? '', time: Number(record.time), fields: record };
  });
}
