// Many understudy members in one process, for the cost runs. Prints JSON lines with hrtime
// stamps; commands on stdin: `stats` (CPU, memory, renewals so far), `leave`. Exits when
// stdin closes.
import { createInterface } from 'node:readline';
import { joinGroup, type Member } from '@understudy/core';
import { hrNow } from './clock.js';

export interface CrowdConfig {
  url: string;
  /** Group names; every group gets `perGroup` members. */
  groups: string[];
  perGroup: number;
  heartbeatMs: number;
  activationMs: number;
  /** Joins in flight at once. */
  concurrency: number;
  /** Prefix of member ids, unique per process when several processes share a group. */
  idPrefix: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as CrowdConfig;
const emit = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ t: hrNow(), event, ...fields })}\n`);

const PROGRESS_EVERY = 1000;
const members: Member[] = [];
let renewals = 0;
let failed = 0;
let joinErrors = 0;
let lastJoinError = '';
/** Process warnings (a MaxListenersExceededWarning among them) since the start. */
let warnings = 0;
process.on('warning', () => {
  warnings += 1;
});

async function joinAll(): Promise<void> {
  const plan = config.groups.flatMap((group, g) =>
    Array.from({ length: config.perGroup }, (_, i) => ({
      group,
      id: `${config.idPrefix}${g}-${i}`,
      weight: 1 + (i % 100),
    })),
  );
  let next = 0;
  const worker = async () => {
    while (next < plan.length) {
      const { group, id, weight } = plan[next++] as (typeof plan)[number];
      let member: Member | undefined;
      // A saturated process can miss a command timeout: try again under a fresh id (a join
      // that ran but whose reply was lost leaves an orphan that lapses after A).
      for (let attempt = 0; attempt < 3 && !member; attempt++) {
        try {
          member = await joinGroup({
            redis: config.url,
            group,
            memberId: attempt === 0 ? id : `${id}-r${attempt}`,
            weight,
            heartbeatInterval: config.heartbeatMs,
            activationInterval: config.activationMs,
          });
        } catch (error) {
          joinErrors += 1;
          lastJoinError = error instanceof Error ? error.message : String(error);
        }
      }
      if (!member) continue;
      member.on('renewal', (r) => {
        if (r.outcome === 'ok') renewals += 1;
        else failed += 1;
      });
      members.push(member);
      if (members.length % PROGRESS_EVERY === 0) emit('progress', { members: members.length, of: plan.length });
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, worker));
}

function stats(): Record<string, unknown> {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    cpuMicros: cpu.user + cpu.system,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    renewals,
    failed,
    members: members.length,
    joinErrors,
    lastJoinError,
    warnings,
    active: members.filter((m) => m.isActive()).length,
  };
}

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (line === 'stats') emit('stats', stats());
  else if (line === 'leave') {
    void Promise.allSettled(members.map((m) => m.leave())).then(() => {
      emit('left');
      process.exit(0);
    });
  }
});
input.on('close', () => process.exit(0));

globalThis.gc?.();
emit('ready', stats());
const started = hrNow();
await joinAll();
emit('joined', { ...stats(), joinMs: hrNow() - started });
