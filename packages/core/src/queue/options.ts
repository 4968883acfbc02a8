import { ConfigError } from '../errors.js';
import {
  commandTimeoutFor,
  MAX_INTERVAL,
  MAX_WEIGHT,
  validateClockDrift,
  validateIntervals,
  validateLeaseBudget,
} from '../options.js';

/** Defaults for every optional setting of a queue worker, in one place. */
export const QUEUE_DEFAULTS = Object.freeze({
  weight: 1,
  capacity: 1,
  completeTime: 30_000,
  maxDeliveries: 5,
  heartbeatInterval: 1000,
  activationInterval: 3000,
  clockDrift: 0.01,
});

/** The most tasks one worker may hold at once, and the most deliveries of one task. */
export const MAX_CAPACITY = 10_000;
export const MAX_DELIVERIES = 1000;

export interface WorkerSettings {
  weight: number;
  capacity: number;
  completeTime: number;
  maxDeliveries: number;
  heartbeatInterval: number;
  activationInterval: number;
  clockDrift: number;
}

function wholeIn(field: string, value: unknown, low: number, high: number, unit = ''): number {
  if (!Number.isInteger(value) || (value as number) < low || (value as number) > high) {
    throw new ConfigError(field, value, `must be an integer from ${low} to ${high}${unit}`);
  }
  return value as number;
}

/** Validates a worker's settings, filling in the defaults (DESIGN §11, docs/MESSAGES.md). */
export function workerSettings(options: Partial<Record<keyof WorkerSettings, unknown>>): WorkerSettings {
  const d = QUEUE_DEFAULTS;
  const intervals = validateIntervals({
    heartbeatInterval: (options.heartbeatInterval ?? d.heartbeatInterval) as number,
    preparationInterval: 0,
    activationInterval: (options.activationInterval ?? d.activationInterval) as number,
  });
  const clockDrift = validateClockDrift(options.clockDrift ?? d.clockDrift);
  validateLeaseBudget(intervals, clockDrift, commandTimeoutFor(intervals.heartbeatInterval), 2);
  return {
    weight: wholeIn('weight', options.weight ?? d.weight, 1, MAX_WEIGHT),
    capacity: wholeIn('capacity', options.capacity ?? d.capacity, 1, MAX_CAPACITY, ' (tasks in flight at once)'),
    completeTime: wholeIn('completeTime', options.completeTime ?? d.completeTime, 10, MAX_INTERVAL, ' ms'),
    maxDeliveries: wholeIn('maxDeliveries', options.maxDeliveries ?? d.maxDeliveries, 1, MAX_DELIVERIES),
    heartbeatInterval: intervals.heartbeatInterval,
    activationInterval: intervals.activationInterval,
    clockDrift,
  };
}
