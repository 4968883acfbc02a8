import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HistoryRecorder } from '../history/recorder.js';
import type { RedisSlot } from '../history/types.js';
import type { RedisServer } from '../redis/types.js';

/** The file, in a run's folder, that holds the `redis-state` events. */
export const REDIS_STATE_FILE = 'redis-state.jsonl';

/**
 * Reads the goal and the slots in one step, each slot with whether its holder has a member
 * record. Keys: 1 config, 2 slots, 3 members (DESIGN §4, with the default prefix). A slot it
 * cannot read comes back as `unreadable`: the data model changed, and so must this script.
 */
const READ_STATE = `
local goal = tonumber(redis.call('HGET', KEYS[1], 'activeGoal') or '0') or 0
local flat = redis.call('HGETALL', KEYS[2])
local slots, unreadable = {}, {}
for i = 1, #flat, 2 do
  local ok, s = pcall(cjson.decode, flat[i + 1])
  if ok and type(s) == 'table' and type(s.m) == 'string' and tonumber(flat[i]) then
    slots[#slots + 1] = { index = tonumber(flat[i]), member = s.m, epoch = tostring(s.e), state = tostring(s.s),
      recorded = redis.call('HEXISTS', KEYS[3], s.m) == 1 }
  else
    unreadable[#unreadable + 1] = flat[i] .. '=' .. flat[i + 1]
  end
end
return cjson.encode({ goal = goal, slots = slots, unreadable = unreadable })
`;

const EVERY_MS = 25;

/** What the watch needs of a scenario's run. */
export interface WatchedRun {
  readonly group: string;
  readonly historyDir: string;
  readonly signal: AbortSignal;
  /** The server that holds the group's keys now. */
  master(): Promise<RedisServer>;
  /** Quorum mode: the K servers, each of which holds the group; read them all instead of `master()`. */
  quorumServers?(): readonly RedisServer[] | undefined;
  /** Notes a scenario criterion that is not met. */
  unmet(criterion: string): void;
}

export interface RedisStateWatch {
  /** Stops reading and closes the file; idempotent. */
  stop(): Promise<void>;
}

/**
 * Reads the group's state from Redis as an administrator every 25 ms, on whichever server
 * holds the group now — in quorum mode on each of the K servers, each event naming its server
 * (`server`, its index) — and records a `redis-state` event whenever a server's state changed
 * (checker rules 11 and 18). EVAL_RO, so that nothing counts it among the scripts members ran.
 * A read that fails (a server down, frozen or moving) is skipped; a slot it cannot read is a
 * criterion not met.
 */
export function watchRedisState(run: WatchedRun): RedisStateWatch {
  let readAt = 0n;
  const recorder = new HistoryRecorder(join(run.historyDir, REDIS_STATE_FILE), 'redis', () => readAt);
  const key = (kind: string) => `understudy:{${run.group}}:${kind}`;
  let stopped = false;
  let reportedUnreadable = false;
  const last = new Map<string, string>();
  /** Reads one server; records its state (stamped when the read was sent) if it changed. */
  const read = async (server: RedisServer, name: string | undefined) => {
    const sentAt = process.hrtime.bigint();
    const text = await server.admin('EVAL_RO', READ_STATE, '3', key('config'), key('slots'), key('members'));
    const state = JSON.parse(text) as { goal: number; slots: RedisSlot[] | object; unreadable: string[] | object };
    const slots = Array.isArray(state.slots) ? state.slots : [];
    const unreadable = Array.isArray(state.unreadable) ? state.unreadable : [];
    if (unreadable.length > 0 && !reportedUnreadable) {
      reportedUnreadable = true;
      run.unmet(`the Redis state watch could not read slots ${unreadable.join(', ')}: update scenario/invariants.ts`);
    }
    const snapshot = JSON.stringify([state.goal, slots]);
    if (snapshot === last.get(name ?? '') || stopped) return;
    last.set(name ?? '', snapshot);
    readAt = sentAt;
    recorder.record({ type: 'redis-state', goal: state.goal, slots, ...(name === undefined ? {} : { server: name }) });
  };
  const loop = (async () => {
    while (!stopped && !run.signal.aborted) {
      const servers = run.quorumServers?.();
      // A read that fails is not readable now: a fault is at work.
      if (servers) await Promise.allSettled(servers.map((server, i) => read(server, String(i))));
      else
        await run
          .master()
          .then(
            (server) => read(server, undefined),
            () => undefined,
          )
          .catch(() => undefined);
      await sleep(EVERY_MS);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      recorder.close();
    },
  };
}
