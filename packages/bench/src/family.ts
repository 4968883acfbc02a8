import { describeCpu, readLoadAverage } from './machine.js';

/** When, how and under what load a family that can run alone (`--only ha`, `--only queue`) was measured. */
export interface FamilyRun {
  command: string;
  startedAt: string;
  durationS: number;
  revision: string;
  /** The CPU it ran on (`describeCpu`); absent in runs recorded before it was kept. */
  cpu?: string;
  load: { start: string; end: string };
}

/** Starts the record of a family's run; `finish()` fills in its duration and the load at the end. */
export function beginRun(run: { command: string; revision: string }): { run: FamilyRun; finish(): void } {
  const started = performance.now();
  const record: FamilyRun = {
    ...run,
    startedAt: new Date().toISOString(),
    durationS: 0,
    cpu: describeCpu(),
    load: { start: readLoadAverage(), end: '' },
  };
  return {
    run: record,
    finish: () => {
      record.durationS = (performance.now() - started) / 1000;
      record.load.end = readLoadAverage();
    },
  };
}

/** The line that opens a family's section: the command, when, the commit measured, the load. */
export function runLine(r: FamilyRun): string {
  return (
    `Measured by \`${r.command}\` on ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC (${Math.round(r.durationS / 60)} min), ` +
    `understudy ${r.revision}${r.cpu ? `, on ${r.cpu}` : ''}; load average (1, 5, 15 min) ${r.load.start} at the start, ${r.load.end} at the end.`
  );
}
