// A member of a group with a feed, in a process of its own: prints every `onMessage` and every
// activation as a JSON line with an hrtime stamp (ms, comparable across processes). Joins at
// once; exits when stdin closes (its parent died).
import { joinGroup } from '@understudy/core';
import { hrNow } from '../clock.js';

export interface FeedMemberConfig {
  redisUrl: string;
  group: string;
  memberId: string;
  weight: number;
  activationMs: number;
  heartbeatMs: number;
}

/** One line a feed member prints. */
export interface FeedMemberEvent {
  t: number;
  event: 'ready' | 'joined' | 'message' | 'acquired' | 'released' | 'error';
  /** message: the feed id, the publisher's stamp (hrNow), and whether this member acts on it. */
  id?: string;
  sent?: number;
  active?: boolean;
  epoch?: number;
  message?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as FeedMemberConfig;
const emit = (event: FeedMemberEvent['event'], fields: Omit<FeedMemberEvent, 't' | 'event'> = {}) =>
  process.stdout.write(`${JSON.stringify({ t: hrNow(), event, ...fields })}\n`);

emit('ready');
const member = await joinGroup({
  redis: config.redisUrl,
  group: config.group,
  memberId: config.memberId,
  weight: config.weight,
  heartbeatInterval: config.heartbeatMs,
  activationInterval: config.activationMs,
  onActivate: (info) => emit('acquired', { epoch: info.epoch }),
  onDeactivate: (info) => emit('released', { epoch: info.epoch }),
  onMessage: (m) => {
    const sent = typeof m.data === 'object' && m.data !== null ? (m.data as { t?: unknown }).t : undefined;
    emit('message', {
      id: m.id,
      active: m.active,
      ...(typeof sent === 'number' ? { sent } : {}),
      ...(m.epoch === undefined ? {} : { epoch: m.epoch }),
    });
  },
});
member.on('error', (error) => emit('error', { message: error.message }));
emit('joined');
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => process.exit(0));
