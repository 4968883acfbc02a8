import type { Cluster, Redis } from 'ioredis';
import { ConfigError, ScriptError } from '../errors.js';
import type { GroupKeys } from '../keys.js';
import { MAX_ACTIVE_GOAL, validateMemberId } from '../options.js';
import { scripts } from '../scripts.js';
import { validateStreamId } from './stream-id.js';

/** A slot holder's commit of the feed up to one message (lua/commit.lua). */
export interface CommitRequest {
  memberId: string;
  /** The member object's nonce (join.lua): another object with the same id never commits for it. */
  nonce: string;
  slot: number;
  epoch: number;
  /** The id of the last message the holder acted on. */
  id: string;
}

/** Why a commit was refused because its member does not hold the slot (now). */
export type StaleReason = 'free' | 'holder' | 'epoch' | 'releasing' | 'lease';

export type CommitResult =
  /** Recorded; `trimmed` messages left the feed (every slot had committed them). */
  | { outcome: 'committed'; trimmed: number }
  /**
   * Refused: the slot is free, held by another member object or with another epoch, being
   * released, or the member's lease ran out. The slot's next holder delivers the message again.
   */
  | { outcome: 'stale'; reason: StaleReason }
  /** Refused: the slot's commit is already at or after the message (a commit retried, a replay). */
  | { outcome: 'behind'; current: string }
  /** Refused: the feed has no message that late (`last` is its last one, if any). */
  | { outcome: 'ahead'; last: string | undefined };

const STALE = new Set<string>(['free', 'holder', 'epoch', 'releasing', 'lease']);

/**
 * Commits a message for a slot, fenced by slot and epoch: one script checks the holder and
 * records the commit, then trims the feed to the lowest commit of the slots. A connection
 * error is thrown as it came (the caller may retry; commits are cumulative).
 */
export async function commitMessage(
  connection: Redis | Cluster,
  keys: GroupKeys,
  request: CommitRequest,
): Promise<CommitResult> {
  const { memberId, nonce, slot, epoch, id } = request;
  validateMemberId(memberId);
  if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_ACTIVE_GOAL) {
    throw new ConfigError('slot', slot, `must be a slot index from 0 to ${MAX_ACTIVE_GOAL - 1}`);
  }
  if (!Number.isSafeInteger(epoch) || epoch < 1) throw new ConfigError('epoch', epoch, 'must be a fencing epoch');
  validateStreamId('id', id);
  const { outcome, detail } = await scripts.commit(connection, keys, { memberId, nonce, slot, epoch, id });
  if (outcome === 'committed') return { outcome, trimmed: Number(detail) };
  if (outcome === 'stale' && STALE.has(String(detail))) return { outcome, reason: detail as StaleReason };
  if (outcome === 'behind') return { outcome, current: String(detail) };
  if (outcome === 'ahead') return { outcome, last: detail ? String(detail) : undefined };
  throw new ScriptError('commit', `unexpected reply ${JSON.stringify([outcome, detail])}`);
}
