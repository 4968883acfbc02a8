import type { Cluster, Redis } from 'ioredis';
import { redisUser } from './connections/diagnosis.js';
import { CorruptStateError } from './errors.js';
import { classify, type FailureContext } from './failures.js';
import type { GroupKeys } from './keys.js';
import type { QueueKeys } from './queue/keys.js';
import { callScript } from './script-call.js';
import {
  parseReply,
  type QueueScriptName,
  type SCRIPT_SPECS,
  type ScriptArgs,
  type ScriptKeys,
  type ScriptName,
  type ScriptReply,
  scriptInvocation,
} from './script-specs.js';

/** The reply types, where the member's and the worker's units have always found them. */
export type { MemberView, ServerRole, WorkerReply, WorkerStatus } from './script-specs.js';

/**
 * The Lua scripts, one per operation (their KEYS, ARGV and reply in script-specs.ts), run as
 * functions of understudy's versioned function library where the server allows it, else as
 * scripts (script-call.ts decides, per connection). Two library versions sharing a server never
 * run each other's code: a library's name and its functions' names carry the hash of its source.
 */
type Connection = Redis | Cluster;

/** A failure of a script, as `classify` reads it: the group or queue, and the member or worker. */
function failureContext(connection: Connection, name: ScriptName, keys: GroupKeys | QueueKeys, args: object) {
  const { memberId, workerId } = args as { memberId?: string; workerId?: string };
  const actor =
    memberId !== undefined ? `member ${memberId}` : workerId !== undefined ? `worker ${workerId}` : undefined;
  const on = 'queue' in keys ? { queue: keys.queue } : { group: keys.group };
  const where = 'queue' in keys ? `queue ${keys.queue}` : `group ${keys.group}`;
  return {
    operation: `run the ${name.replace('/', ' ')} script on ${where}`,
    user: redisUser(connection),
    ...on,
    actor,
    script: name,
  } satisfies FailureContext;
}

/**
 * Runs a script on a group's or a queue's keys with its named arguments, and names the entries
 * of its reply; every failure becomes one of the library's errors (`classify`), in this one place.
 */
async function runScript<N extends ScriptName>(
  connection: Connection,
  name: N,
  keys: ScriptKeys<N>,
  args: ScriptArgs<N>,
): Promise<ScriptReply<N>> {
  const invocation = scriptInvocation(name, keys, args);
  let reply: unknown;
  try {
    reply = await callScript(connection, name, invocation.keys, invocation.argv, false);
  } catch (error) {
    throw classify(error, failureContext(connection, name, keys, args));
  }
  return parseReply(name, reply);
}

/** The scripts the monitors run with FCALL_RO or EVALSHA_RO: a monitor may run under a user that cannot write. */
type ReadOnlyScriptName = {
  [N in ScriptName]: (typeof SCRIPT_SPECS)[N] extends { readOnly: true } ? N : never;
}[ScriptName];

/**
 * Runs a read-only script and names the entries of its reply. Its CORRUPT reply becomes a
 * CorruptStateError; any other failure is the monitor's to classify.
 */
export async function readScript<N extends ReadOnlyScriptName>(
  connection: Connection,
  name: N,
  keys: ScriptKeys<N>,
  args: ScriptArgs<N>,
): Promise<ScriptReply<N>> {
  const invocation = scriptInvocation(name, keys, args);
  let reply: unknown;
  try {
    reply = await callScript(connection, name, invocation.keys, invocation.argv, true);
  } catch (error) {
    const failure = classify(error, failureContext(connection, name, keys, args));
    throw failure instanceof CorruptStateError ? failure : error;
  }
  return parseReply(name, reply);
}

type WritingScriptName = Exclude<ScriptName, ReadOnlyScriptName>;

/** One typed function per script: `scripts.renew(connection, keys, { channel, memberId, … })`. */
type ScriptFunction<N extends ScriptName> = (
  connection: Connection,
  keys: ScriptKeys<N>,
  args: ScriptArgs<N>,
) => Promise<ScriptReply<N>>;

function script<N extends WritingScriptName>(name: N): ScriptFunction<N> {
  return (connection, keys, args) => runScript(connection, name, keys, args);
}

export const scripts: { readonly [N in Exclude<WritingScriptName, QueueScriptName>]: ScriptFunction<N> } = {
  join: script('join'),
  renew: script('renew'),
  release: script('release'),
  disable: script('disable'),
  leave: script('leave'),
  set_weight: script('set_weight'),
  set_goal: script('set_goal'),
  forget: script('forget'),
  commit: script('commit'),
  quorum_renew: script('quorum_renew'),
};

/** The queue's scripts by their name in `lua/queue/`: `queueScripts.renew(connection, keys, { workerId, … })`. */
export const queueScripts: {
  readonly [N in Extract<WritingScriptName, QueueScriptName> as N extends `queue/${infer M}`
    ? M
    : never]: ScriptFunction<N>;
} = {
  enqueue: script('queue/enqueue'),
  renew: script('queue/renew'),
  complete: script('queue/complete'),
  leave: script('queue/leave'),
};

/** One role change announced on the group's channel, as sent: [member, role, epoch, slot, reason]. */
export interface AnnouncedChange {
  role: string;
  epoch: number;
  slot: number;
  reason: string;
}

/**
 * A message of the group's channel: its incarnation and version, and the role changes it
 * announces, by member id (a member looks itself up in O(1), however many changes there are).
 */
export interface Announcement {
  incarnation: number;
  version: number;
  changes: ReadonlyMap<string, AnnouncedChange>;
}

export function parseAnnouncement(message: string): Announcement | undefined {
  try {
    const parsed = JSON.parse(message) as { i?: unknown; v?: unknown; c?: unknown };
    if (typeof parsed.v !== 'number') return undefined;
    const changes = new Map<string, AnnouncedChange>();
    for (const change of Array.isArray(parsed.c) ? (parsed.c as unknown[]) : []) {
      // A change that is not a list makes the whole message unreadable (caught below).
      const [member, role, epoch, slot, reason] = change as unknown[];
      changes.set(String(member), {
        role: String(role),
        epoch: Number(epoch),
        slot: Number(slot),
        reason: String(reason),
      });
    }
    return { incarnation: Number(parsed.i) || 0, version: parsed.v, changes };
  } catch {
    return undefined;
  }
}
