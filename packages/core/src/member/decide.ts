import type { ServerRole } from '../scripts.js';
import type { DeactivateReason, MemberState } from './types.js';

/** What the group (Redis) last said about this member's role. */
export interface ServerWord {
  role: ServerRole;
  epoch: number;
  slot: number;
  reason: string;
  /**
   * Said by a renewal, which carries what the member holds and knows: only such a reply may
   * deliver an activation (S6: a server that lost writes reports a slot only to its claimant).
   */
  confirmed: boolean;
}

/** Everything the decision depends on: the group's word and the member's own ledger. */
export interface Situation {
  server: ServerWord;
  /** The epoch the member holds (delivered, not ended). */
  held: number | undefined;
  /** The ledger's floor: epochs at or below it are never delivered. */
  floor: number;
  /** The epoch waiting in the action queue to be delivered. */
  pending: number | undefined;
  /** Epochs whose deactivate handler has not settled. */
  settling: (epoch: number) => boolean;
  state: MemberState;
  quarantined: boolean;
  /** No handler runs or waits. */
  idle: boolean;
}

/** One thing the member does; the member carries them out in the order given. */
export type Step =
  | { do: 'revoke'; epoch: number }
  | { do: 'activate'; epoch: number }
  | { do: 'renew' }
  | { do: 'deactivate'; reason: DeactivateReason; release: boolean; advise: boolean }
  | { do: 'retire'; epoch: number }
  | { do: 'release'; epoch: number; reason: string }
  | { do: 'prepare' }
  | { do: 'withdraw-prepare' };

/**
 * The table of docs/member-state-machine.md ("Converging"), as code: given the group's word
 * and the member's ledger, what the member does. Pure: no clock, no Redis, no side effects.
 */
export function decide(s: Situation): Step[] {
  const { server, held } = s;
  const steps: Step[] = [];
  // Granted and then taken back before it was delivered: void for good.
  if (s.pending !== undefined && !(server.role === 'active' && server.epoch === s.pending)) {
    steps.push({ do: 'revoke', epoch: s.pending });
  }
  const release = (epoch: number, reason: string) => {
    if (!s.settling(epoch)) steps.push({ do: 'release', epoch, reason });
  };
  switch (server.role) {
    case 'active':
      if (held !== undefined) {
        if (held !== server.epoch) steps.push({ do: 'deactivate', reason: 'lease-lost', release: true, advise: false });
      } else if (server.epoch <= s.floor) {
        // S6: an epoch delivered, released or revoked before is never delivered (again).
        release(server.epoch, 'lease-lost');
      } else if (s.pending !== server.epoch) {
        steps.push(server.confirmed ? { do: 'activate', epoch: server.epoch } : { do: 'renew' });
      }
      return steps;
    case 'releasing':
      if (held === server.epoch) {
        steps.push({ do: 'deactivate', reason: server.reason as DeactivateReason, release: true, advise: false });
        return steps;
      }
      // Told to release an epoch it does not hold: the one it holds is unknown to the group.
      if (held !== undefined) steps.push({ do: 'deactivate', reason: 'lease-lost', release: true, advise: false });
      steps.push({ do: 'retire', epoch: server.epoch });
      release(server.epoch, server.reason);
      return steps;
    default:
      if (held !== undefined) {
        const reason = s.quarantined ? 'quarantine' : 'lease-lost';
        steps.push({ do: 'deactivate', reason, release: false, advise: true });
      }
      if (server.role === 'preparing' && s.state !== 'preparing') steps.push({ do: 'prepare' });
      if (server.role === 'standby' && s.state === 'preparing' && s.idle) steps.push({ do: 'withdraw-prepare' });
      return steps;
  }
}
