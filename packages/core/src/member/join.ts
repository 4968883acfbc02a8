import { ConfigError } from '../errors.js';
import { Member } from './member.js';
import type { JoinOptions, MemberEvents } from './types.js';

/** Joins a group; resolves once the member is registered (activation, if any, follows). */
export async function joinGroup(options: JoinOptions): Promise<Member> {
  const listeners = Object.entries(options.listeners ?? {});
  for (const [event, listener] of listeners) {
    if (typeof listener !== 'function') throw new ConfigError(`listeners.${event}`, listener, 'must be a function');
  }
  const member = new Member(options);
  for (const [event, listener] of listeners) member.on(event as keyof MemberEvents, listener);
  await member.start();
  return member;
}
