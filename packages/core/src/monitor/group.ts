import type { RedisSource } from '../connections/settings.js';
import { type MonitorOptions, ServerMonitor } from './monitor.js';
import { QuorumMonitor } from './quorum-monitor.js';

/** A monitor of a group: on one Redis deployment, or over K of them in quorum mode (DESIGN §9). */
export type Monitor = ServerMonitor | QuorumMonitor;

/**
 * Starts watching a group; resolves after the first read (in quorum mode, once Q deployments
 * answered). Works for empty or unknown groups. `redis` as an array is quorum mode.
 */
export async function monitorGroup(options: MonitorOptions): Promise<Monitor> {
  const { redis } = options;
  const monitor = isQuorum(redis) ? new QuorumMonitor({ ...options, redis }) : new ServerMonitor({ ...options, redis });
  await monitor.start();
  return monitor;
}

function isQuorum(redis: MonitorOptions['redis']): redis is readonly RedisSource[] {
  return Array.isArray(redis);
}
