import type { RedisSource } from '../connections/settings.js';
import { ConfigError } from '../errors.js';
import { Member as ServerMember } from './member.js';
import { QuorumMember } from './quorum-member.js';
import type { JoinOptions, MemberEvents } from './types.js';

/** A member of a group: on one Redis deployment, or over K of them in quorum mode (DESIGN §9). */
export type Member = ServerMember | QuorumMember;

/** Joins a group; resolves once the member is registered (activation, if any, follows). An array of deployments is quorum mode. */
export async function joinGroup(options: JoinOptions): Promise<Member> {
  const listeners = Object.entries(options.listeners ?? {});
  for (const [event, listener] of listeners) {
    if (typeof listener !== 'function') throw new ConfigError(`listeners.${event}`, listener, 'must be a function');
  }
  const { redis } = options;
  const member = isQuorum(redis) ? new QuorumMember({ ...options, redis }) : new ServerMember(options);
  for (const [event, listener] of listeners) member.on(event as keyof MemberEvents, listener);
  await member.start();
  return member;
}

function isQuorum(redis: JoinOptions['redis']): redis is readonly RedisSource[] {
  return Array.isArray(redis);
}
