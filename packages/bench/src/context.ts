import type { RedisServer } from '@understudy/testkit';
import type { Redis } from 'ioredis';
import type { ClockMap } from './clock.js';

/** Lease settings shared by every system: understudy's A and H, the peers' TTL and refresh. */
export interface LeaseSettings {
  activationMs: number;
  heartbeatMs: number;
}

/** What every scenario gets. */
export interface BenchContext {
  server: RedisServer;
  /** The benchmark's own connection (reads deadlines, logs, statistics). */
  redis: Redis;
  clocks: ClockMap;
  lease: LeaseSettings;
  etcdHosts: string[] | undefined;
  progress(line: string): void;
}

/** A fresh name for a group, lock or election. */
let counter = 0;
export function uniqueKey(label: string): string {
  counter += 1;
  return `bench-${label}-${process.pid}-${counter}`;
}
