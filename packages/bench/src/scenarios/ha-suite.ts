// The HA family: every failover case on a Sentinel set and on a Cluster, and the durability trade.
import { beginRun, type FamilyRun } from '../family.js';
import { HA_LEASES, type HaSettings } from '../settings.js';
import { type HaTopology, startClusterTopology, startSentinelTopology, TOPOLOGY_SETTINGS } from '../topology.js';
import { type DurabilityResult, runDurability } from './durability.js';
import { type Fault, type HaPlan, type HaResult, runHaCase } from './ha.js';
import { type PeerHaPlan, type PeerHaResult, runPeerHaCase } from './ha-peers.js';

export interface HaResults {
  /** The HA family can be measured alone (`--only ha`): when, how and under what load. */
  run: FamilyRun;
  topologies: typeof TOPOLOGY_SETTINGS;
  leases: typeof HA_LEASES;
  cases: HaResult[];
  /** The peers through the same Sentinel failovers (A = TTL of the shorter lease). */
  peers: PeerHaResult[];
  durability: DurabilityResult[];
  failures: string[];
}

/** Every case of one topology: each fault at each lease, then 'replicated' on Sentinel for SIGKILL. */
export function haPlans(topology: HaTopology['kind'], rounds: number): HaPlan[] {
  const plans: HaPlan[] = [];
  for (const lease of HA_LEASES) {
    for (const fault of ['SIGKILL', 'SIGSTOP'] as Fault[]) {
      plans.push({ topology, fault, durability: 'async', ...lease, rounds });
    }
    // WAIT has no key for a Cluster client to route by: 'replicated' is refused there.
    if (topology === 'sentinel') plans.push({ topology, fault: 'SIGKILL', durability: 'replicated', ...lease, rounds });
  }
  return plans;
}

/** redlock's loop (one holder) and redis-semaphore's Semaphore (two, like the group's goal). */
export function peerPlans(rounds: number): PeerHaPlan[] {
  return (['redlock', 'semaphore'] as const).flatMap((kind) =>
    (['SIGKILL', 'SIGSTOP'] as Fault[]).map((fault) => ({ kind, fault, ...HA_LEASES[0], rounds })),
  );
}

export async function runHaSuite(
  settings: HaSettings,
  run: { command: string; revision: string },
  progress: (line: string) => void,
): Promise<HaResults> {
  const record = beginRun(run);
  const results: HaResults = {
    run: record.run,
    topologies: TOPOLOGY_SETTINGS,
    leases: HA_LEASES,
    cases: [],
    peers: [],
    durability: [],
    failures: [],
  };
  for (const start of [startSentinelTopology, startClusterTopology]) {
    let topology: HaTopology | undefined;
    try {
      topology = await start();
      progress(`── HA: ${topology.description}`);
      for (const plan of haPlans(topology.kind, settings.rounds)) {
        progress(
          `── HA: ${plan.topology}, ${plan.fault} of the master, ${plan.durability}, A = ${plan.activationMs} ms`,
        );
        results.cases.push(await runHaCase(topology, plan, progress));
      }
      if (topology.kind === 'sentinel') {
        for (const plan of peerPlans(settings.rounds)) {
          progress(`── HA: ${plan.kind} on Sentinel, ${plan.fault} of the master, TTL ${plan.activationMs} ms`);
          results.peers.push(await runPeerHaCase(topology, plan, progress));
        }
        for (const durability of ['async', 'replicated'] as const) {
          progress(
            `── durability ${durability}: ${settings.handovers} handovers, ${settings.rollbacks} master losses before replication`,
          );
          results.durability.push(
            await runDurability(
              topology,
              {
                durability,
                ...HA_LEASES[0],
                handovers: settings.handovers,
                rollbackActivationMs: HA_LEASES[1].activationMs,
                rollbacks: settings.rollbacks,
              },
              progress,
            ),
          );
        }
      }
    } catch (error) {
      const message = `HA on ${topology?.kind ?? 'a new topology'} failed: ${error instanceof Error ? error.message : String(error)}`;
      results.failures.push(message);
      progress(message);
    } finally {
      await topology?.stop();
    }
  }
  record.finish();
  return results;
}
