import { ScriptError } from './errors.js';
import type { GroupKeys } from './keys.js';
import type { QueueKeys } from './queue/keys.js';

/**
 * What every Lua script in `lua/` takes and answers, in one table: its KEYS by name, its ARGV
 * by name in order, and the shape of its reply. Callers pass a named-arguments object and get a
 * named reply (scripts.ts); the positions live here only. Each script's header comment lists
 * the same names in the same order (test/script-specs.test.ts holds them to this table).
 * A script's name is its file under `lua/`: the queue's scripts are `queue/<name>`.
 */

/** A group script's KEYS: the group's keys by their name in GroupKeys, and the member's heartbeat key. */
export type GroupKeyName = Exclude<keyof GroupKeys, 'group' | 'events' | 'scriptKeys'>;

/** A queue script's KEYS: the queue's keys by their name in QueueKeys, and the worker's inbox. */
export type QueueKeyName = Exclude<keyof QueueKeys, 'queue' | 'events' | 'scriptKeys'>;

export type KeyName = GroupKeyName | QueueKeyName;

/** The keys of one member or worker, and the argument that names it (its spec must take that argument). */
export const ACTOR_KEYS = { heartbeat: 'memberId', inbox: 'workerId' } as const;

/** One field of the entries of a list argument. */
export type ScalarKind = 'text' | 'integer';

/**
 * What one ARGV entry carries: text, a whole number, bytes (a string or a Buffer), a flag ('1'
 * or '0'), or a list of entries that fills the rest of ARGV, each entry its fields in order
 * (only as the last argument).
 */
export type ArgumentKind = ScalarKind | 'bytes' | 'flag' | { readonly list: Readonly<Record<string, ScalarKind>> };

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
const list: ReplyField<unknown[]> = (value, script) => {
  if (!Array.isArray(value)) throw new ScriptError(script, `expected a list, got ${JSON.stringify(value)}`);
  return value;
};
const texts: ReplyField<string[]> = (value, script) => list(value, script).map(String);
/** A flat list `{ a, 1, b, 2 }` as pairs `[['a', '1'], ['b', '2']]`. */
const pairs: ReplyField<[string, string][]> = (value, script) => {
  const entries = texts(value, script);
  const paired: [string, string][] = [];
  for (let i = 0; i + 1 < entries.length; i += 2) paired.push([entries[i] as string, entries[i + 1] as string]);
  return paired;
};

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

/** The member's view from the list `view` in lua/lib.lua returns. */
function parseView(value: unknown, script: string): MemberView {
  const entries = list(value, script);
  const names = Object.keys(VIEW_FIELDS) as (keyof MemberView)[];
  if (entries.length !== names.length) throw new ScriptError(script, `unexpected view ${JSON.stringify(value)}`);
  const view: Record<string, unknown> = {};
  names.forEach((name, i) => {
    view[name] = (VIEW_FIELDS[name] as ReplyField<unknown>)(entries[i], script);
  });
  return view as unknown as MemberView;
}

/**
 * A renewal's reply in the steady state (see `steady` in lua/renew.lua): nothing changed since
 * the member's last join or renewal reply, whose view the member keeps; only the server's time
 * is new (its lease now ends at serverNow + A, as after any renewal), and to the next in line
 * the slot holders' earliest lease deadline, which moves with their renewals.
 */
export interface SteadyReply {
  steady: true;
  /** Redis time when the script ran, in ms. */
  serverNow: number;
  /** Next in line: the earliest lease deadline of the slot holders (Redis ms); else 0. */
  watchDeadline: number;
}

/** What a renewal answers: the member's view, or in the steady state the server's time (and watch deadline). */
export type RenewalReply = MemberView | SteadyReply;

/** A renewal's reply that left the member's view as it was. */
export function isSteady(reply: RenewalReply): reply is SteadyReply {
  return 'steady' in reply;
}

/**
 * A reply: the member's view, the view or the server's time alone (a renewal), a list of named entries (`{ a, b }` in the header), or one value
 * the header names in the words of `of` (`the number of keys deleted`).
 */
export type ReplySpec =
  | { readonly shape: 'view' }
  | { readonly shape: 'renewal' }
  | { readonly shape: 'fields'; readonly fields: Readonly<Record<string, ReplyField<unknown>>> }
  | { readonly shape: 'value'; readonly of: string; readonly value: ReplyField<unknown> };

export interface ScriptSpec<K extends KeyName = KeyName> {
  readonly keys: readonly K[];
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

const GROUP_SCRIPTS = {
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
    reply: { shape: 'renewal' },
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
  forget: { keys: GROUP, argv: {}, reply: { shape: 'value', of: 'the number of keys deleted', value: number } },
  commit: {
    keys: ['config', 'leases', 'slots', 'commits', 'feed'],
    argv: { memberId: 'text', nonce: 'text', slot: 'integer', epoch: 'integer', id: 'text' },
    reply: { shape: 'fields', fields: { outcome: text, detail: raw } },
  },
  quorum_renew: {
    keys: [...WITH_HEARTBEAT, 'floor'],
    argv: {
      ...MEMBER,
      nonce: 'text',
      stamp: 'integer',
      knownFloor: 'integer',
      claimedEpoch: 'integer',
      claimedSlot: 'integer',
      proposedEpoch: 'integer',
      proposedSlot: 'integer',
    },
    reply: {
      shape: 'fields',
      fields: {
        view: (value, script) => parseView(value, script),
        floor: epoch,
        eligible: flag,
        free: (value, script) => list(value, script).map(Number),
      },
    },
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
} as const satisfies Record<string, ScriptSpec<GroupKeyName>>;

export type WorkerStatus = 'ok' | 'joined' | 'rejoined' | 'done' | 'retry' | 'dead' | 'stale' | 'left';

const STATUSES = new Set<WorkerStatus>(['ok', 'joined', 'rejoined', 'done', 'retry', 'dead', 'stale', 'left']);

/** What a worker's script tells it (see `reply` in lua/queue/lib.lua). */
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
  /**
   * The earliest Redis time at which a lease lapses or a delivery expires (0: none), as a
   * renewal reads it; -1 from the scripts that do not read it (a completion, a leave).
   */
  reapAt: number;
  /**
   * Deliveries to this worker that came in the reply, not through its inbox (inbox elements, as
   * text): the next task a completion dispatched to it, or one a renewal sends again.
   */
  next: string[];
  /** The microseconds past `serverNow` (0–999): Redis reads its clock in whole ms, rounded down. */
  serverMicros: number;
}

/** The worker reply's fields in the order `reply` in lua/queue/lib.lua returns them. */
const WORKER_FIELDS: { readonly [K in keyof WorkerReply]: ReplyField<WorkerReply[K]> } = {
  status: (value, script) => {
    if (!STATUSES.has(value as WorkerStatus)) throw new ScriptError(script, `unknown status ${String(value)}`);
    return value as WorkerStatus;
  },
  serverNow: number,
  quarantineUntil: number,
  quarantineReason: text,
  lost: texts,
  dead: (value, script) => pairs(value, script).map(([id, deliveries]) => ({ id, deliveries: Number(deliveries) })),
  reapAt: number,
  next: texts,
  serverMicros: number,
};

const QUEUE = ['config', 'workers', 'leases', 'order', 'deliveries', 'tasks', 'deadlines', 'dead'] as const;
const WORKER = { shape: 'fields', fields: WORKER_FIELDS } as const;

const QUEUE_SCRIPTS = {
  'queue/enqueue': {
    keys: QUEUE,
    argv: { dataType: 'text', data: 'bytes' },
    reply: { shape: 'value', of: "the task's id", value: text },
  },
  'queue/renew': {
    keys: [...QUEUE, 'inbox'],
    argv: {
      workerId: 'text',
      weight: 'integer',
      capacity: 'integer',
      completeTime: 'integer',
      maxDeliveries: 'integer',
      activationInterval: 'integer',
      nonce: 'text',
      host: 'text',
      pid: 'integer',
      tokenFloor: 'integer',
      joining: 'flag',
      claims: { list: { id: 'text', token: 'integer', expires: 'integer' } },
    },
    reply: WORKER,
  },
  'queue/complete': {
    keys: QUEUE,
    argv: {
      workerId: 'text',
      taskId: 'text',
      token: 'integer',
      outcome: 'text',
      tokenFloor: 'integer',
      inline: 'flag',
    },
    reply: WORKER,
  },
  'queue/leave': { keys: QUEUE, argv: { workerId: 'text', nonce: 'text' }, reply: WORKER },
  'queue/observe': {
    keys: QUEUE,
    argv: { limit: 'integer' },
    reply: {
      shape: 'fields',
      fields: {
        now: number,
        quarantineUntil: number,
        quarantineReason: text,
        createdAt: number,
        length: number,
        inFlight: number,
        dead: number,
        workers: pairs,
        leases: pairs,
        listed: pairs,
        /** A listed task's delivery record, null where it has none. */
        deliveries: (value, script) => list(value, script).map((entry) => (entry === null ? null : String(entry))),
      },
    },
    readOnly: true,
  },
} as const satisfies Record<`queue/${string}`, ScriptSpec<QueueKeyName>>;

export const SCRIPT_SPECS = { ...GROUP_SCRIPTS, ...QUEUE_SCRIPTS };

export type ScriptName = keyof typeof SCRIPT_SPECS;

export type QueueScriptName = keyof typeof QUEUE_SCRIPTS;

type KeysByScript = { readonly [N in ScriptName]: N extends QueueScriptName ? QueueKeys : GroupKeys };

/** The keys a script runs on: a queue's for the queue's scripts, else a group's. */
export type ScriptKeys<N extends ScriptName> = KeysByScript[N];

type ArgumentValue<K> = K extends 'integer'
  ? number
  : K extends 'bytes'
    ? string | Buffer
    : K extends 'flag'
      ? boolean
      : K extends { list: infer F }
        ? readonly { readonly [P in keyof F]: ArgumentValue<F[P]> }[]
        : string;

type ArgvOf<N extends ScriptName> = (typeof SCRIPT_SPECS)[N]['argv'];

/** A script's arguments object: one field per ARGV entry of its spec. */
export type ScriptArgs<N extends ScriptName> = {
  readonly [A in keyof ArgvOf<N>]: ArgumentValue<ArgvOf<N>[A]>;
};

type ReplyOf<R> = R extends { shape: 'view' }
  ? MemberView
  : R extends { shape: 'renewal' }
    ? RenewalReply
    : R extends { shape: 'fields'; fields: infer F }
      ? { [K in keyof F]: F[K] extends ReplyField<infer T> ? T : never }
      : R extends { shape: 'value'; value: ReplyField<infer T> }
        ? T
        : never;

/** What a script answers, with its reply entries named. */
export type ScriptReply<N extends ScriptName> = ReplyOf<(typeof SCRIPT_SPECS)[N]['reply']>;

/** The scripts whose reply is the member's view. */
export type MemberScriptName = {
  [N in ScriptName]: (typeof SCRIPT_SPECS)[N]['reply'] extends { shape: 'view' } ? N : never;
}[ScriptName];

/** KEYS and ARGV of one call, in the order the script reads them. */
export interface ScriptInvocation {
  keys: string[];
  argv: (string | number | Buffer)[];
}

type Scalar = string | number | Buffer;

/** One ARGV entry of a spec, prepared once: its name, and the fields of each list element. */
interface ArgumentSlot {
  readonly name: string;
  readonly flag: boolean;
  /** A list's fields, in order; undefined for a single value. */
  readonly fields?: readonly string[];
}

const argumentSlots = new Map<ScriptName, readonly ArgumentSlot[]>();

/** The ARGV layout of a script (read from its spec once per process: every call lays out its arguments). */
function slotsOf(name: ScriptName): readonly ArgumentSlot[] {
  let slots = argumentSlots.get(name);
  if (!slots) {
    slots = Object.entries(SCRIPT_SPECS[name].argv as Readonly<Record<string, ArgumentKind>>).map(([arg, kind]) =>
      typeof kind === 'string'
        ? { name: arg, flag: kind === 'flag' }
        : { name: arg, flag: false, fields: Object.keys(kind.list) },
    );
    argumentSlots.set(name, slots);
  }
  return slots;
}

/** Lays a call's named keys and arguments out in the script's positions. */
export function scriptInvocation<N extends ScriptName>(
  name: N,
  keys: ScriptKeys<N>,
  args: ScriptArgs<N>,
): ScriptInvocation {
  const spec: ScriptSpec = SCRIPT_SPECS[name];
  const named = args as Readonly<Record<string, unknown>>;
  const byName = keys as unknown as Readonly<Record<string, string | ((id: string) => string)>>;
  const keyList: string[] = [];
  for (const key of spec.keys) {
    const entry = byName[key];
    keyList.push(
      typeof entry === 'function' ? entry(String(named[ACTOR_KEYS[key as keyof typeof ACTOR_KEYS]])) : String(entry),
    );
  }
  const argv: Scalar[] = [];
  for (const slot of slotsOf(name)) {
    const value = named[slot.name];
    if (slot.fields) {
      for (const entry of value as readonly Readonly<Record<string, Scalar>>[]) {
        for (const field of slot.fields) argv.push(entry[field] as Scalar);
      }
    } else argv.push(slot.flag ? (value ? '1' : '0') : (value as Scalar));
  }
  return { keys: keyList, argv };
}

const replyFieldLists = new Map<object, readonly [string, ReplyField<unknown>][]>();

/** A reply spec's fields in order, with their readers (listed once per process). */
function replyFields(fields: Readonly<Record<string, ReplyField<unknown>>>): readonly [string, ReplyField<unknown>][] {
  let list = replyFieldLists.get(fields);
  if (!list) {
    list = Object.entries(fields);
    replyFieldLists.set(fields, list);
  }
  return list;
}

/** A script's reply with its entries named as its spec names them. */
export function parseReply<N extends ScriptName>(name: N, reply: unknown): ScriptReply<N> {
  const spec: ReplySpec = SCRIPT_SPECS[name].reply;
  if (spec.shape === 'value') return spec.value(reply, name) as ScriptReply<N>;
  if (spec.shape === 'renewal' && (!Array.isArray(reply) || reply.length === 2)) {
    const [serverNow, watchDeadline] = Array.isArray(reply) ? (reply as unknown[]) : [reply, 0];
    const times = [serverNow, watchDeadline];
    if (!times.every((t) => typeof t === 'number' && Number.isSafeInteger(t) && t >= 0) || serverNow === 0) {
      throw new ScriptError(name, `unexpected reply ${JSON.stringify(reply)}`);
    }
    return { steady: true, serverNow, watchDeadline } as SteadyReply as ScriptReply<N>;
  }
  const fields = replyFields(spec.shape === 'fields' ? spec.fields : VIEW_FIELDS);
  if (!Array.isArray(reply) || reply.length !== fields.length) {
    throw new ScriptError(name, `unexpected reply ${JSON.stringify(reply)}`);
  }
  const parsed: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i++) {
    const [field, read] = fields[i] as [string, ReplyField<unknown>];
    parsed[field] = read(reply[i], name);
  }
  return parsed as ScriptReply<N>;
}
