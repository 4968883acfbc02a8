import { Etcd3 } from 'etcd3';
import { hrNow } from '../clock.js';
import type { StartCandidate } from './types.js';

interface LeaseEvents {
  on(event: 'keepaliveSucceeded', listener: (response: { TTL: string }) => void): void;
}

/**
 * An etcd election campaign (etcd3's `Election`): elected when the keys ahead of it are
 * deleted (a watch, no polling). Its lease TTL is whole seconds; the client keeps it alive
 * every TTL / 3 (not configurable), and reports each acknowledged keepalive.
 */
export const startEtcd: StartCandidate = async (config, { id }, emit) => {
  const client = new Etcd3({ hosts: config.etcdHosts });
  const ttlSeconds = Math.max(1, Math.round(config.activationMs / 1000));
  const campaign = client.election(config.key, ttlSeconds).campaign(id);
  let holding = false;
  // The campaign's lease is private in etcd3; its keepalive acknowledgements give the deadline.
  const lease = (campaign as unknown as { lease: LeaseEvents }).lease;
  lease.on('keepaliveSucceeded', (response) => {
    const t = hrNow();
    emit('lease', { member: id, deadline: t + Number(response.TTL) * 1000, ttl: Number(response.TTL) });
  });
  campaign.on('elected', () => {
    holding = true;
    emit('acquired', { member: id });
  });
  campaign.on('error', (error: Error) => {
    if (holding) {
      holding = false;
      emit('lost', { member: id, reason: error.message });
    } else emit('error', { member: id, message: error.message });
  });
  return {
    async leave() {
      if (holding) {
        holding = false;
        emit('released', { member: id, reason: 'leave' });
      }
      await campaign.resign().catch(() => undefined);
      client.close();
    },
  };
};
