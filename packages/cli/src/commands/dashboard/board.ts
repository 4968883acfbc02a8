import { EventEmitter } from 'node:events';
import {
  type GroupSnapshot,
  listGroups,
  type Monitor,
  monitorGroup,
  PermissionError,
  type RedisSource,
  readHistory,
  type Transition,
} from '@understudy/core';
import { describe } from '@understudy/core/failures';
import { CliError, ExitCode } from '../../exit.js';

/** One point of a group's timeline: from Redis time `time` on, `active` of `goal` were active. */
export interface TimelinePoint {
  time: number;
  active: number;
  goal: number;
}

/** What the page shows of one group. */
export interface GroupView {
  snapshot: GroupSnapshot;
  /** The latest transitions, oldest first. */
  transitions: Transition[];
  /** Changes of the active count or goal within the timeline window, oldest first (see TIMELINE_MS). */
  timeline: TimelinePoint[];
  /** Why the last read of the group failed; absent once a read succeeds again. */
  readError?: string;
}

/** Everything the page shows. Queues (DESIGN §11) would be a sibling list of `groups`. */
export interface BoardState {
  groups: GroupView[];
}

/** What changed, as sent to the page (server-sent events, one per event). */
export type BoardEvent =
  | { type: 'added'; view: GroupView }
  | { type: 'removed'; group: string }
  | { type: 'snapshot'; group: string; snapshot: GroupSnapshot }
  | { type: 'transition'; group: string; transition: Transition }
  | { type: 'point'; group: string; point: TimelinePoint }
  | { type: 'read-error'; group: string; message: string };

export interface BoardOptions {
  redis: RedisSource;
  prefix: string;
  /** The groups to show; absent: every group, found by SCAN every `scanInterval` ms. */
  groups?: readonly string[];
  scanInterval: number;
  /** Transitions kept per group. */
  history: number;
  /** Told about groups found but not watchable (a name understudy would not write, a refusal). */
  warn: (message: string) => void;
}

/** The timeline covers this much Redis time (the page draws the same window). */
export const TIMELINE_MS = 10 * 60_000;
/** Transitions read at start to draw the timeline from before the dashboard started. */
const TIMELINE_HISTORY = 200;
/**
 * While a page is open, each group is re-read this often so that lease bars show renewals:
 * announcements only carry changes. One read per group for every page together.
 */
const LEASE_REFRESH_MS = 500;

interface Watched {
  monitor: Monitor;
  view: GroupView;
  /** The snapshot last sent, to send a re-read only when it is a new read. */
  sent: GroupSnapshot;
}

/**
 * The dashboard's model: one monitor per group (never one per page), the latest transitions
 * and a short timeline of each, and the groups appearing and disappearing as SCAN finds them.
 * Pages listen to `event`; read-only throughout.
 */
export class Board extends EventEmitter<{ event: [BoardEvent] }> {
  readonly #options: BoardOptions;
  readonly #watched = new Map<string, Watched>();
  /** Groups found by a scan that could not be watched, so that each is reported once. */
  readonly #refused = new Set<string>();
  #scanFailing = false;
  #scanTimer: NodeJS.Timeout | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #closed = false;

  constructor(options: BoardOptions) {
    super();
    this.#options = options;
  }

  /** Reads every group once; fails (and leaves nothing open) when Redis refuses or cannot be reached. */
  async start(): Promise<void> {
    try {
      if (this.#options.groups) {
        for (const group of this.#options.groups) await this.#watch(group);
      } else {
        await this.#scan(true);
        this.#armScan();
      }
    } catch (error) {
      await this.close();
      throw error;
    }
    this.#armLeaseRefresh();
  }

  state(): BoardState {
    return { groups: [...this.#watched.values()].map((w) => w.view).sort(byName) };
  }

  /** Stops every monitor and timer. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#scanTimer);
    clearTimeout(this.#leaseTimer);
    await this.#scanning;
    const watched = [...this.#watched.values()];
    this.#watched.clear();
    await Promise.all(watched.map((w) => w.monitor.close()));
  }

  async #watch(group: string): Promise<void> {
    const connection = { redis: this.#options.redis, prefix: this.#options.prefix, group };
    const monitor = await monitorGroup(connection);
    const live: Transition[] = [];
    const collect = (transition: Transition) => live.push(transition);
    monitor.on('transition', collect);
    let past: Transition[];
    try {
      past = await readHistory({ ...connection, count: Math.max(this.#options.history, TIMELINE_HISTORY) });
    } catch (error) {
      await monitor.close();
      throw error;
    } finally {
      monitor.off('transition', collect);
    }
    if (this.#closed) {
      await monitor.close();
      return;
    }
    // Transitions logged while the log was read arrive live as well: each counts once.
    const read = new Set(past.map((t) => t.id));
    const transitions = [...past, ...live.filter((t) => !read.has(t.id))];
    const snapshot = monitor.snapshot();
    const watched: Watched = {
      monitor,
      view: {
        snapshot,
        transitions: transitions.slice(-this.#options.history),
        timeline: timelineFromLog(snapshot, transitions),
      },
      sent: snapshot,
    };
    this.#watched.set(group, watched);
    monitor.on('transition', (transition) => {
      const { transitions } = watched.view;
      transitions.push(transition);
      if (transitions.length > this.#options.history) transitions.shift();
      this.#send({ type: 'transition', group, transition });
    });
    monitor.on('change', (s) => this.#accept(group, watched, s));
    monitor.on('error', (error) => {
      watched.view.readError = error.message;
      this.#send({ type: 'read-error', group, message: error.message });
    });
    this.#send({ type: 'added', view: watched.view });
  }

  #accept(group: string, watched: Watched, snapshot: GroupSnapshot): void {
    if (snapshot === watched.sent) return;
    watched.sent = snapshot;
    const { view } = watched;
    view.snapshot = snapshot;
    delete view.readError;
    this.#send({ type: 'snapshot', group, snapshot });
    const last = view.timeline.at(-1);
    if (last?.active !== snapshot.activeCount || last.goal !== snapshot.activeGoal) {
      const point = pointOf(snapshot);
      view.timeline.push(point);
      // Keep one point from before the window: it says what the window starts with.
      while ((view.timeline[1]?.time ?? Number.POSITIVE_INFINITY) < snapshot.serverTime - TIMELINE_MS) {
        view.timeline.shift();
      }
      this.#send({ type: 'point', group, point });
    }
  }

  #unwatch(group: string): void {
    const watched = this.#watched.get(group);
    if (!watched) return;
    this.#watched.delete(group);
    void watched.monitor.close();
    this.#send({ type: 'removed', group });
  }

  /**
   * Watches the groups that appeared, drops those that went (forgotten: their keys deleted).
   * Only the first scan fails the dashboard; later failures are reported once and retried.
   */
  async #scan(first: boolean): Promise<void> {
    let found: string[];
    try {
      found = await listGroups({ redis: this.#options.redis, prefix: this.#options.prefix });
    } catch (error) {
      if (error instanceof PermissionError) {
        throw new CliError(
          `${error.message}. Listing groups needs SCAN, which a monitor user (understudy acl) lacks: ` +
            'name the groups to show instead, e.g. understudy dashboard orders billing',
          ExitCode.permissionDenied,
        );
      }
      if (first) throw error;
      if (!this.#scanFailing) this.#options.warn(`listing groups failed, retrying: ${describe(error)}`);
      this.#scanFailing = true;
      return;
    }
    if (this.#scanFailing) this.#options.warn('listing groups works again');
    this.#scanFailing = false;
    if (this.#closed) return;
    const present = new Set(found);
    for (const group of this.#watched.keys()) if (!present.has(group)) this.#unwatch(group);
    for (const group of found) {
      if (this.#watched.has(group)) continue;
      try {
        await this.#watch(group);
        this.#refused.delete(group);
      } catch (error) {
        // A name understudy would not write, a group this user may not read, a corrupt group:
        // said once, tried again at every scan.
        if (!this.#refused.has(group)) this.#options.warn(`not showing a group found by SCAN: ${describe(error)}`);
        this.#refused.add(group);
      }
    }
  }

  #armScan(): void {
    if (this.#closed) return;
    this.#scanTimer = setTimeout(() => {
      this.#scanning = this.#scan(false)
        .catch((error: unknown) => this.#options.warn(describe(error)))
        .finally(() => {
          this.#scanning = undefined;
          this.#armScan();
        });
    }, this.#options.scanInterval);
    this.#scanTimer.unref();
  }

  #armLeaseRefresh(): void {
    if (this.#closed) return;
    this.#leaseTimer = setTimeout(async () => {
      if (this.listenerCount('event') > 0) {
        await Promise.all(
          [...this.#watched].map(async ([group, watched]) => {
            await watched.monitor.refresh();
            if (this.#watched.get(group) === watched) this.#accept(group, watched, watched.monitor.snapshot());
          }),
        );
      }
      this.#armLeaseRefresh();
    }, LEASE_REFRESH_MS);
    this.#leaseTimer.unref();
  }

  #send(event: BoardEvent): void {
    if (!this.#closed) this.emit('event', event);
  }
}

/**
 * The timeline before the dashboard started, read back from the transition log: from the
 * current state, undo each activation and deactivation, newest first. It starts at the oldest
 * transition read, at the window's start, or at a goal change whose previous goal the entries
 * read do not tell. Oldest first, one point per change (a handover's dip lasts 0 ms but shows).
 */
export function timelineFromLog(snapshot: GroupSnapshot, transitions: readonly Transition[]): TimelinePoint[] {
  const newestFirst: TimelinePoint[] = [pointOf(snapshot)];
  let { active, goal } = pointOf(snapshot);
  const since = snapshot.serverTime - TIMELINE_MS;
  const before = transitions.filter((t) => t.time <= snapshot.serverTime);
  for (let i = before.length - 1; i >= 0; i--) {
    const t = before[i] as Transition;
    if (t.time < since) break;
    newestFirst.push({ time: t.time, active, goal });
    if (t.type === 'activate') active = Math.max(0, active - 1);
    else if (t.type === 'deactivate') active += 1;
    else if (t.type === 'goal') {
      const previous = before.slice(0, i).findLast((p) => p.type === 'goal' && p.goal !== undefined);
      if (previous) goal = previous.goal as number;
      else if (t.reason === 'created') goal = 0;
      else break;
    }
    if (t.type === 'goal' && t.reason === 'created') newestFirst.push({ time: t.time, active, goal });
  }
  const points: TimelinePoint[] = [];
  for (const point of newestFirst.reverse()) {
    const last = points.at(-1);
    if (last && last.active === point.active && last.goal === point.goal) continue;
    points.push(point);
  }
  return points;
}

function pointOf(snapshot: GroupSnapshot): TimelinePoint {
  return { time: snapshot.serverTime, active: snapshot.activeCount, goal: snapshot.activeGoal };
}

function byName(a: GroupView, b: GroupView): number {
  return a.snapshot.group < b.snapshot.group ? -1 : a.snapshot.group > b.snapshot.group ? 1 : 0;
}
