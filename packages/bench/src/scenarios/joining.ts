import type { BenchContext } from '../context.js';
import { type CrowdCost, measureCrowd } from './cost.js';

/** Members of one group joined in one process, by size: what `pnpm bench:join` measures. */
export interface JoinScale {
  command: string;
  heartbeatMs: number;
  at: Date;
  /** 1-, 5- and 15-minute load averages before and after (the machine may be shared). */
  load: { start: string; end: string };
  runs: CrowdCost[];
}

/** Members of one group in one process: join time, then the process's CPU at steady state (A = 3 H). */
export async function measureJoining(
  context: BenchContext,
  sizes: number[],
  heartbeatMs: number,
): Promise<CrowdCost[]> {
  const runs: CrowdCost[] = [];
  for (const size of sizes) {
    const run = await measureCrowd(context, {
      label: `join${size}`,
      groups: 1,
      perGroup: size,
      processes: 1,
      heartbeatMs,
      activationMs: 3 * heartbeatMs,
      windows: 2,
      windowMs: 3000,
    });
    runs.push(run);
    context.progress(
      `join: ${run.members.toLocaleString('en-US')} members of one group joined in ${(run.joinMs / 1000).toFixed(2)} s; ` +
        `steady state ${run.memberCpuPercentPerMember.toFixed(4)} % of a core per member, ${run.renewalsPerSecond.toFixed(0)} renewals/s, ` +
        `${run.failedRenewals} failed, ${run.warnings} process warnings`,
    );
  }
  return runs;
}
