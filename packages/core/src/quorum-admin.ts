import { withConnection } from './connections/pool.js';
import type { RedisSource } from './connections/settings.js';
import { RedisUnavailableError, UnderstudyError } from './errors.js';
import { describe, redact } from './failures.js';
import type { GroupKeys } from './keys.js';
import { combineSnapshots } from './monitor/combine.js';
import { readTransitions, type Transition } from './monitor/history.js';
import { type GroupSnapshot, readGroup } from './monitor/observe.js';
import { validateQuorumSources } from './options.js';
import { quorumSize } from './quorum.js';
import { scripts } from './scripts.js';

/**
 * The operator's calls over the K deployments of a group in quorum mode (DESIGN §9): each asks
 * every server at once and concludes from a majority's replies, saying per server what it
 * answered. A server that does not answer counts for nothing; fewer than Q answering is an error.
 */

/** What one of the K deployments answered. */
export interface ServerReach {
  /** Its place in the list given (0-based). */
  index: number;
  /** Its URL without credentials, or `server <n>` for options and clients. */
  server: string;
  reachable: boolean;
  /** Why it could not be read (unreachable, or its reply refused). */
  error?: string;
}

/** A group in quorum mode as a majority shows it, with what each server said. */
export interface QuorumGroupSnapshot extends GroupSnapshot {
  /** Q: how many servers must agree. */
  quorum: number;
  /** Per server: reachable or not, and its own view of the group where it answered. */
  servers: (ServerReach & {
    activeGoal?: number;
    activeCount?: number;
    version?: number;
    members?: number;
  })[];
}

/** A transition as the servers logged it; each server logs its own copy. */
export interface QuorumTransition extends Transition {
  /** The servers (indices, ascending) whose logs hold this transition. */
  servers: number[];
}

/** The outcome of a goal change over K servers: in effect once Q accepted it. */
export interface QuorumGoalChange {
  /** The highest version among the servers that accepted. */
  version: number;
  /** The goal most of the accepting servers had before. */
  previous: number;
  quorum: number;
  accepted: number;
  /** Per server: what it had before and its version after, or why it refused. */
  servers: (ServerReach & { previous?: number; version?: number })[];
}

export function serverLabel(source: RedisSource, index: number): string {
  return typeof source === 'string' ? redact(source) : `server ${index + 1}`;
}

/** Asks every server at once; settles when all answered or failed (each within the timeout). */
async function askAll<T>(
  sources: readonly RedisSource[],
  timeout: number,
  what: string,
  work: Parameters<typeof withConnection<T>>[3],
  group: string,
): Promise<{ results: (T | undefined)[]; reach: ServerReach[] }> {
  validateQuorumSources(sources);
  const settled = await Promise.allSettled(sources.map((s) => withConnection(s, timeout, what, work, group)));
  return {
    results: settled.map((r) => (r.status === 'fulfilled' ? r.value : undefined)),
    reach: settled.map((r, index) => ({
      index,
      server: serverLabel(sources[index] as RedisSource, index),
      reachable: r.status === 'fulfilled',
      ...(r.status === 'rejected' ? { error: describe(r.reason) } : {}),
    })),
  };
}

/** Fewer than Q servers answered: the error names each server's failure. */
function noQuorum(what: string, reach: ServerReach[], quorum: number, errors: unknown[]): UnderstudyError {
  const answered = reach.filter((r) => r.reachable).length;
  const detail = reach
    .filter((r) => r.error)
    .map((r) => `${r.server}: ${r.error}`)
    .join('; ');
  // A refusal every failing server gave (a corrupt key, no permission) is that error, not "unavailable".
  const refusal = errors.find((e) => e instanceof UnderstudyError && !e.retryable);
  if (refusal instanceof UnderstudyError && answered === 0) return refusal;
  return new RedisUnavailableError(
    `${what}: ${answered} of ${reach.length} servers answered, a quorum is ${quorum} (${detail})`,
  );
}

export async function describeQuorumGroup(
  sources: readonly RedisSource[],
  keys: GroupKeys,
  timeout: number,
  lostInterval: number | undefined,
): Promise<QuorumGroupSnapshot> {
  const quorum = quorumSize(sources.length);
  const what = `describe group ${keys.group}`;
  const errors: unknown[] = [];
  const { results, reach } = await askAll(
    sources,
    timeout,
    what,
    (c) =>
      readGroup(c, keys, lostInterval).catch((error: unknown) => {
        errors.push(error);
        throw error;
      }),
    keys.group,
  );
  const combined = combineSnapshots(results, quorum);
  if (!combined) throw noQuorum(what, reach, quorum, errors);
  return {
    ...combined,
    quorum,
    servers: reach.map((r, i) => {
      const s = results[i];
      return s
        ? { ...r, activeGoal: s.activeGoal, activeCount: s.activeCount, version: s.version, members: s.members.length }
        : r;
    }),
  };
}

/**
 * The last `count` transitions over K servers, merged: each server logs its own copy of a
 * transition (its own stream id and time), so copies that say the same (type, member, epoch,
 * slot, reason, goal, weight) within `DEDUP_WINDOW_MS` of each other on different servers are
 * one transition, listing the servers that logged it. Oldest first; the last `count`.
 */
export async function readQuorumHistory(
  sources: readonly RedisSource[],
  keys: GroupKeys,
  timeout: number,
  count: number,
): Promise<QuorumTransition[]> {
  const quorum = quorumSize(sources.length);
  const what = `read the history of group ${keys.group}`;
  const errors: unknown[] = [];
  const { results, reach } = await askAll(
    sources,
    timeout,
    what,
    (c) =>
      readTransitions(c, keys, count).catch((error: unknown) => {
        errors.push(error);
        throw error;
      }),
    keys.group,
  );
  if (results.filter(Boolean).length < quorum) throw noQuorum(what, reach, quorum, errors);
  return mergeTransitions(results).slice(-count);
}

/** Two copies of one transition on different servers are logged this close in time at most. */
export const DEDUP_WINDOW_MS = 2000;

/** What makes copies of one transition on different servers the same (not the id, not the time). */
export function transitionKey(t: Transition): string {
  return JSON.stringify([t.type, t.member, t.epoch, t.slot, t.reason, t.goal, t.weight]);
}

/** Pure: the servers' logs (undefined: not read) merged into one, oldest first. */
export function mergeTransitions(logs: readonly (readonly Transition[] | undefined)[]): QuorumTransition[] {
  const all = logs.flatMap((log, server) => (log ?? []).map((t) => ({ t, server })));
  all.sort((a, b) => a.t.time - b.t.time || a.server - b.server);
  const merged: (QuorumTransition & { key: string })[] = [];
  for (const { t, server } of all) {
    const key = transitionKey(t);
    const copy = merged.find((m) => m.key === key && !m.servers.includes(server) && t.time - m.time <= DEDUP_WINDOW_MS);
    if (copy) copy.servers.push(server);
    else merged.push({ ...t, servers: [server], key });
  }
  // Listed by index, not by which server logged its copy first.
  return merged.map(({ key: _key, ...t }) => ({ ...t, servers: t.servers.sort((a, b) => a - b) }));
}

/**
 * The operator's goal change over K servers: sent to all at once, in effect when Q accepted it
 * (DESIGN §9: the holders release when Q servers ask). Fewer than Q accepting is an error that
 * names each server's answer; the servers that did accept keep the new goal (the members follow
 * only where Q agree), so the change is best retried until Q accept.
 */
export async function setQuorumGoal(
  sources: readonly RedisSource[],
  keys: GroupKeys,
  timeout: number,
  activeGoal: number,
): Promise<QuorumGoalChange> {
  const quorum = quorumSize(sources.length);
  const what = `set the active goal of group ${keys.group}`;
  const errors: unknown[] = [];
  const { results, reach } = await askAll(
    sources,
    timeout,
    what,
    (c) =>
      scripts.set_goal(c, keys, { channel: keys.events, activeGoal }).catch((error: unknown) => {
        errors.push(error);
        throw error;
      }),
    keys.group,
  );
  const accepted = results.filter((r) => r !== undefined);
  const servers: QuorumGoalChange['servers'] = reach.map((r, i) => {
    const result = results[i];
    return result ? { ...r, previous: result.previous, version: result.version } : r;
  });
  if (accepted.length < quorum) {
    const error = noQuorum(what, reach, quorum, errors);
    const detail = servers.map((s) => `${s.server}: ${s.error ?? `accepted (was ${s.previous})`}`).join('; ');
    if (error instanceof RedisUnavailableError) {
      throw new RedisUnavailableError(
        `${what}: ${accepted.length} of ${sources.length} servers accepted, a quorum is ${quorum}; the goal is not in effect (${detail})`,
      );
    }
    throw error;
  }
  const previous = mostCommon(accepted.map((r) => r.previous));
  return {
    version: Math.max(...accepted.map((r) => r.version)),
    previous,
    quorum,
    accepted: accepted.length,
    servers,
  };
}

function mostCommon(values: number[]): number {
  const counts = new Map<number, number>();
  let best = values[0] ?? 0;
  for (const v of values) {
    counts.set(v, (counts.get(v) ?? 0) + 1);
    if ((counts.get(v) ?? 0) > (counts.get(best) ?? 0)) best = v;
  }
  return best;
}
