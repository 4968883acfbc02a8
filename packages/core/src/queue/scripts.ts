import type { Cluster, Redis } from 'ioredis';
import { redisUser } from '../connections/diagnosis.js';
import { ConfigError, ScriptError } from '../errors.js';
import { classify, corruptState, isNotTheMaster } from '../failures.js';
import { luaSource } from '../lua.js';
import type { QueueKeys } from './keys.js';

type Connection = Redis | Cluster;
type ScriptCall = (...args: (string | number | Buffer)[]) => Promise<unknown>;

/**
 * The queue's Lua scripts (`lua/queue/`), one per operation, under versioned names like the
 * group's (scripts.ts): `keys` is how many KEYS each takes (the eight queue keys, plus the
 * calling worker's inbox for renew). The monitor's observe.lua runs read-only (monitor.ts).
 */
const QUEUE_SCRIPT_VERSION = 1;
const QUEUE_SCRIPTS = {
  enqueue: { keys: 8 },
  renew: { keys: 9 },
  complete: { keys: 8 },
  leave: { keys: 8 },
} as const;

export type QueueScriptName = keyof typeof QUEUE_SCRIPTS;

const defined = new WeakSet<Connection>();

function commandName(name: QueueScriptName): string {
  return `understudy${QUEUE_SCRIPT_VERSION}_queue_${name}`;
}

function defineQueueScripts(connection: Connection): void {
  if (defined.has(connection)) return;
  for (const [name, spec] of Object.entries(QUEUE_SCRIPTS) as [QueueScriptName, { keys: number }][]) {
    connection.defineCommand(commandName(name), { numberOfKeys: spec.keys, lua: luaSource(`queue/${name}.lua`) });
  }
  defined.add(connection);
}

/** Runs a queue script; its error replies become the library's error classes, here only. */
export async function runQueueScript(
  connection: Connection,
  name: QueueScriptName,
  keys: QueueKeys,
  args: readonly (string | number | Buffer)[],
  workerId?: string,
): Promise<unknown> {
  defineQueueScripts(connection);
  const call = (connection as unknown as Record<string, ScriptCall>)[commandName(name)];
  if (!call) throw new ScriptError(name, 'script is not defined on this connection');
  const keyList = name === 'renew' ? [...keys.scriptKeys, keys.inbox(workerId ?? '')] : keys.scriptKeys;
  try {
    return await call.call(connection, ...keyList, ...args);
  } catch (error) {
    // The queue's own replies first; the rest (ACL refusals, timeouts, a lost connection) as
    // failures.ts says for every script.
    const corrupt = corruptState(`queue ${keys.queue}`, error);
    if (corrupt) throw corrupt;
    if (error instanceof Error && !isNotTheMaster(error)) {
      const exists = /^WORKER_EXISTS (.*)$/.exec(error.message);
      if (exists) {
        throw new ConfigError('workerId', exists[1], `a live worker of queue ${keys.queue} already uses this id`);
      }
      if (/^ERR |^NOSCRIPT|user_script/.test(error.message))
        throw new ScriptError(name, error.message, { cause: error });
    }
    throw classify(error, {
      operation: `run the queue ${name} script on queue ${keys.queue}`,
      user: redisUser(connection),
      actor: workerId === undefined ? undefined : `worker ${workerId}`,
    });
  }
}

export type WorkerStatus = 'ok' | 'joined' | 'rejoined' | 'done' | 'retry' | 'dead' | 'stale' | 'left';

/** What a worker's script replies (see `reply` in lua/queue/lib.lua). */
export interface WorkerReply {
  status: WorkerStatus;
  /** Redis time when the script ran (ms). */
  serverNow: number;
  quarantineUntil: number;
  /** Why the queue is quarantined ('' when the script did not start a quarantine). */
  quarantineReason: string;
  /** Tasks the worker claimed that the queue no longer gives it. */
  lost: string[];
  /** Tasks this script moved to the dead letters, with their deliveries. */
  dead: { id: string; deliveries: number }[];
}

export function parseWorkerReply(script: QueueScriptName, reply: unknown): WorkerReply {
  if (!Array.isArray(reply) || reply.length !== 6)
    throw new ScriptError(script, `unexpected reply ${JSON.stringify(reply)}`);
  const [status, now, quarantine, reason, lost, dead] = reply as [string, string, string, string, string[], string[]];
  const buried: { id: string; deliveries: number }[] = [];
  for (let i = 0; i < dead.length; i += 2) buried.push({ id: String(dead[i]), deliveries: Number(dead[i + 1]) });
  return {
    status: String(status) as WorkerStatus,
    serverNow: Number(now),
    quarantineUntil: Number(quarantine),
    quarantineReason: String(reason),
    lost: lost.map(String),
    dead: buried,
  };
}
