import { createHook } from 'node:async_hooks';
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  forgetGroup,
  type JoinOptions,
  type JoinQueueOptions,
  joinGroup,
  joinQueue,
  type Member,
  type QueueWorker,
  type RedisSource,
} from '@understudy/core';
import { jumpingClock } from '@understudy/core/testing';
import { hrNow, maxOverlap, type RedisServer, runTypeScript, startRedis, waitFor } from '@understudy/testkit';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { FeedReader, type FeedReaderOptions } from '../src/feed/reader.js';
import type { Call } from '../src/member/calls.js';
import type { LeaseHost } from '../src/member/lease.js';
import { type Delivery, parseDelivery } from '../src/queue/inbox.js';
import type { QueueKeys } from '../src/queue/keys.js';
import type { MemberView } from '../src/script-specs.js';
import { queueScripts } from '../src/scripts.js';

/** Short intervals for tests: H = 50 ms, A = 400 ms. */
export const FAST = Object.freeze({ heartbeatInterval: 50, activationInterval: 400 });

export { hrNow, maxOverlap, uniqueGroup, waitFor } from '@understudy/testkit';

/**
 * A server of the test file's own (started before its tests, stopped after them) and a plain
 * client on it for looking at what the members wrote.
 */
export function fileServer(): { server: () => RedisServer; observer: () => Redis } {
  let server: RedisServer | undefined;
  let observer: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis();
    observer = new Redis(server.url, { connectionName: 'test-observer' });
  });
  afterAll(() => observer?.disconnect());
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('fileServer() is ready only inside tests and hooks');
    return value;
  };
  return { server: () => need(server), observer: () => need(observer) };
}

export interface TimelineEntry {
  t: number;
  member: string;
  event: 'activate' | 'deactivate' | 'deactivated' | 'prepare' | 'lease';
  epoch?: number;
  reason?: string;
  /** For 'lease': the member's lease deadline, on the hrNow() clock. */
  deadline?: number;
}

/**
 * Records what every member believes, with hrNow() timestamps, and proves "never more than
 * N active": a member believes it is active from `activate` until `deactivate` or until
 * its lease deadline passes, whichever is first.
 */
export class Timeline {
  readonly entries: TimelineEntry[] = [];

  record(entry: Omit<TimelineEntry, 't'> & { t?: number }): void {
    this.entries.push({ t: hrNow(), ...entry });
  }

  /** Attaches to an in-process member; handlers' settle times are recorded by `handlers()`. */
  watch(member: Member): void {
    const offset = hrNow() - performance.now();
    member.on('activate', (i) =>
      this.record({ member: member.id, event: 'activate', epoch: i.epoch, reason: i.reason }),
    );
    member.on('deactivate', (i) =>
      this.record({ member: member.id, event: 'deactivate', epoch: i.epoch, reason: i.reason }),
    );
    member.on('prepare', () => this.record({ member: member.id, event: 'prepare' }));
    member.on('renewal', (r) => {
      if (r.outcome === 'ok') this.record({ member: member.id, event: 'lease', deadline: r.leaseDeadline + offset });
    });
  }

  /** The most members that believed they were active at one instant. */
  maxConcurrentActive(): number {
    const sorted = [...this.entries].sort((a, b) => a.t - b.t);
    const intervals: [number, number][] = [];
    const open = new Map<string, { start: number; deadline: number }>();
    const deadlines = new Map<string, number>();
    for (const e of sorted) {
      if (e.event === 'lease' && e.deadline !== undefined) {
        const current = open.get(e.member);
        // A renewal extends belief only if it came before the deadline passed.
        if (current && e.t < current.deadline) current.deadline = Math.max(current.deadline, e.deadline);
        deadlines.set(e.member, Math.max(deadlines.get(e.member) ?? 0, e.deadline));
      } else if (e.event === 'activate') {
        open.set(e.member, { start: e.t, deadline: deadlines.get(e.member) ?? Number.POSITIVE_INFINITY });
      } else if (e.event === 'deactivate') {
        const current = open.get(e.member);
        if (current) intervals.push([current.start, Math.min(e.t, current.deadline)]);
        open.delete(e.member);
      }
    }
    for (const current of open.values()) intervals.push([current.start, current.deadline]);
    return maxOverlap(intervals);
  }

  of(member: string, event: TimelineEntry['event']): TimelineEntry[] {
    return this.entries.filter((e) => e.member === member && e.event === event);
  }
}

/**
 * Joins members and makes sure each one leaves when the test ends; then the test's groups
 * are forgotten, so a shared server (REDIS_URL) keeps no keys of them.
 */
export function memberFactory(server: () => RedisServer, defaults: Partial<JoinOptions> = {}) {
  const joined: Member[] = [];
  const groups = new Map<string, RedisSource>();
  afterEach(async () => {
    await Promise.allSettled(joined.splice(0).map((m) => m.leave()));
    const used = [...groups];
    groups.clear();
    await Promise.allSettled(used.map(([group, redis]) => forgetGroup({ redis, group })));
  });
  return async (options: Partial<JoinOptions> & { memberId: string; weight: number; group: string }) => {
    const redis = options.redis ?? server().url;
    groups.set(options.group, redis as RedisSource);
    const member = await joinGroup({ ...FAST, ...defaults, ...options, redis });
    joined.push(member);
    return member;
  };
}

/** Opens feed readers on the test file's server (short timeouts), stopped when each test ends. */
export function feedReaderFactory(server: () => RedisServer) {
  const readers: FeedReader[] = [];
  afterEach(async () => {
    await Promise.allSettled(readers.splice(0).map((r) => r.stop()));
  });
  return async (group: string, options: Partial<FeedReaderOptions> = {}): Promise<FeedReader> => {
    const reader = await FeedReader.open({
      redis: server().url,
      group,
      commandTimeout: 200,
      connectTimeout: 2000,
      block: 200,
      ...options,
    });
    readers.push(reader);
    return reader;
  };
}

/** Joins queue workers (H = 50 ms, A = 400 ms unless given) and makes each leave when the test ends. */
export function workerFactory(server: () => RedisServer) {
  const joined: QueueWorker[] = [];
  afterEach(async () => {
    await Promise.allSettled(joined.splice(0).map((w) => w.leave()));
  });
  return async (options: Partial<JoinQueueOptions> & { queue: string; workerId: string }) => {
    const worker = await joinQueue({
      ...FAST,
      handler: () => undefined,
      ...options,
      redis: options.redis ?? server().url,
    });
    joined.push(worker);
    return worker;
  };
}

/** A promise with its resolve, for handlers a test releases when it wants. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open: (value: T) => void = () => undefined;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export interface ChildEvent {
  t: number;
  event: string;
  [field: string]: unknown;
}

export interface MemberProcessOptions {
  /** One Redis, or K of them (quorum mode). */
  url: string | string[];
  group: string;
  memberId: string;
  weight: number;
  activeGoal?: number;
  heartbeatInterval?: number;
  preparationInterval?: number;
  activationInterval?: number;
}

/** A member in a process of its own, for crash tests; it prints its events as JSON lines. */
export class MemberProcess {
  readonly events: ChildEvent[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<void>;

  constructor(readonly options: MemberProcessOptions) {
    this.child = spawn(
      process.execPath,
      [...runTypeScript(), join(import.meta.dirname, 'fixtures/member.ts'), JSON.stringify({ ...FAST, ...options })],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let buffered = '';
    this.child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf('\n');
      while (newline !== -1) {
        this.events.push(JSON.parse(buffered.slice(0, newline)) as ChildEvent);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
      }
    });
    // A killed child has exitCode null and signalCode set: wait for 'exit', not a code.
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    live.add(this);
  }

  get id(): string {
    return this.options.memberId;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  find(event: string): ChildEvent | undefined {
    return this.events.find((e) => e.event === event);
  }

  waitFor(event: string, timeoutMs = 5000): Promise<ChildEvent> {
    return waitFor(() => this.find(event), `${this.id} to report ${event}`, timeoutMs);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number> {
    const t = hrNow();
    this.child.kill(signal);
    await this.exited;
    return t;
  }

  /** Asks the member to leave (stdin closes) and waits for the process to end. */
  async leave(): Promise<void> {
    this.child.stdin?.end();
    await this.exited;
  }
}

const live = new Set<MemberProcess>();
afterEach(async () => {
  const children = [...live];
  live.clear();
  for (const member of children) member.child.kill('SIGKILL');
  await Promise.all(children.map((m) => m.exited));
});

/**
 * Timers the library (or ioredis under it) creates from now on, until they have run or were
 * cleared. An async hook sees unref'd timers too, which process.getActiveResourcesInfo() leaves out.
 */
export function trackLibraryTimers(): { expectAllEnded: () => Promise<void> } {
  const live = new Set<number>();
  const hook = createHook({
    init(id, type) {
      if (type !== 'Timeout') return;
      const stack = new Error().stack ?? '';
      if (stack.includes('/packages/core/src/') || stack.includes('/ioredis/')) live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  });
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  hook.enable();
  return {
    async expectAllEnded() {
      try {
        await waitFor(
          () => live.size === 0,
          () => `the library's ${live.size} timers to end`,
          3000,
        );
      } finally {
        hook.disable();
        Error.stackTraceLimit = limit;
      }
    },
  };
}

/**
 * A TCP forwarder whose target can be switched, dropping every open connection: what a client
 * sees when a failover moves it to another server (its sockets break, it reconnects elsewhere).
 */
export class Switch {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #target: number;

  private constructor(target: number) {
    this.#target = target;
    this.#server = createServer((client) => {
      const upstream = connect(this.#target, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
  }

  static async start(target: number): Promise<Switch> {
    const forwarder = new Switch(target);
    await new Promise<void>((resolve) => forwarder.#server.listen(0, '127.0.0.1', resolve));
    return forwarder;
  }

  get port(): number {
    const address = this.#server.address();
    if (!address || typeof address === 'string') throw new Error('not listening');
    return address.port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  to(target: number): void {
    this.#target = target;
    for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** DUMPs of the given keys (those that exist): an older copy of a group, to RESTORE later. */
export async function snapshot(redis: Redis, keys: string[]): Promise<Map<string, Buffer>> {
  const dumps = new Map<string, Buffer>();
  for (const key of keys) {
    const dump = await redis.dumpBuffer(key);
    if (dump) dumps.set(key, dump);
  }
  return dumps;
}

/** Puts keys back as a `snapshot` had them, replacing what they hold now. */
export async function restore(redis: Redis, dumps: Map<string, Buffer>): Promise<void> {
  for (const [key, dump] of dumps) await redis.restore(key, 0, dump, 'REPLACE');
}

/**
 * The tasks of a queue not completed: those its consumer group did not read yet (the lag) and
 * those pending in it. An acknowledged task stays in the stream until a completion trims its
 * node, so XLEN counts more (lua/queue/lib.lua `trim`).
 */
export async function unfinishedTasks(redis: Redis, tasksKey: string): Promise<number> {
  if ((await redis.exists(tasksKey)) === 0) return 0;
  const groups = (await redis.xinfo('GROUPS', tasksKey)) as unknown[][];
  for (const group of groups) {
    const f = new Map<string, unknown>();
    for (let i = 0; i < group.length; i += 2) f.set(String(group[i]), group[i + 1]);
    if (f.get('name') !== 'workers') continue;
    const lag =
      f.get('lag') === null
        ? (await redis.xrange(tasksKey, `(${String(f.get('last-delivered-id'))}`, '+')).length
        : Number(f.get('lag'));
    return Number(f.get('pending')) + lag;
  }
  return redis.xlen(tasksKey);
}

/** A standby's view as the member scripts return it, for tests of what a member makes of replies. */
export function standbyView(over: Partial<MemberView> = {}): MemberView {
  return {
    role: 'standby',
    epoch: 0,
    slot: -1,
    reason: '',
    version: 1,
    activeGoal: 1,
    activationInterval: 1000,
    heartbeatInterval: 200,
    serverNow: 1_000_000,
    watchDeadline: 0,
    quarantineUntil: 0,
    slotsHeld: 1,
    liveMembers: 2,
    weight: 10,
    rejoined: false,
    incarnation: 1,
    ...over,
  };
}

/**
 * A queue renewal as a worker of capacity 1 sends it, straight to the script (no worker object):
 * `claims` are the deliveries it holds, `joining` its first renewal.
 */
export function renewAsWorker(
  redis: Redis,
  keys: QueueKeys,
  worker: {
    workerId: string;
    weight?: number;
    claims: { id: string; token: number; expires: number }[];
    joining: boolean;
    completeTime?: number;
    activationInterval?: number;
  },
) {
  return queueScripts.renew(redis, keys, {
    workerId: worker.workerId,
    weight: worker.weight ?? 1,
    capacity: 1,
    completeTime: worker.completeTime ?? 30_000,
    maxDeliveries: 5,
    activationInterval: worker.activationInterval ?? 60_000,
    nonce: 'n',
    host: 'h',
    pid: 1,
    tokenFloor: 0,
    joining: worker.joining,
    claims: worker.claims,
  });
}

/** A worker's completion of a delivery it ran to the end ('done'; no token floor). */
export function completeAsWorker(
  redis: Redis,
  keys: QueueKeys,
  completion: { workerId: string; taskId: string; token: number; inline: boolean },
) {
  return queueScripts.complete(redis, keys, { ...completion, outcome: 'done', tokenFloor: 0 });
}

/** The next delivery in a worker's inbox, as the dispatching script pushed it; throws when there is none. */
export async function popDelivery(redis: Redis, keys: QueueKeys, workerId: string): Promise<Delivery> {
  const pushed = await redis.lpopBuffer(keys.inbox(workerId));
  if (!pushed) throw new Error(`nothing in the inbox of ${workerId}`);
  return parseDelivery(pushed);
}

/** A lease keeper's host that sends with `send` and ignores everything else, unless told. */
export function leaseHost(send: () => Promise<Call>, over: Partial<LeaseHost> = {}): LeaseHost {
  return {
    send,
    renewed: () => undefined,
    refused: () => false,
    accepting: () => true,
    lapsed: () => undefined,
    resetConnection: () => undefined,
    emit: () => undefined,
    advise: () => undefined,
    log: pino({ level: 'silent' }),
    ...over,
  };
}

/**
 * S4 at the instant a reply comes back late: once `arm()`ed, `clock` jumps past the member's lease
 * deadline as its next script request leaves (`onSend`, for `tappedRedis`), after the member took
 * that renewal's t0; `seen` lists what the member did after the jump (`watch`).
 */
export function lateReplyProbe() {
  const clock = jumpingClock();
  const seen: string[] = [];
  let leaseDeadline = 0;
  let armed = false;
  let jumped = false;
  return {
    clock,
    seen,
    onSend() {
      if (!armed || jumped) return;
      jumped = true;
      clock.jump(leaseDeadline - clock.now() + 1);
    },
    arm() {
      armed = true;
    },
    watch(member: Member) {
      member.on('renewal', (r) => {
        leaseDeadline = r.leaseDeadline;
        if (jumped) seen.push(`renewal ${r.outcome}`);
      });
      member.on('deactivate', (info) => seen.push(`deactivate ${info.reason}`));
    },
  };
}
