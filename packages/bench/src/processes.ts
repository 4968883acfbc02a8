import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { runTypeScript } from '@understudy/testkit';
import { hrNow } from './clock.js';
import type { ContenderConfig, ContenderEvent } from './contenders/types.js';

/** Every child process the benchmark started and has not seen exit: stopped on the way out. */
const live = new Set<ChildProcess>();

/** A child that prints JSON events, one a line, and takes commands on stdin. */
export class Child<E extends { t: number; event: string }> extends EventEmitter<{ event: [E] }> {
  readonly events: E[] = [];
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  #exitedAt: number | undefined;

  constructor(script: string, argument: unknown) {
    super();
    this.process = spawn(process.execPath, [...runTypeScript(), script, JSON.stringify(argument)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    live.add(this.process);
    let buffered = '';
    this.process.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (!line.startsWith('{')) continue;
        const event = JSON.parse(line) as E;
        this.events.push(event);
        this.emit('event', event);
      }
    });
    // A killed child has exitCode null and signalCode set: wait for 'exit', not for a code.
    this.exited = new Promise((resolve) =>
      this.process.once('exit', () => {
        this.#exitedAt = performance.now();
        live.delete(this.process);
        resolve();
      }),
    );
  }

  get running(): boolean {
    return this.#exitedAt === undefined;
  }

  send(line: string): void {
    this.process.stdin?.write(`${line}\n`);
  }

  /** The first event after index `from` that matches, waiting up to `timeoutMs`. */
  waitFor(match: (e: E) => boolean, what: string, timeoutMs = 10_000, from = 0): Promise<E> {
    const found = this.events.slice(from).find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const onEvent = (e: E) => {
        if (!match(e)) return;
        cleanup();
        resolve(e);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(new Error(`the process exited while waiting for ${what}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.process.off('exit', onExit);
      };
      this.on('event', onEvent);
      this.process.once('exit', onExit);
    });
  }

  /** Sends the signal and waits for the exit; returns the hrNow() just before the signal. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number> {
    const t = hrNow();
    if (this.running) this.process.kill(signal);
    await this.exited;
    return t;
  }

  /** Closes stdin (the child exits on its own), SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    this.process.stdin?.end();
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

const CONTENDER = new URL('./contender.ts', import.meta.url).pathname;

/** A contender process (understudy member or peer) that joins on command. */
export class Contender extends Child<ContenderEvent> {
  #joins = 0;
  member = '';

  constructor(
    readonly config: ContenderConfig,
    readonly label: string,
  ) {
    super(CONTENDER, config);
  }

  ready(): Promise<ContenderEvent> {
    return this.waitFor((e) => e.event === 'ready', `${this.label} to start`, 30_000);
  }

  /** Joins (a new member id each time) and waits until the join returned. */
  async join(weight = 100): Promise<ContenderEvent> {
    this.#joins += 1;
    this.member = `${this.label}.${this.#joins}`;
    const from = this.events.length;
    const member = this.member;
    this.send(`join ${member} ${weight}`);
    return this.waitFor((e) => e.event === 'joined' && e.member === member, `${member} to join`, 15_000, from);
  }

  /** The index the next event will have. */
  get mark(): number {
    return this.events.length;
  }
}

/** SIGKILLs every child still running (used on SIGINT, on failure and at the end). */
export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/**
 * Runs a benchmark entry point's work: a failure is reported (`FAILED: …`, exit code 1), and
 * either way every child is killed and `cleanup` stops what the entry point started.
 */
export async function runEntry(
  progress: (line: string) => void,
  work: () => Promise<void>,
  cleanup: () => Promise<void>,
): Promise<void> {
  try {
    await work();
  } catch (error) {
    progress(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  } finally {
    killAllChildren();
    await cleanup();
  }
}
