import type { Cluster, Redis } from 'ioredis';
import { permissionError } from './connections.js';
import { corruptState, MemberExistsError, ParamMismatchError, ScriptError, UnderstudyError } from './errors.js';
import type { GroupKeys } from './keys.js';
import { luaSource } from './lua.js';

/**
 * The Lua scripts, one per operation, loaded once per connection through `defineCommand`
 * under versioned names: two library versions sharing a connection never run each other's
 * code, and ioredis falls back from EVALSHA to EVAL on NOSCRIPT by itself.
 */
const SCRIPT_VERSION = 1;

const SCRIPTS = {
  join: 7,
  renew: 7,
  release: 6,
  leave: 7,
  set_weight: 6,
  disable: 6,
  set_goal: 6,
  forget: 6,
  commit: 5,
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/** Scripts whose KEYS are not the group scripts' (the six, and the heartbeat key for seven). */
const OWN_KEYS: Partial<Record<ScriptName, (keys: GroupKeys) => string[]>> = {
  commit: (keys) => [keys.config, keys.leases, keys.slots, keys.commits, keys.feed],
};

const defined = new WeakSet<Redis | Cluster>();

type Connection = Redis | Cluster;
type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

function commandName(name: ScriptName): string {
  return `understudy${SCRIPT_VERSION}_${name}`;
}

/** Defines every script on a connection (once). */
export function defineScripts(connection: Connection): void {
  if (defined.has(connection)) return;
  for (const [name, numberOfKeys] of Object.entries(SCRIPTS) as [ScriptName, number][]) {
    connection.defineCommand(commandName(name), { numberOfKeys, lua: luaSource(`${name}.lua`) });
  }
  defined.add(connection);
}

/**
 * Runs a script on a group's keys (plus the member's heartbeat key where the script takes
 * it); its error replies become the library's error classes, in this one place.
 */
export async function runScript(
  connection: Connection,
  name: ScriptName,
  keys: GroupKeys,
  args: readonly (string | number)[],
  memberId?: string,
): Promise<unknown> {
  defineScripts(connection);
  const call = (connection as unknown as Record<string, ScriptCall>)[commandName(name)];
  if (!call) throw new ScriptError(name, 'script is not defined on this connection');
  const keyList =
    OWN_KEYS[name]?.(keys) ??
    (SCRIPTS[name] === 7 ? [...keys.scriptKeys, keys.heartbeat(memberId ?? '')] : keys.scriptKeys);
  try {
    return await call.call(connection, ...keyList, ...args);
  } catch (error) {
    throw mapScriptError(name, keys.group, error, connection);
  }
}

function mapScriptError(name: ScriptName, group: string, error: unknown, connection: Connection): unknown {
  if (!(error instanceof Error) || error instanceof UnderstudyError) return error;
  const refused = permissionError(error, connection, `run the ${name} script on group ${group}`, group);
  if (refused) return refused;
  const corrupt = corruptState(group, error);
  if (corrupt) return corrupt;
  const mismatch = /^PARAM_MISMATCH (activeGoal|activationInterval) (\d+) (\d+)/.exec(error.message);
  if (mismatch) {
    const [, field, requested, current] = mismatch as unknown as [string, 'activeGoal', string, string];
    return new ParamMismatchError(group, field, Number(requested), Number(current));
  }
  const exists = /^MEMBER_EXISTS (.*)$/.exec(error.message);
  if (exists) return new MemberExistsError(group, exists[1] ?? '');
  if (error.message.startsWith('GROUP_NOT_EMPTY')) {
    const live = error.message.split(' ')[1];
    return new ScriptError(name, `group ${group} still has ${live} live members`, { cause: error });
  }
  if (error.message.startsWith('NO_GROUP')) {
    return new ScriptError(name, `group ${group} has no members`, { cause: error });
  }
  if (/^ERR |^NOSCRIPT|user_script/.test(error.message)) return new ScriptError(name, error.message, { cause: error });
  return error; // connection errors and timeouts: the caller decides what they mean
}

export type ServerRole = 'active' | 'releasing' | 'preparing' | 'standby' | 'gone';

/** What a member script tells its caller (see `view` in lua/lib.lua). */
export interface MemberView {
  role: ServerRole;
  epoch: number;
  slot: number;
  reason: string;
  version: number;
  activeGoal: number;
  activationInterval: number;
  heartbeatInterval: number;
  /** Redis time when the script ran, in ms. */
  serverNow: number;
  /** For the next in line: the earliest lease deadline of the slot holders (Redis ms), else 0. */
  watchDeadline: number;
  quarantineUntil: number;
  slotsHeld: number;
  liveMembers: number;
  weight: number;
  rejoined: boolean;
  /** When the group's state was created (Redis ms): versions count afresh after a loss of state. */
  incarnation: number;
}

const ROLES = new Set<ServerRole>(['active', 'releasing', 'preparing', 'standby', 'gone']);

export function parseView(script: ScriptName, reply: unknown): MemberView {
  if (!Array.isArray(reply) || reply.length !== 16) {
    throw new ScriptError(script, `unexpected reply ${JSON.stringify(reply)}`);
  }
  const [
    role,
    epoch,
    slot,
    reason,
    version,
    goal,
    activation,
    heartbeat,
    now,
    watch,
    quarantine,
    held,
    live,
    w,
    re,
    inc,
  ] = reply as unknown[];
  if (!ROLES.has(role as ServerRole)) throw new ScriptError(script, `unknown role ${String(role)}`);
  return {
    role: role as ServerRole,
    epoch: safeInteger(script, epoch),
    slot: Number(slot),
    reason: String(reason),
    version: Number(version),
    activeGoal: Number(goal),
    activationInterval: Number(activation),
    heartbeatInterval: Number(heartbeat),
    serverNow: Number(now),
    watchDeadline: Number(watch),
    quarantineUntil: Number(quarantine),
    slotsHeld: Number(held),
    liveMembers: Number(live),
    weight: Number(w),
    rejoined: Number(re) === 1,
    incarnation: Number(inc) || 0,
  };
}

function safeInteger(script: ScriptName, value: unknown): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new ScriptError(script, `epoch ${String(value)} is not a safe integer`);
  return n;
}

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
