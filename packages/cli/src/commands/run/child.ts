import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { constants as os } from 'node:os';
import { delimiter, join } from 'node:path';
import { ExitCode } from '../../exit.js';
import { tiedToParent } from '../../tie-to-parent.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The exit code a shell would report: the code, or 128 + n when killed by signal n. */
export function shellExitCode(exit: Exit): number {
  if (exit.code !== null) return exit.code;
  return 128 + (exit.signal ? (os.signals[exit.signal] ?? 0) : 0);
}

export function describeExit(exit: Exit): string {
  return exit.code !== null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
}

/**
 * Why `command` cannot be started, the way the shell would say it (and the exit code that
 * goes with it), or undefined when it looks executable: a program name is looked up in PATH.
 */
export function whyNotExecutable(
  command: string,
  env: NodeJS.ProcessEnv,
): { message: string; code: typeof ExitCode.cannotExecute | typeof ExitCode.notFound } | undefined {
  const candidates = command.includes('/')
    ? [command]
    : (env.PATH ?? '').split(delimiter).map((dir) => join(dir || '.', command));
  let found = false;
  for (const file of candidates) {
    try {
      if (!statSync(file).isFile()) continue;
      found = true;
      accessSync(file, constants.X_OK);
      return undefined;
    } catch {
      // not here, or not executable
    }
  }
  return found
    ? { message: `${command}: permission denied (not executable)`, code: ExitCode.cannotExecute }
    : { message: `${command}: not found${command.includes('/') ? '' : ' in PATH'}`, code: ExitCode.notFound };
}

/** How often a stopping process group is looked at once its main process has exited. */
const GROUP_POLL_MS = 10;

/**
 * Kills process group `pgid` when this process dies, however it dies (SIGKILL included): a
 * shell in a session of its own that waits for the end of a pipe only this process holds,
 * then SIGKILLs the group. (setpriv's pdeathsig reaches the main process only; what it
 * forked would run on.)
 */
function guardGroup(pgid: number): ChildProcess {
  const guard = spawn(
    '/bin/sh',
    ['-c', 'read line; kill -s 9 -- "-$1" 2>/dev/null', 'understudy-guard', String(pgid)],
    {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    },
  );
  guard.on('error', () => undefined);
  guard.stdin?.on('error', () => undefined);
  // Neither may keep this process alive: it is gone with the group (see Child.#gone).
  guard.unref();
  (guard.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return guard;
}

/**
 * A process group we started: the wrapped program, or the prepare command. It runs in a
 * process group (and session) of its own, so stopping it reaches every process it started
 * that stayed in the group. If the wrapper dies, even by SIGKILL, the group dies with it, long
 * before the wrapper's lease lapses and a standby starts its own copy: on Linux the main
 * process runs under `setpriv --pdeathsig KILL`, and a guard process kills the whole group.
 */
export class Child {
  /** The main process's exit. */
  readonly exited: Promise<Exit>;
  #stopping = false;
  #stopped: Promise<Exit> | undefined;
  #killAt = Number.POSITIVE_INFINITY;
  #killTimer: NodeJS.Timeout | undefined;
  readonly #guard: ChildProcess | undefined;

  private constructor(
    readonly child: ChildProcess,
    guard: ChildProcess | undefined,
  ) {
    this.exited = new Promise((resolve) => {
      // A killed process has exitCode null and signalCode set: listen for 'exit', not codes.
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    this.#guard = guard;
    // Whoever stops it, or however it ends, the guard goes once the group is gone.
    void this.exited.then(() => {
      this.#stopped ??= this.#gone();
    });
  }

  /** Whether the wrapper asked it to stop (an exit is then expected, not a failure). */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Starts a program; rejects if it cannot be spawned at all. */
  static start(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Child> {
    const [file, argv] = tiedToParent(command, args, 'KILL');
    const child = spawn(file, argv, { env, stdio: 'inherit', detached: true });
    // At once, in this turn of the event loop: the program runs already, and this process
    // could be killed before the next.
    const guard = child.pid === undefined ? undefined : guardGroup(child.pid);
    return new Promise((resolve, reject) => {
      const failed = (error: Error) => {
        guard?.kill('SIGKILL');
        reject(error);
      };
      child.once('error', failed);
      child.once('spawn', () => {
        child.off('error', failed);
        child.on('error', () => undefined); // later errors (signalling a dead group) are harmless
        resolve(new Child(child, guard));
      });
    });
  }

  /** Runs a shell command (`/bin/sh -c`) in a process group of its own. */
  static shell(command: string, env: NodeJS.ProcessEnv): Promise<Child> {
    return Child.start('/bin/sh', ['-c', command], env);
  }

  /**
   * SIGTERM to the process group, SIGKILL to it after `graceMs` (or earlier, see `killBy`);
   * resolves when every process of the group has exited, with the main process's exit.
   * Calling it again shortens the grace, never lengthens it.
   */
  stop(graceMs: number): Promise<Exit> {
    this.killBy(performance.now() + graceMs);
    if (!this.#stopping) {
      this.#stopping = true;
      this.#signal('SIGTERM');
    }
    this.#stopped ??= this.#gone();
    return this.#stopped;
  }

  /** SIGKILL to the process group at `at` (performance.now() time) unless it is gone by then. */
  killBy(at: number): void {
    if (at >= this.#killAt) return;
    this.#killAt = at;
    clearTimeout(this.#killTimer);
    this.#killTimer = setTimeout(() => this.kill(), Math.max(0, at - performance.now()));
  }

  /** SIGKILL to the process group now; resolves when every process of it has exited. */
  kill(): Promise<Exit> {
    this.#stopping = true;
    this.#killAt = performance.now();
    this.#signal('SIGKILL');
    this.#stopped ??= this.#gone();
    return this.#stopped;
  }

  /** The main process's exit, once no process of the group is left. */
  async #gone(): Promise<Exit> {
    const exit = await this.exited;
    const pid = this.child.pid;
    // The group's other processes were re-parented to init (or a subreaper): all we can do is
    // look until none is left. SIGKILL reaches them too if they outstay the grace.
    while (pid !== undefined && groupExists(pid)) {
      await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_MS));
      if (performance.now() >= this.#killAt) signalGroup(pid, 'SIGKILL');
    }
    clearTimeout(this.#killTimer);
    this.#guard?.kill('SIGKILL');
    return exit;
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.child.pid !== undefined) signalGroup(this.child.pid, signal);
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // the group is gone
  }
}

/**
 * Whether any process of the group is left. A zombie has exited (it only awaits its parent):
 * where /proc tells, the group is gone once only zombies are left, so that a PID 1 that does
 * not reap orphans cannot keep the wrapper waiting.
 */
function groupExists(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}
