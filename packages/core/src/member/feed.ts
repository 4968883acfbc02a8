import type { Logger } from 'pino';
import type { RedisSource } from '../connections/settings.js';
import { describe } from '../failures.js';
import type { CommitResult } from '../feed/commit.js';
import type { FeedMessage } from '../feed/encoding.js';
import { FeedReader } from '../feed/reader.js';
import { compareStreamIds, FEED_START } from '../feed/stream-id.js';
import { commandTimeoutFor } from '../options.js';
import { type Outcome, runHandler } from './actions.js';
import type { Advise } from './health.js';
import type { Held } from './ledger.js';
import type { MemberSettings } from './settings.js';
import type { GroupMessage, JoinOptions } from './types.js';

/** What the feed needs of its member: a narrow interface, as the lease keeper's. */
export interface FeedHost {
  /** Runs a step in the member's action queue, after every action queued before it. */
  enqueue(step: () => Promise<void>): Promise<void>;
  /** The activation the member holds, and whether its lease is still good (S4). */
  held(): Held | undefined;
  isActive(): boolean;
  /** The commit script on the lease connection, fenced by slot, epoch and the member object. */
  commit(slot: number, epoch: number, id: string): Promise<CommitResult>;
  /** onMessage failed; `held` when the member acted on the message for its slot (the member disables itself then). */
  failed(outcome: Outcome, held: Held | undefined): void;
  error(error: Error): void;
  advise: Advise;
  log: Logger;
}

/**
 * The group feed on the member's side (DESIGN §10): every message published after the member
 * joined reaches `onMessage`, in order, through the member's action queue (so never beside a
 * prepare, activate or deactivate handler). While active, a message is committed for the slot
 * once `onMessage` resolved; on activation, after `onActivate` resolved, the messages after
 * the slot's last commit are delivered again as active, up to where the live reader is, and
 * the live ones follow.
 */
export class MemberFeed {
  readonly #reader: FeedReader;
  readonly #host: FeedHost;
  readonly #onMessage: (message: GroupMessage) => unknown;
  readonly #timeout: number;
  /** Released once joinGroup() resolved (or the member stopped): no message is delivered before. */
  #release: () => void = () => undefined;
  readonly #ready = new Promise<void>((resolve) => {
    this.#release = resolve;
  });
  #stopped = false;
  /** The slot's last commit, as the activation and the commit replies said. */
  #committed: string | undefined;
  /** Live messages after this id are acted on (the slot's commit at activation). */
  #activeAfter = FEED_START;
  /** An activation whose replay has not succeeded yet: nothing is delivered as active or committed until it has. */
  #owed: Held | undefined;

  private constructor(reader: FeedReader, options: JoinOptions, s: MemberSettings, host: FeedHost) {
    this.#reader = reader;
    this.#host = host;
    this.#onMessage = options.onMessage as (message: GroupMessage) => unknown;
    this.#timeout = s.activationInterval;
  }

  /** Opens the reader and starts reading from the feed's last id, when the member has `onMessage`. */
  static async open(options: JoinOptions, s: MemberSettings, host: FeedHost): Promise<MemberFeed | undefined> {
    if (!options.onMessage) return undefined;
    const reader = await FeedReader.open({
      // One deployment: quorum mode has no feed yet (settings.ts refuses onMessage there).
      redis: options.redis as RedisSource,
      group: s.group,
      prefix: options.prefix,
      commandTimeout: commandTimeoutFor(s.heartbeatInterval),
      connectTimeout: s.activationInterval,
      onGap: (gap) => host.advise('FEED_GAP', `the feed no longer holds messages after ${gap.after}`, { ...gap }),
      onError: (error) => host.error(error),
    });
    const feed = new MemberFeed(reader, options, s, host);
    try {
      await reader.start((message) => host.enqueue(() => feed.#live(message)));
    } catch (error) {
      await feed.stop();
      throw error;
    }
    return feed;
  }

  /** The id of the last message committed by the slot this member holds; undefined while it holds none. */
  get committed(): string | undefined {
    return this.#host.held() ? this.#committed : undefined;
  }

  /** joinGroup() resolved: messages may be delivered. */
  begin(): void {
    this.#release();
  }

  /** Stops reading: no blocked read is left behind; a delivery in progress is awaited. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#release();
    await this.#reader.stop();
  }

  /**
   * Inside the activate step, after `onActivate` resolved: the messages after the slot's last
   * commit, up to the live reader's position, again, as active. The live reader's next message
   * waits in the action queue behind this step, so its position stands still meanwhile. A replay
   * that fails is owed: it is tried again before the next message.
   */
  async activated(held: Held): Promise<void> {
    try {
      await this.#catchUp(held);
    } catch (error) {
      this.#host.log.warn({ epoch: held.epoch, error: describe(error) }, 'could not replay the feed yet; retrying');
    }
  }

  async #catchUp(held: Held): Promise<void> {
    this.#owed = held;
    const commit = await this.#reader.readCommit(held.slot);
    if (this.#host.held() === held) {
      this.#committed = commit;
      this.#activeAfter = commit ?? FEED_START;
      const until = this.#reader.position;
      if (commit === undefined || compareStreamIds(commit, until) < 0) {
        await this.#reader.replay(commit, until, (message) => this.#deliver(message, held), held.signal);
      }
    }
    this.#owed = undefined;
  }

  async #live(message: FeedMessage): Promise<void> {
    await this.#ready;
    if (this.#stopped) return;
    const owed = this.#owed;
    if (owed) await this.activated(owed);
    const held = this.#host.held();
    const acting =
      held !== undefined &&
      this.#owed === undefined &&
      this.#host.isActive() &&
      compareStreamIds(message.id, this.#activeAfter) > 0;
    await this.#deliver(message, acting ? held : undefined);
  }

  /** Delivers one message; while active, commits it once `onMessage` resolved and the member still holds that epoch. */
  async #deliver({ id, data }: FeedMessage, held: Held | undefined): Promise<void> {
    const message: GroupMessage = held
      ? { id, data, active: true, epoch: held.epoch, slot: held.slot }
      : { id, data, active: false };
    const outcome = await runHandler(this.#onMessage, message, this.#timeout);
    if (!outcome.ok) {
      // Not committed, and nothing after it is: the slot's next holder acts on it again.
      this.#host.failed(outcome, held);
      return;
    }
    if (!held || this.#host.held() !== held || !this.#host.isActive()) return;
    try {
      const result = await this.#host.commit(held.slot, held.epoch, id);
      if (result.outcome === 'committed') this.#committed = id;
      else if (result.outcome === 'behind') this.#committed = result.current;
      else this.#host.log.debug({ id, result }, 'commit refused');
    } catch (error) {
      // Commits are cumulative: the next one covers this message.
      this.#host.log.debug({ id, error: describe(error) }, 'commit failed');
    }
  }
}
