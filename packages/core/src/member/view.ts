import { ScriptError } from '../errors.js';
import { isSteady, type RenewalReply } from '../script-specs.js';
import type { Announcement, MemberView } from '../scripts.js';
import type { ServerWord } from './decide.js';

/** The group's incarnation (createdAt) and version, as one server said them. */
export interface GroupVersion {
  incarnation: number;
  version: number;
}

/** Which script's reply: only a renewal's may deliver an activation, only join and renew set what is sent back. */
export type ReplySource = 'join' | 'renewal' | 'other';

/** What a renewal tells the server of the member's knowledge (S2, S6). */
export interface Knowledge {
  incarnation: number;
  version: number;
  epochFloor: number;
  leaseEnd: number;
}

/**
 * The member's reading of the group's word: the latest reply of the server it renews on, the
 * versions and incarnations it heard, and what it sends back with every renewal. Pure: it
 * decides nothing and touches neither Redis nor timers.
 */
export class GroupView {
  /** The group's incarnation and version in the latest join or renewal reply (sent with every renewal, S6). */
  #known: GroupVersion = { incarnation: 0, version: -1 };
  /**
   * The latest announcement heard, or reply received: announcements only trigger renewals (S7).
   * Two numbers rather than a GroupVersion: every member of a process hears every announcement
   * of its group, and hearing one allocates nothing.
   */
  #heardIncarnation = 0;
  #heardVersion = -1;
  /** The highest epoch the group told this member of for itself (S2, S6). */
  #epochFloor = 0;
  /** When the server said this member's lease ends (Redis ms, S6). */
  #serverLeaseEnd = 0;
  #server: ServerWord = { role: 'standby', epoch: 0, slot: -1, reason: '', confirmed: false };
  /** The view of the latest join or renewal reply: what a steady renewal leaves as it was. */
  #word: MemberView | undefined;
  #goal: number;
  #quarantined = false;

  constructor(activeGoal: number) {
    this.#goal = activeGoal;
  }

  get server(): ServerWord {
    return this.#server;
  }

  /** N as the group last said it. */
  get activeGoal(): number {
    return this.#goal;
  }

  get quarantined(): boolean {
    return this.#quarantined;
  }

  get version(): number {
    return this.#known.version;
  }

  /**
   * What a renewal carries: the incarnation and version of the last reply, the highest epoch
   * the member was told of for itself (or holds), and when the server last said its lease ends.
   * No version (-1) while what the member holds differs from what that reply gave it (it
   * deactivated on its own, and its release may not have reached the server): the steady reply
   * would keep that view, and the slot the server lists for it would stay listed; a full
   * renewal settles it (S6, `settle_claim`).
   */
  knowledge(heldEpoch: number): Knowledge {
    const word = this.#word;
    const holds = word !== undefined && (word.role === 'active' || word.role === 'releasing');
    const agrees = word === undefined || (holds ? word.epoch === heldEpoch : heldEpoch === 0);
    return {
      ...this.#known,
      version: agrees ? this.#known.version : -1,
      epochFloor: Math.max(this.#epochFloor, heldEpoch),
      leaseEnd: this.#serverLeaseEnd,
    };
  }

  /**
   * A renewal's reply as a view: in the steady state (the server proved that nothing changed
   * since the version this member sent, see `steady` in lua/renew.lua) the view of the latest
   * join or renewal reply, with the server's new time.
   */
  complete(reply: RenewalReply): MemberView {
    if (!isSteady(reply)) return reply;
    // The server answers shortly only to a member that sent the version of a reply it had.
    if (!this.#word) throw new ScriptError('renew', 'a steady reply to a member that has no view yet');
    return { ...this.#word, serverNow: reply.serverNow, watchDeadline: reply.watchDeadline, rejoined: false };
  }

  /**
   * Takes a script's reply as the server's latest word. Replies on the lease connection arrive
   * in the order the server ran their scripts, so the latest is applied whatever version it
   * carries (a server that lost writes, or a new one after a failover, counts from where its
   * copy stands: S6 in the scripts is what makes its word safe). Returns whether the known
   * version changed.
   */
  apply(view: MemberView, source: ReplySource): boolean {
    if (view.activeGoal > 0) this.#goal = view.activeGoal;
    this.#quarantined = view.quarantineUntil > view.serverNow;
    let changed = false;
    // What the member sends back with its renewals: only what the scripts that check it said.
    if (source !== 'other') {
      const version = { incarnation: view.incarnation, version: view.version };
      this.#heardIncarnation = view.incarnation;
      this.#heardVersion = view.version;
      changed = version.incarnation !== this.#known.incarnation || version.version !== this.#known.version;
      this.#known = version;
      // Both scripts set the lease to now + A: the latest word of the server, on its clock.
      this.#serverLeaseEnd = view.role === 'gone' ? 0 : view.serverNow + view.activationInterval;
      this.#word = view;
    }
    if (view.role === 'active' || view.role === 'releasing') {
      this.#epochFloor = Math.max(this.#epochFloor, view.epoch);
    }
    this.#server = {
      role: view.role,
      epoch: view.epoch,
      slot: view.slot,
      reason: view.reason,
      confirmed: source === 'renewal',
    };
    return changed;
  }

  /**
   * S7: announcements only speed things up, and may come from any server — a master frozen
   * past a failover and resumed, a replayed or forged message — so all they may do is trigger
   * a renewal, whose reply decides. True when the member should renew: the announcement names
   * it, or it is not the next one after what was last heard (a gap). What was last heard is
   * reset by every reply, so a message from the future silences nothing for longer than one
   * heartbeat.
   */
  hear(announcement: Announcement, memberId: string): boolean {
    const { incarnation, version } = announcement;
    const same = incarnation === this.#heardIncarnation;
    if (same && version <= this.#heardVersion) return false;
    const gap = !same || version !== this.#heardVersion + 1;
    this.#heardIncarnation = incarnation;
    this.#heardVersion = version;
    return gap || announcement.changes.has(memberId);
  }
}
