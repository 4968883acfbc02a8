import type { Cluster, Redis } from 'ioredis';
import { connect } from '../connections/pool.js';
import { nowOrNeverOptions, open, type RedisSource } from '../connections/settings.js';
import { CorruptStateError, RedisUnavailableError } from '../errors.js';
import { DEFAULT_PREFIX, type GroupKeys, groupKeys } from '../keys.js';
import { validateGroupName, validatePrefix, validateRedisSource } from '../options.js';
import { decodeData, type FeedMessage } from './encoding.js';
import { feedFailure } from './publish.js';
import { compareStreamIds, FEED_START } from './stream-id.js';

type Connection = Redis | Cluster;

export interface FeedReaderOptions {
  /** Where the member's lease connection comes from: the reader opens connections of its own from it. */
  redis: RedisSource;
  group: string;
  prefix?: string;
  /** How long a read that does not block may take (ms); the blocking read may take `block` more. */
  commandTimeout: number;
  /** How long to wait for a connection (ms). */
  connectTimeout: number;
  /** How long one XREAD blocks (ms, default 1000): a frozen server is noticed within block + commandTimeout. */
  block?: number;
  /** Messages per read (default 100). */
  count?: number;
  /** The feed no longer holds messages the reader wanted: advisory `FEED_GAP`. */
  onGap?: (gap: FeedGap) => void;
  /** A read failed (it is tried again, 50 ms to 1 s later), or an entry was not a message understudy wrote. */
  onError?: (error: Error) => void;
}

/** Messages the reader wanted were no longer in the feed (DESIGN §10: advisory `FEED_GAP`). */
export interface FeedGap {
  /** Reading wanted the messages after this id. */
  after: string;
  /**
   * `trimmed`: messages after it were trimmed (the cap of publish, or a reader behind the slots'
   * commits) before the reader got them. `reset`: the feed's last id is before it: the feed was
   * lost or restored from an older copy (S6); the reader keeps its place.
   */
  reason: 'trimmed' | 'reset';
  /** How many messages were missed, where the reader can count them (the live reader can). */
  missed?: number;
}

export type Deliver = (message: FeedMessage) => unknown;

/** The fields of XINFO STREAM the reader needs, or undefined when the feed does not exist. */
interface FeedInfo {
  lastId: string;
  /** Entries ever added, and entries trimmed so far (added − length). */
  added: number;
  trimmed: number;
  firstId: string | undefined;
}

const DEFAULT_BLOCK = 1000;
const DEFAULT_COUNT = 100;
const MIN_PAUSE = 50;
const MAX_PAUSE = 1000;

/**
 * Reads one group's feed (DESIGN §10) on connections of its own, never the lease connection:
 * a blocking XREAD for the live messages, and a second connection for what must not wait
 * behind it (the replay on activation, the slots' commits). Messages reach `deliver` one at a
 * time, in feed order; the next waits until `deliver` has settled.
 *
 * Gaps: the live reader counts the messages it has seen (the feed's entries-added counter at
 * its start, plus one per message) and, with each read, the entries the feed has trimmed
 * (XINFO STREAM, in the same pipeline just before the XREAD): more trimmed than seen means
 * messages it wanted are gone, and exactly how many.
 */
export class FeedReader {
  readonly #options: FeedReaderOptions;
  readonly #keys: GroupKeys;
  readonly #block: number;
  readonly #count: number;
  readonly #stopped = new AbortController();
  #blocking: Connection;
  readonly #reads: Connection;
  #position = FEED_START;
  /** Entries of the feed up to `#position`, counted from its entries-added counter. */
  #seen = 0;
  #reset = false;
  #started = false;
  #loop: Promise<void> | undefined;

  private constructor(options: FeedReaderOptions) {
    validateRedisSource(options.redis);
    this.#keys = groupKeys(validateGroupName(options.group), validatePrefix(options.prefix ?? DEFAULT_PREFIX));
    this.#options = options;
    this.#block = options.block ?? DEFAULT_BLOCK;
    this.#count = options.count ?? DEFAULT_COUNT;
    this.#blocking = this.#open(this.#block + options.commandTimeout);
    this.#reads = this.#open(options.commandTimeout);
  }

  /** Opens the reader's connections; nothing is read until `start` or `replay`. */
  static async open(options: FeedReaderOptions): Promise<FeedReader> {
    const reader = new FeedReader(options);
    const { redis, connectTimeout } = options;
    try {
      await Promise.all([
        connect(reader.#blocking, redis, connectTimeout),
        connect(reader.#reads, redis, connectTimeout),
      ]);
    } catch (error) {
      await reader.stop();
      throw error;
    }
    return reader;
  }

  /** The id of the last live message whose `deliver` settled, or the id the reader started after. */
  get position(): string {
    return this.#position;
  }

  /**
   * Starts delivering every message published from now on (after the feed's last id at this
   * call) and returns that id. Once per reader.
   */
  async start(deliver: Deliver): Promise<string> {
    if (this.#started) throw new Error('the feed reader has started already');
    this.#started = true;
    const info = await this.#info();
    this.#position = info?.lastId ?? FEED_START;
    this.#seen = info?.added ?? 0;
    if (!this.#stopped.signal.aborted) this.#loop = this.#run(deliver);
    return this.#position;
  }

  /**
   * Delivers again the messages after `after` (a slot's last commit; undefined: the slot has none,
   * so every message the feed keeps) up to and including `until`, in order. Reports a gap when
   * the commit's own message is no longer kept: messages after it may have been trimmed (a
   * slot's own commit is never trimmed by commits, only by the cap of publish). Stops after the
   * delivery in progress once `signal` aborts (the activation ended).
   */
  async replay(
    after: string | undefined,
    until: string,
    deliver: Deliver,
    signal?: AbortSignal,
  ): Promise<{ last: string | undefined }> {
    const stopped = () => this.#stopped.signal.aborted || signal?.aborted === true;
    let from = after ?? FEED_START;
    const info = await this.#info();
    if (after !== undefined && info) {
      if (compareStreamIds(info.lastId, after) < 0) this.#gap({ after, reason: 'reset' });
      else if (info.firstId !== undefined && compareStreamIds(info.firstId, after) > 0) {
        this.#gap({ after, reason: 'trimmed' });
      }
    }
    let last: string | undefined;
    while (!stopped()) {
      const page = (await this.#read(this.#reads, (c) =>
        c.xrangeBuffer(this.#keys.feed, `(${from}`, until, 'COUNT', this.#count),
      )) as [Buffer, Buffer[]][];
      for (const [rawId, fields] of page) {
        if (stopped()) return { last };
        const id = rawId.toString('latin1');
        await this.#deliverOne(deliver, id, fields);
        from = last = id;
      }
      if (page.length < this.#count) break;
    }
    return { last };
  }

  /** The id of the last message a slot committed, or undefined if it has none. */
  async readCommit(slot: number): Promise<string | undefined> {
    return (await this.#read(this.#reads, (c) => c.hget(this.#keys.commits, String(slot)))) ?? undefined;
  }

  /** Stops reading: the connections close at once (no blocked read is left behind), then waits for a delivery in progress. */
  async stop(): Promise<void> {
    if (!this.#stopped.signal.aborted) {
      this.#stopped.abort();
      this.#blocking.disconnect();
      this.#reads.disconnect();
    }
    await this.#loop;
  }

  async #run(deliver: Deliver): Promise<void> {
    let pause = MIN_PAUSE;
    while (!this.#stopped.signal.aborted) {
      try {
        const [[infoError, info] = [], [readError, read] = []] =
          (await this.#blocking
            .pipeline()
            .xinfo('STREAM', this.#keys.feed)
            .xreadBuffer('COUNT', this.#count, 'BLOCK', this.#block, 'STREAMS', this.#keys.feed, this.#position)
            .exec()) ?? [];
        if (readError) throw readError;
        this.#checkGap(infoError ? noFeed(infoError) : parseInfo(info));
        const entries = (read as [Buffer, [Buffer, Buffer[]][]][] | null)?.[0]?.[1] ?? [];
        for (const [rawId, fields] of entries) {
          if (this.#stopped.signal.aborted) return;
          const id = rawId.toString('latin1');
          await this.#deliverOne(deliver, id, fields);
          this.#position = id;
          this.#seen += 1;
        }
        pause = MIN_PAUSE;
      } catch (error) {
        if (this.#stopped.signal.aborted) return;
        const failure = this.#report(error);
        // A paused server keeps its socket open: a read that timed out gets a new connection.
        if (failure instanceof RedisUnavailableError && failure.timedOut) this.#replaceBlocking();
        await this.#pause(pause);
        pause = Math.min(pause * 2, MAX_PAUSE);
      }
    }
  }

  /** Checks what the feed trimmed against what the reader has seen, before a read from `#position`. */
  #checkGap(info: FeedInfo | undefined): void {
    const after = this.#position;
    const behind = info === undefined ? after !== FEED_START : compareStreamIds(info.lastId, after) < 0;
    if (behind) {
      if (!this.#reset) this.#gap({ after, reason: 'reset' });
      this.#reset = true;
      this.#seen = info?.added ?? 0;
      return;
    }
    this.#reset = false;
    if (info && info.trimmed > this.#seen) {
      this.#gap({ after, reason: 'trimmed', missed: info.trimmed - this.#seen });
      this.#seen = info.trimmed;
    }
  }

  async #deliverOne(deliver: Deliver, id: string, fields: Buffer[]): Promise<void> {
    const data = decodeData(fields);
    if (data === undefined) {
      this.#report(
        new CorruptStateError(this.#keys.group, this.#keys.feed, `entry ${id} is not a message understudy wrote`),
      );
      return;
    }
    try {
      await deliver({ id, data });
    } catch (error) {
      this.#report(error);
    }
  }

  /** The feed's ids and counters now (XINFO STREAM), or undefined if it does not exist. */
  #info(): Promise<FeedInfo | undefined> {
    return this.#read(this.#reads, async (c) => {
      try {
        return parseInfo(await c.xinfo('STREAM', this.#keys.feed));
      } catch (error) {
        return noFeed(error);
      }
    });
  }

  /** Runs one command, with the library's errors for its failures. */
  async #read<T>(connection: Connection, command: (c: Connection) => Promise<T>): Promise<T> {
    try {
      return await command(connection);
    } catch (error) {
      throw feedFailure(
        error,
        this.#options.redis,
        `read the feed of group ${this.#keys.group}`,
        this.#keys.group,
        this.#keys.feed,
      );
    }
  }

  #gap(gap: FeedGap): void {
    this.#options.onGap?.(gap);
  }

  /** Hands the library's error for `error` to `onError`, and returns it. */
  #report(error: unknown): Error {
    const failure = feedFailure(
      error,
      this.#options.redis,
      `read the feed of group ${this.#keys.group}`,
      this.#keys.group,
      this.#keys.feed,
    );
    this.#options.onError?.(failure);
    return failure;
  }

  /** Nothing waits in an offline queue (the loop reads again from its position), and a paused server is noticed. */
  #open(commandTimeout: number): Connection {
    const connection = open(this.#options.redis, nowOrNeverOptions(commandTimeout, 'understudy-feed'));
    connection.on('error', () => undefined); // each read reports its own failure
    return connection;
  }

  #replaceBlocking(): void {
    this.#blocking.disconnect();
    this.#blocking = this.#open(this.#block + this.#options.commandTimeout);
    this.#blocking.connect().catch(() => undefined); // reads fail until it is ready, and are tried again
  }

  #pause(ms: number): Promise<void> {
    const { signal } = this.#stopped;
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      signal.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}

/** XINFO STREAM on a feed that does not exist (yet, or any more) answers "no such key". */
function noFeed(error: unknown): undefined {
  if (error instanceof Error && /no such key/i.test(error.message)) return undefined;
  throw error;
}

function parseInfo(reply: unknown): FeedInfo {
  const flat = reply as unknown[];
  const field = (name: string) => flat[flat.indexOf(name) + 1];
  const length = Number(field('length'));
  const added = Number(field('entries-added'));
  const first = field('first-entry') as [string, unknown] | null;
  return { lastId: String(field('last-generated-id')), added, trimmed: added - length, firstId: first?.[0] };
}
