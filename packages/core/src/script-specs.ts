import { ScriptError } from './errors.js';
import type { GroupKeys } from './keys.js';

/**
 * What every Lua script in `lua/` takes and answers, in one table: its KEYS by name, its ARGV
 * by name in order, and the shape of its reply. Callers pass a named-arguments object and get a
 * named reply (scripts.ts); the positions live here only. Each script's header comment lists
 * the same names in the same order (test/script-specs.test.ts holds them to this table).
 */

/** A script's KEYS: the group's keys by their name in GroupKeys, and the member's heartbeat key. */
export type KeyName = 'config' | 'members' | 'leases' | 'rank' | 'slots' | 'log' | 'feed' | 'commits' | 'heartbeat';

/** What one ARGV entry carries: text, or a whole number. */
export type ArgumentKind = 'text' | 'integer';

/** Turns one slot of a reply into its value; throws a ScriptError naming the script. */
export type ReplyField<T> = (value: unknown, script: string) => T;

export type ServerRole = 'active' | 'releasing' | 'preparing' | 'standby' | 'gone';

const ROLES = new Set<ServerRole>(['active', 'releasing', 'preparing', 'standby', 'gone']);

const role: ReplyField<ServerRole> = (value, script) => {
  if (!ROLES.has(value as ServerRole)) throw new ScriptError(script, `unknown role ${String(value)}`);
  return value as ServerRole;
};
const epoch: ReplyField<number> = (value, script) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new ScriptError(script, `epoch ${String(value)} is not a safe integer`);
  return n;
};
const number: ReplyField<number> = (value) => Number(value);
const text: ReplyField<string> = (value) => String(value);
const flag: ReplyField<boolean> = (value) => Number(value) === 1;
/** A reply entry passed on as Redis sent it (the caller checks it). */
const raw: ReplyField<unknown> = (value) => value;

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

/** The view's fields in the order `view` in lua/lib.lua returns them. */
export const VIEW_FIELDS: { readonly [K in keyof MemberView]: ReplyField<MemberView[K]> } = {
  role,
  epoch,
  slot: number,
  reason: text,
  version: number,
  activeGoal: number,
  activationInterval: number,
  heartbeatInterval: number,
  serverNow: number,
  watchDeadline: number,
  quarantineUntil: number,
  slotsHeld: number,
  liveMembers: number,
  weight: number,
  rejoined: flag,
  incarnation: (value) => Number(value) || 0,
};

/**
 * A reply: the member's view, a list of named entries (`{ a, b }` in the header), or the count
 * the header names (`the number of …`).
 */
export type ReplySpec =
  | { readonly shape: 'view' }
  | { readonly shape: 'fields'; readonly fields: Readonly<Record<string, ReplyField<unknown>>> }
  | { readonly shape: 'count'; readonly of: string };

export interface ScriptSpec {
  readonly keys: readonly KeyName[];
  /** ARGV in order: the name of each entry in the arguments object, and what it carries. */
  readonly argv: Readonly<Record<string, ArgumentKind>>;
  readonly reply: ReplySpec;
  /** Run with EVALSHA_RO by the monitor, not defined as a command on member connections. */
  readonly readOnly?: true;
}

const GROUP = ['config', 'members', 'leases', 'rank', 'slots', 'log'] as const;
const WITH_HEARTBEAT = [...GROUP, 'heartbeat'] as const;
const VIEW = { shape: 'view' } as const;

/** What a member sends about itself and the group's parameters, on joining and every renewal. */
const MEMBER = {
  channel: 'text',
  memberId: 'text',
  weight: 'integer',
  activeGoal: 'integer',
  activationInterval: 'integer',
  heartbeatInterval: 'integer',
  preparationInterval: 'integer',
  host: 'text',
  pid: 'integer',
} as const;

export const SCRIPT_SPECS = {
  join: { keys: WITH_HEARTBEAT, argv: { ...MEMBER, nonce: 'text' }, reply: VIEW },
  renew: {
    keys: WITH_HEARTBEAT,
    argv: {
      ...MEMBER,
      claimedEpoch: 'integer',
      claimedSlot: 'integer',
      nonce: 'text',
      knownIncarnation: 'integer',
      knownVersion: 'integer',
      epochFloor: 'integer',
      leaseEnd: 'integer',
    },
    reply: VIEW,
  },
  release: {
    keys: GROUP,
    argv: {
      channel: 'text',
      memberId: 'text',
      epoch: 'integer',
      reason: 'text',
      preparationInterval: 'integer',
      nonce: 'text',
    },
    reply: VIEW,
  },
  disable: {
    keys: GROUP,
    argv: { channel: 'text', memberId: 'text', epoch: 'integer', preparationInterval: 'integer', nonce: 'text' },
    reply: VIEW,
  },
  leave: { keys: WITH_HEARTBEAT, argv: { channel: 'text', memberId: 'text', nonce: 'text' }, reply: VIEW },
  set_weight: {
    keys: GROUP,
    argv: { channel: 'text', memberId: 'text', weight: 'integer', preparationInterval: 'integer', nonce: 'text' },
    reply: VIEW,
  },
  set_goal: {
    keys: GROUP,
    argv: { channel: 'text', activeGoal: 'integer' },
    reply: { shape: 'fields', fields: { version: number, previous: number } },
  },
  forget: { keys: GROUP, argv: {}, reply: { shape: 'count', of: 'keys deleted' } },
  commit: {
    keys: ['config', 'leases', 'slots', 'commits', 'feed'],
    argv: { memberId: 'text', nonce: 'text', slot: 'integer', epoch: 'integer', id: 'text' },
    reply: { shape: 'fields', fields: { outcome: text, detail: raw } },
  },
  observe: {
    keys: ['config', 'members', 'leases', 'rank', 'slots'],
    argv: {},
    reply: {
      shape: 'fields',
      fields: { now: number, config: raw, rank: raw, leases: raw, members: raw, slots: raw },
    },
    readOnly: true,
  },
} as const satisfies Record<string, ScriptSpec>;

export type ScriptName = keyof typeof SCRIPT_SPECS;

type ArgvOf<N extends ScriptName> = (typeof SCRIPT_SPECS)[N]['argv'];

/** A script's arguments object: one field per ARGV entry of its spec. */
export type ScriptArgs<N extends ScriptName> = {
  readonly [A in keyof ArgvOf<N>]: ArgvOf<N>[A] extends 'integer' ? number : string;
};

type ReplyOf<R> = R extends { shape: 'view' }
  ? MemberView
  : R extends { shape: 'fields'; fields: infer F }
    ? { [K in keyof F]: F[K] extends ReplyField<infer T> ? T : never }
    : number;

/** What a script answers, with its reply entries named. */
export type ScriptReply<N extends ScriptName> = ReplyOf<(typeof SCRIPT_SPECS)[N]['reply']>;

/** The scripts whose reply is the member's view. */
export type MemberScriptName = {
  [N in ScriptName]: (typeof SCRIPT_SPECS)[N]['reply'] extends { shape: 'view' } ? N : never;
}[ScriptName];

/** KEYS and ARGV of one call, in the order the script reads them. */
export interface ScriptInvocation {
  keys: string[];
  argv: (string | number)[];
}

/** Lays a call's named keys and arguments out in the script's positions. */
export function scriptInvocation<N extends ScriptName>(
  name: N,
  keys: GroupKeys,
  args: ScriptArgs<N>,
): ScriptInvocation {
  const spec: ScriptSpec = SCRIPT_SPECS[name];
  const named = args as Readonly<Record<string, string | number>>;
  return {
    keys: spec.keys.map((key) => (key === 'heartbeat' ? keys.heartbeat(String(named.memberId)) : keys[key])),
    argv: Object.keys(spec.argv).map((arg) => named[arg] as string | number),
  };
}

/** A script's reply with its entries named as its spec names them. */
export function parseReply<N extends ScriptName>(name: N, reply: unknown): ScriptReply<N> {
  const spec: ReplySpec = SCRIPT_SPECS[name].reply;
  if (spec.shape === 'count') return Number(reply) as ScriptReply<N>;
  const fields: Readonly<Record<string, ReplyField<unknown>>> = spec.shape === 'view' ? VIEW_FIELDS : spec.fields;
  const names = Object.keys(fields);
  if (!Array.isArray(reply) || reply.length !== names.length) {
    throw new ScriptError(name, `unexpected reply ${JSON.stringify(reply)}`);
  }
  const parsed: Record<string, unknown> = {};
  names.forEach((field, i) => {
    parsed[field] = (fields[field] as ReplyField<unknown>)(reply[i], name);
  });
  return parsed as ScriptReply<N>;
}
