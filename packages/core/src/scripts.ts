import type { Cluster, Redis } from 'ioredis';
import { redisUser } from './connections/diagnosis.js';
import { ScriptError } from './errors.js';
import { classify } from './failures.js';
import type { GroupKeys } from './keys.js';
import { luaSource } from './lua.js';
import {
  parseReply,
  SCRIPT_SPECS,
  type ScriptArgs,
  type ScriptName,
  type ScriptReply,
  type ScriptSpec,
  scriptInvocation,
} from './script-specs.js';

/** The reply types, where the member's units have always found them. */
export type { MemberView, ServerRole } from './script-specs.js';

/**
 * The Lua scripts, one per operation (their KEYS, ARGV and reply in script-specs.ts), loaded
 * once per connection through `defineCommand` under versioned names: two library versions
 * sharing a connection never run each other's code, and ioredis falls back from EVALSHA to
 * EVAL on NOSCRIPT by itself.
 */
const SCRIPT_VERSION = 1;

const defined = new WeakSet<Redis | Cluster>();

type Connection = Redis | Cluster;
type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

function commandName(name: ScriptName): string {
  return `understudy${SCRIPT_VERSION}_${name}`;
}

/** Defines every script but the monitor's read-only one on a connection (once). */
function defineScripts(connection: Connection): void {
  if (defined.has(connection)) return;
  for (const [name, spec] of Object.entries(SCRIPT_SPECS) as [ScriptName, ScriptSpec][]) {
    if (spec.readOnly) continue;
    connection.defineCommand(commandName(name), { numberOfKeys: spec.keys.length, lua: luaSource(`${name}.lua`) });
  }
  defined.add(connection);
}

/**
 * Runs a script on a group's keys with its named arguments, and names the entries of its
 * reply; every failure becomes one of the library's errors (`classify`), in this one place.
 */
async function runScript<N extends ScriptName>(
  connection: Connection,
  name: N,
  keys: GroupKeys,
  args: ScriptArgs<N>,
): Promise<ScriptReply<N>> {
  defineScripts(connection);
  const call = (connection as unknown as Record<string, ScriptCall>)[commandName(name)];
  if (!call) throw new ScriptError(name, 'script is not defined on this connection');
  const invocation = scriptInvocation(name, keys, args);
  let reply: unknown;
  try {
    reply = await call.call(connection, ...invocation.keys, ...invocation.argv);
  } catch (error) {
    const memberId = (args as { memberId?: string }).memberId;
    throw classify(error, {
      operation: `run the ${name} script on group ${keys.group}`,
      user: redisUser(connection),
      group: keys.group,
      actor: memberId === undefined ? undefined : `member ${memberId}`,
      script: name,
    });
  }
  return parseReply(name, reply);
}

/** Every script but observe.lua, which the monitor runs with EVALSHA_RO (monitor/observe.ts). */
type WritingScriptName = Exclude<ScriptName, 'observe'>;

/** One typed function per script: `scripts.renew(connection, keys, { channel, memberId, … })`. */
type ScriptFunction<N extends ScriptName> = (
  connection: Connection,
  keys: GroupKeys,
  args: ScriptArgs<N>,
) => Promise<ScriptReply<N>>;

function script<N extends WritingScriptName>(name: N): ScriptFunction<N> {
  return (connection, keys, args) => runScript(connection, name, keys, args);
}

export const scripts: { readonly [N in WritingScriptName]: ScriptFunction<N> } = {
  join: script('join'),
  renew: script('renew'),
  release: script('release'),
  disable: script('disable'),
  leave: script('leave'),
  set_weight: script('set_weight'),
  set_goal: script('set_goal'),
  forget: script('forget'),
  commit: script('commit'),
};

/** One role change announced on the group's channel: [member, role, epoch, slot, reason]. */
export interface Announcement {
  incarnation: number;
  version: number;
  changes: { member: string; role: string; epoch: number; slot: number; reason: string }[];
}

export function parseAnnouncement(message: string): Announcement | undefined {
  try {
    const parsed = JSON.parse(message) as { i?: unknown; v?: unknown; c?: unknown };
    if (typeof parsed.v !== 'number') return undefined;
    const changes = Array.isArray(parsed.c) ? (parsed.c as unknown[][]) : [];
    return {
      incarnation: Number(parsed.i) || 0,
      version: parsed.v,
      changes: changes.map(([member, role, epoch, slot, reason]) => ({
        member: String(member),
        role: String(role),
        epoch: Number(epoch),
        slot: Number(slot),
        reason: String(reason),
      })),
    };
  } catch {
    return undefined;
  }
}
