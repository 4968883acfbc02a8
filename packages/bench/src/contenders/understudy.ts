import { joinGroup } from '@understudy/core';
import { understudySource } from './connection.js';
import type { StartCandidate } from './types.js';

/** A member of an understudy group: the activate / deactivate callbacks are the holder's belief. */
export const startUnderstudy: StartCandidate = async (config, { id, weight }, emit) => {
  const member = await joinGroup({
    redis: understudySource(config),
    group: config.key,
    memberId: id,
    weight,
    activeGoal: config.slots,
    heartbeatInterval: config.heartbeatMs,
    activationInterval: config.activationMs,
    durability: config.durability ?? 'async',
    onActivate: (info) => emit('acquired', { member: id, reason: info.reason, epoch: info.epoch }),
    onDeactivate: (info) =>
      emit(info.reason === 'lease-lost' ? 'lost' : 'released', { member: id, reason: info.reason }),
  });
  member.on('error', (error) => emit('error', { member: id, message: error.message }));
  return { leave: () => member.leave() };
};
