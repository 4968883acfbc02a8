import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTypeScript } from '../node.js';
import { PID_FILE, type Stoppable, testkitRoot, track, untrack } from '../redis/registry.js';
import { type MemberArgs, type MemberCommand, type MemberReport, memberArgv } from './member-args.js';

/** What every recording process is started with: its id and its history file (a member's or a queue worker's). */
export interface ProcessArgs {
  id: string;
  history: string;
}

export interface MemberExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * The harness's handle on one history-recording process: a group member (`MemberArgs`), or a
 * queue worker (`WorkerArgs`, worker-args.ts). It follows what the member
 * reports (joined, active, advisories) and signals it. Registered with the test kit, so the
 * hooks and the exit guard that stop servers stop members too; the process runs in a folder
 * of its own with a pid file, so the suite's sweep finds it if everything else failed.
 */
export class MemberProcess<A extends ProcessArgs = MemberArgs> implements Stoppable {
  readonly id: string;
  readonly args: A;
  readonly child: ChildProcess;
  readonly exited: Promise<MemberExit>;
  /** Where its stderr goes, for diagnosis (kept with the histories). */
  readonly logPath: string;
  readonly reports: (MemberReport & { at: bigint })[] = [];
  #dir: string;
  #running = true;
  #stopped = false;
  #waiters = new Set<() => void>();

  constructor(script: string, args: A, logPath: string) {
    this.id = args.id;
    this.args = args;
    this.#dir = mkdtempSync(join(testkitRoot(), 'member-'));
    this.logPath = logPath;
    const stderr = openSync(this.logPath, 'a');
    this.child = spawn(process.execPath, [...runTypeScript(), script, ...memberArgv(args)], {
      cwd: this.#dir,
      stdio: ['pipe', 'pipe', stderr],
    });
    closeSync(stderr);
    if (this.child.pid) writeFileSync(join(this.#dir, PID_FILE), String(this.child.pid));
    this.child.stdin?.on('error', () => undefined); // a dead member's stdin
    // A killed child has exitCode null and signalCode set: wait for 'exit', not for a code.
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.#running = false;
        this.#notify();
        resolve({ code, signal });
      });
    });
    let buffered = '';
    this.child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        this.#onReport(line);
      }
    });
    track(this);
  }

  get pid(): number | undefined {
    return this.#running ? this.child.pid : undefined;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Whether the member last reported itself active (its lease may have run out since). */
  get active(): boolean {
    for (let i = this.reports.length - 1; i >= 0; i--) {
      const r = this.reports[i] as MemberReport;
      if (r.event === 'activate') return true;
      if (r.event === 'deactivate' || r.event === 'left') return false;
    }
    return false;
  }

  /** Whether it reported that it left the group (a leave, or its join's signal aborted). */
  get left(): boolean {
    return this.reports.some((r) => r.event === 'left');
  }

  get joined(): boolean {
    return this.reports.some((r) => r.event === 'joined');
  }

  /** What the member reported as `event`, each with when it arrived (hrtime ns). */
  reported<E extends MemberReport['event']>(event: E): (Extract<MemberReport, { event: E }> & { at: bigint })[] {
    return this.reports.filter((r) => r.event === event) as unknown as (Extract<MemberReport, { event: E }> & {
      at: bigint;
    })[];
  }

  /** Resolves when `probe` holds (checked at every report and exit), or rejects after `timeoutMs`. */
  until(probe: () => boolean, what: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return untilMembers([this], probe, `${this.id}: ${what}`, timeoutMs, signal);
  }

  send(command: MemberCommand): void {
    if (this.#running && this.child.stdin?.writable) this.child.stdin.write(`${JSON.stringify(command)}\n`);
  }

  signal(signal: NodeJS.Signals): boolean {
    if (!this.#running || !this.child.pid) return false;
    try {
      process.kill(this.child.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** The last lines of its stderr. */
  logTail(lines = 20): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** SIGKILL (SIGCONT is not needed: a stopped process dies too), then wait for the exit. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.signal('SIGKILL');
    await this.exited;
    rmSync(this.#dir, { recursive: true, force: true });
    untrack(this);
  }

  killNow(): void {
    this.signal('SIGKILL');
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** @internal for `untilMembers` */
  addWaiter(waiter: () => void): () => void {
    this.#waiters.add(waiter);
    return () => this.#waiters.delete(waiter);
  }

  #onReport(line: string): void {
    let report: MemberReport;
    try {
      report = JSON.parse(line) as MemberReport;
    } catch {
      return; // not ours (a library printing to stdout)
    }
    this.reports.push({ ...report, at: process.hrtime.bigint() });
    this.#notify();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/**
 * Waits until `probe` holds, checking it whenever one of `members` reports or exits, and every
 * 50 ms (for probes that look at time). Rejects after `timeoutMs`, or when `signal` aborts —
 * unlike the polling `waitFor` of wait.ts, a soak's Ctrl-C ends it at once.
 */
export function untilMembers(
  members: readonly MemberProcess<ProcessArgs>[],
  probe: () => boolean,
  what: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const removers: (() => void)[] = [];
    let timer: NodeJS.Timeout | undefined;
    let poll: NodeJS.Timeout | undefined;
    const done = (error?: Error) => {
      clearTimeout(timer);
      clearInterval(poll);
      for (const remove of removers) remove();
      signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    const check = () => {
      try {
        if (probe()) done();
      } catch (error) {
        done(error instanceof Error ? error : new Error(String(error)));
      }
    };
    const onAbort = () => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    for (const member of members) removers.push(member.addWaiter(check));
    timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    poll = setInterval(check, 50);
    check();
  });
}
