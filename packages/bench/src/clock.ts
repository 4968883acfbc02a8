import type { Redis } from 'ioredis';

/** Milliseconds on CLOCK_MONOTONIC: comparable across every process of this machine. */
export function hrNow(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Maps Redis's clock (ms since the epoch) onto `hrNow()`, and the local wall clock too. */
export interface ClockMap {
  /** Redis ms → hrNow() ms. */
  fromRedis(redisMs: number): number;
  /** Date.now() ms of this machine → hrNow() ms. */
  fromWall(wallMs: number): number;
  /** Round trip of the best TIME sample, in ms: the mapping is good to about half of it. */
  rttMs: number;
}

/** Reads TIME a few times and keeps the sample with the shortest round trip. */
export async function mapClocks(redis: Redis, samples = 15): Promise<ClockMap> {
  let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
  for (let i = 0; i < samples; i++) {
    const before = hrNow();
    const [seconds, micros] = await redis.time();
    const after = hrNow();
    const redisMs = Number(seconds) * 1000 + Number(micros) / 1000;
    if (after - before < best.rtt) best = { rtt: after - before, offset: redisMs - (before + after) / 2 };
  }
  const wallOffset = Date.now() - hrNow();
  return {
    fromRedis: (redisMs) => redisMs - best.offset,
    fromWall: (wallMs) => wallMs - wallOffset,
    rttMs: best.rtt,
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
