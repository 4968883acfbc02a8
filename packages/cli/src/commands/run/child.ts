import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { constants as os } from 'node:os';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The exit code a shell would report: the code, or 128 + n when killed by signal n. */
export function exitCodeOf(exit: Exit): number {
  if (exit.code !== null) return exit.code;
  return 128 + (exit.signal ? (os.signals[exit.signal] ?? 0) : 0);
}

export function describeExit(exit: Exit): string {
  return exit.code !== null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
}

const SETPRIV = '/usr/bin/setpriv';

function hasSetpriv(): boolean {
  try {
    accessSync(SETPRIV, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether children can be tied to this process's life (Linux `setpriv --pdeathsig`). */
export const canTieToParent = hasSetpriv();

/**
 * The file and arguments that run `command` so the kernel sends it `signal` when this
 * process dies, however it dies; unchanged where setpriv is missing.
 */
export function tiedToParent(command: string, args: readonly string[], signal: 'KILL' | 'TERM'): [string, string[]] {
  return canTieToParent ? [SETPRIV, ['--pdeathsig', signal, '--', command, ...args]] : [command, [...args]];
}

/**
 * The wrapped program. It runs in a process group of its own (so stopping it reaches its
 * children too), and on Linux under `setpriv --pdeathsig KILL`: if the wrapper dies, even
 * by SIGKILL, the kernel kills the program at once, long before the wrapper's lease lapses
 * and a standby starts its own copy.
 */
export class Child {
  readonly exited: Promise<Exit>;
  #stopping = false;

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      // A killed process has exitCode null and signalCode set: listen for 'exit', not codes.
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  /** Whether the wrapper asked it to stop (an exit is then expected, not a failure). */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Starts the program; rejects if it cannot be spawned at all. */
  static start(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Child> {
    const [file, argv] = tiedToParent(command, args, 'KILL');
    const child = spawn(file, argv, { env, stdio: 'inherit', detached: true });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => {
        child.off('error', reject);
        child.on('error', () => undefined); // later errors (signalling a dead group) are harmless
        resolve(new Child(child));
      });
    });
  }

  /** SIGTERM to its process group, SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(graceMs: number): Promise<Exit> {
    this.#stopping = true;
    this.#signal('SIGTERM');
    const timer = setTimeout(() => this.#signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL now (the wrapper is being forced down). */
  kill(): void {
    this.#stopping = true;
    this.#signal('SIGKILL');
  }

  #signal(signal: NodeJS.Signals): void {
    const { pid, exitCode, signalCode } = this.child;
    if (pid === undefined || exitCode !== null || signalCode !== null) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // the group is gone already
    }
  }
}

/** Runs a shell command (the prepare hook) to completion; resolves with its exit. */
export function runShell(command: string, env: NodeJS.ProcessEnv): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const shell = spawn('/bin/sh', ['-c', command], { env, stdio: 'inherit' });
    shell.once('error', reject);
    shell.once('exit', (code, signal) => resolve({ code, signal }));
  });
}
