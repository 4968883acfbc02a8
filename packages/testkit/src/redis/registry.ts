import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every server the test kit starts in this process, so that none outlives it:
 * test files stop them in `afterAll` (see `vitest/setup.ts`), a process-exit guard
 * SIGKILLs what is left, and the suite's global teardown sweeps the pid files of
 * processes that died without running either.
 */
export interface Stoppable {
  readonly pid: number | undefined;
  stop(): Promise<void>;
  /** Synchronous last resort for the exit guard. */
  killNow(): void;
}

const live = new Set<Stoppable>();
let guardInstalled = false;

export const PID_FILE = 'testkit.pid';

/** Folder under which servers get their temporary directories. */
export function testkitRoot(): string {
  const root = process.env.UNDERSTUDY_TESTKIT_ROOT ?? join(tmpdir(), 'understudy-testkit');
  mkdirSync(root, { recursive: true });
  return root;
}

export function track(server: Stoppable): void {
  live.add(server);
  if (!guardInstalled) {
    guardInstalled = true;
    process.once('exit', () => {
      for (const s of live) s.killNow();
    });
  }
}

export function untrack(server: Stoppable): void {
  live.delete(server);
}

/** Stops every server this process started and has not stopped yet. */
export async function stopAllRedis(): Promise<void> {
  await Promise.allSettled([...live].map((s) => s.stop()));
}

export function liveServerCount(): number {
  return live.size;
}

/**
 * Kills every process still running from a server directory under `root` and removes
 * the directories. Returns the pids it had to kill: leftovers that the normal cleanup missed.
 * A pid is killed only if its working directory is still that server's directory (redis-server
 * chdirs into its `dir`), so a recycled pid belonging to something else is never touched.
 */
export function sweepLeftovers(root: string): number[] {
  const killed: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return killed;
  }
  for (const entry of entries) {
    const dir = join(root, entry);
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, PID_FILE), 'utf8'));
    } catch {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Number.isInteger(pid) && pid > 0 && workingDirectoryOf(pid) === dir) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return killed;
}

function workingDirectoryOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}
