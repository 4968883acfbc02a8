// A leaf module: errors.ts needs the reasons too, and importing them from types.ts (which
// imports the connection settings, which import errors.ts) would close an import circle.

export type ActivateReason = 'initial' | 'failover' | 'handover' | 'goal-raised' | 'reclaimed';
export type DeactivateReason = 'leave' | 'preempted' | 'lease-lost' | 'goal-lowered' | 'disabled' | 'quarantine';
