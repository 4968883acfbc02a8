import { createRequire } from 'node:module';
import { QUEUE_DEFAULTS } from '@understudy/core';
import type { QueueSystem } from './types.js';

/** BullMQ's version as installed (the label says what was measured). */
export const BULLMQ_VERSION = (createRequire(import.meta.url)('bullmq/package.json') as { version: string }).version;

/** BullMQ's defaults (Worker: lockDuration 30 s, stalledInterval 30 s; lockRenewTime = lockDuration / 2). */
const BULLMQ_DEFAULT_LOCK_MS = 30_000;
const BULLMQ_DEFAULT_STALLED_MS = 30_000;

/**
 * The systems compared, on one Redis. understudy: A = 1 s, H = 200 ms (the lease of the group
 * benchmarks), completeTime its default (30 s: longer than any task here, so a dead or stalled
 * worker's lease, not the task's deadline, sends a task elsewhere). BullMQ tuned to match:
 * lockDuration = A, stalledInterval = H (its stalled checker runs in every worker, as
 * understudy's renewals do).
 */
export function queueSystems(lease: { activationMs: number; heartbeatMs: number }): QueueSystem[] {
  const A = lease.activationMs;
  const H = lease.heartbeatMs;
  const completeTime = QUEUE_DEFAULTS.completeTime;
  // BullMQ marks a job as stalled in one check and moves it back to wait in the next one after
  // its lock lapsed: up to lockDuration + 2 × stalledInterval.
  return [
    {
      key: 'understudy',
      kind: 'understudy',
      label: 'understudy',
      understudy: { activationInterval: A, heartbeatInterval: H, completeTime },
      redeliveryBoundMs: A + 2 * H,
      settingsText: `activationInterval A = ${A} ms, heartbeatInterval H = ${H} ms, completeTime = ${completeTime} ms (its default), capacity 1`,
    },
    {
      key: 'bullmq-tuned',
      kind: 'bullmq',
      label: `BullMQ ${BULLMQ_VERSION}, tuned`,
      bullmq: { lockDuration: A, stalledInterval: H },
      redeliveryBoundMs: A + 2 * H,
      settingsText: `lockDuration = ${A} ms (= A), stalledInterval = ${H} ms (= H), lockRenewTime ${A / 2} ms (its default, lockDuration / 2), concurrency 1`,
    },
    {
      key: 'bullmq-default',
      kind: 'bullmq',
      label: `BullMQ ${BULLMQ_VERSION}, default`,
      bullmq: {},
      redeliveryBoundMs: BULLMQ_DEFAULT_LOCK_MS + 2 * BULLMQ_DEFAULT_STALLED_MS,
      settingsText: `defaults: lockDuration ${BULLMQ_DEFAULT_LOCK_MS} ms, stalledInterval ${BULLMQ_DEFAULT_STALLED_MS} ms, lockRenewTime ${BULLMQ_DEFAULT_LOCK_MS / 2} ms, concurrency 1`,
    },
  ];
}
