import { Redis } from 'ioredis';

/**
 * The fenced sink: downstream work that accepts a write stamped with a fencing epoch only if
 * the epoch is not older than the newest it has seen (S2). One Lua script, so the check and
 * the write are one step. It also returns when it decided, on Redis's clock (µs), made
 * strictly increasing, so that its decisions can be put on the history's clock in exactly
 * the order it took them: a reply's arrival time would not do, because replies to two
 * processes can arrive in the opposite order.
 * KEYS: 1 the sink (hash: newest = the newest accepted epoch, at = the last decision, µs;
 *       accepted = how much work it took)
 * ARGV: 1 epoch (decimal)
 * Reply: { 1 if accepted else 0, decision time in µs (decimal string) }
 */
const SINK_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if now <= last then now = last + 1 end
local at = string.format('%.0f', now)
local epoch = ARGV[1]
local newest = redis.call('HGET', KEYS[1], 'newest')
-- Epochs may exceed 2^53: compare the decimal strings, by length first.
local stale = newest and (#epoch < #newest or (#epoch == #newest and epoch < newest))
if stale then
  redis.call('HSET', KEYS[1], 'at', at)
  return { 0, at }
end
redis.call('HSET', KEYS[1], 'newest', epoch, 'at', at)
redis.call('HINCRBY', KEYS[1], 'accepted', 1)
return { 1, at }
`;

export interface SinkDecision {
  accepted: boolean;
  /** When the sink decided, on the sink Redis's clock, in µs. */
  atMicros: bigint;
}

type SinkCommand = (key: string, epoch: string) => Promise<[number, string]>;

/** A client of the fenced sink. Each member process has its own connection to it. */
export class FencedSink {
  readonly key: string;
  readonly #redis: Redis;

  constructor(url: string, key: string) {
    this.key = key;
    // Never faulted; a write that fails is simply not work done.
    this.#redis = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 2000, connectionName: 'chaos-sink' });
    this.#redis.on('error', () => undefined);
    this.#redis.defineCommand('chaosSinkWrite', { numberOfKeys: 1, lua: SINK_LUA });
  }

  async write(epoch: string): Promise<SinkDecision> {
    const command = (this.#redis as unknown as { chaosSinkWrite: SinkCommand }).chaosSinkWrite;
    const [accepted, at] = await command.call(this.#redis, this.key, epoch);
    return { accepted: accepted === 1, atMicros: BigInt(at) };
  }

  close(): void {
    this.#redis.disconnect();
  }
}

/**
 * `Redis TIME` in ns minus `process.hrtime.bigint()`: what turns a time on a local Redis's
 * clock into the history's clock. Taken from the sample with the shortest round trip (off by
 * at most half of it); every sink decision is mapped with the same offset, so their order is kept.
 */
export async function redisClockOffset(url: string, samples = 20): Promise<bigint> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 2000, connectionName: 'chaos-clock' });
  redis.on('error', () => undefined);
  try {
    let best = { rtt: BigInt(Number.MAX_SAFE_INTEGER), offset: 0n };
    for (let i = 0; i < samples; i++) {
      const before = process.hrtime.bigint();
      const [seconds = 0, micros = 0] = await redis.time();
      const after = process.hrtime.bigint();
      const redisNs = (BigInt(seconds) * 1_000_000n + BigInt(micros)) * 1000n;
      if (after - before < best.rtt) best = { rtt: after - before, offset: redisNs - (before + after) / 2n };
    }
    return best.offset;
  } finally {
    redis.disconnect();
  }
}
