import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Member } from '@understudy/core';
import { hrNow, type RedisServer, runTypeScript, startRedis, waitFor } from '@understudy/testkit';
import { afterAll, afterEach, beforeAll } from 'vitest';

const BIN = join(import.meta.dirname, '../bin/understudy.js');
/** The stand-in program for `understudy run` (see its header). */
const PROGRAM = join(import.meta.dirname, 'fixtures/program.mjs');

/**
 * How long a start-up of `understudy` may take: tsx compiles the sources at every start, and
 * a loaded two-core machine can stretch its half a second to many seconds.
 */
export const STARTUP_MS = 30_000;

export { hrNow, uniqueGroup, waitFor } from '@understudy/testkit';

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliResult extends CliExit {
  stdout: string;
  stderr: string;
}

const running = new Set<Cli>();

/** A real `understudy` process running the TypeScript sources. */
export class Cli {
  readonly child: ChildProcess;
  readonly exited: Promise<CliExit>;
  stdout = '';
  stderr = '';
  /** hrNow() when the process exited. */
  exitedAt: number | undefined;
  readonly #closed: Promise<void>;

  constructor(readonly args: readonly string[]) {
    this.child = spawn(process.execPath, [...runTypeScript(), BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, REDIS_URL: undefined, NO_COLOR: '1' },
    });
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    // A killed process has exitCode null and signalCode set: wait for 'exit', not a code.
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitedAt = hrNow();
        running.delete(this);
        resolve({ code, signal });
      });
    });
    this.#closed = new Promise((resolve) => this.child.once('close', () => resolve()));
    running.add(this);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.exitedAt === undefined;
  }

  /** Sends a signal; returns hrNow() just before it was sent. */
  signal(signal: NodeJS.Signals): number {
    const at = hrNow();
    this.child.kill(signal);
    return at;
  }

  /** Waits for the process to exit, then returns its code and output. */
  async result(timeoutMs = STARTUP_MS + 10_000): Promise<CliResult> {
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      this.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `understudy ${this.args.join(' ')} did not exit within ${timeoutMs} ms\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
              ),
            ),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    // 'exit' can come before the last output; 'close' waits for it, unless a program that
    // inherited the pipes still holds them (the orphan checks catch that case).
    await Promise.race([this.#closed, sleep(500)]);
    return { ...exit, stdout: this.stdout, stderr: this.stderr };
  }

  /** Waits until stderr matches `pattern` (the wrapper's progress lines); fails if the process ends first. */
  waitForStderr(pattern: RegExp, timeoutMs = STARTUP_MS): Promise<true> {
    return waitFor(
      () => {
        if (pattern.test(this.stderr)) return true;
        if (!this.running) throw new Error(`understudy ${this.args.join(' ')} exited first:\n${this.stderr}`);
        return false;
      },
      () => `stderr of understudy ${this.args.join(' ')} to match ${pattern}; it printed:\n${this.stderr}`,
      timeoutMs,
      10,
    );
  }

  /** Complete stdout lines so far. */
  lines(): string[] {
    return this.stdout.split('\n').slice(0, -1);
  }
}

/** Runs `understudy` to completion. */
export function understudy(args: readonly string[], timeoutMs = STARTUP_MS + 10_000): Promise<CliResult> {
  return new Cli(args).result(timeoutMs);
}

/** SIGKILLs every `understudy` process a test left running and waits until they are gone. */
export async function killLeftoverClis(): Promise<Cli[]> {
  const leftovers = [...running];
  for (const cli of leftovers) cli.signal('SIGKILL');
  await Promise.all(leftovers.map((cli) => cli.exited));
  return leftovers;
}

/** Whether a process exists and is not a zombie (a zombie has exited; it only awaits its parent). */
/**
 * A Redis of the test file's own, started before its tests and stopped after them, and the
 * members the tests join in this process: each test's members leave after it, and any CLI it
 * started is killed.
 */
export function fileFixture(): { server: () => RedisServer; members: Member[] } {
  let server: RedisServer | undefined;
  const members: Member[] = [];
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await Promise.allSettled(members.splice(0).map((m) => m.leave()));
    await killLeftoverClis();
  });
  return {
    server: () => {
      if (!server) throw new Error("the file's Redis is ready only inside tests and hooks");
      return server;
    },
    members,
  };
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Format: pid (comm) state ...; comm may contain spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Polls until `pid` is gone; returns hrNow() of the first poll that found it gone. */
export function whenDead(pid: number, timeoutMs = 5000): Promise<number> {
  return waitFor(() => !isAlive(pid) && hrNow(), `process ${pid} to end`, timeoutMs, 2);
}

/**
 * Live processes of a group: wrappers given `--group <group>` on their command line, and the
 * programs they started (UNDERSTUDY_GROUP=<group> in their environment).
 */
export function processesOfGroup(group: string): number[] {
  const inEnvironment = `\0UNDERSTUDY_GROUP=${group}\0`;
  const onCommandLine = `\0--group\0${group}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environment = `\0${readFileSync(`/proc/${entry}/environ`, 'latin1')}`;
      const commandLine = `\0${readFileSync(`/proc/${entry}/cmdline`, 'latin1')}`;
      if ((environment.includes(inEnvironment) || commandLine.includes(onCommandLine)) && isAlive(Number(entry))) {
        pids.push(Number(entry));
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

export interface ProgramStart {
  label: string;
  pid: number;
  /** hrNow() when the program had started. */
  startedAt: number;
  epoch: string | undefined;
  group: string | undefined;
  memberId: string | undefined;
}

export interface ProgramTerm {
  label: string;
  pid: number;
  /** hrNow() when the program received SIGTERM. */
  at: number;
}

/** A directory where fixture programs record their starts and SIGTERMs. */
export class ProgramRecords {
  readonly dir = mkdtempSync(join(tmpdir(), 'understudy-cli-test-'));

  /** `node program.mjs <dir> <label> ...flags`, for after `--`. */
  command(label: string, ...flags: string[]): string[] {
    return [process.execPath, PROGRAM, this.dir, label, ...flags];
  }

  #read<T>(suffix: string): T[] {
    return readdirSync(this.dir)
      .filter((name) => name.endsWith(suffix))
      .map((name) => JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as T);
  }

  starts(label?: string): ProgramStart[] {
    return this.#read<ProgramStart>('.start.json')
      .filter((s) => label === undefined || s.label === label)
      .sort((a, b) => a.startedAt - b.startedAt);
  }

  terms(label?: string): ProgramTerm[] {
    return this.#read<ProgramTerm>('.term.json').filter((t) => label === undefined || t.label === label);
  }

  /** Waits for the first start of the program labelled `label`. */
  waitForStart(label: string, timeoutMs = 10_000): Promise<ProgramStart> {
    return waitFor(() => this.starts(label)[0], `program ${label} to start`, timeoutMs);
  }

  waitForTerm(label: string, timeoutMs = 10_000): Promise<ProgramTerm> {
    return waitFor(() => this.terms(label)[0], `program ${label} to receive SIGTERM`, timeoutMs);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The timestamp writer (see its header). */
export const WRITER = join(import.meta.dirname, 'fixtures/writer.mjs');

/** One run of the writer: a process, from its first write to its last. */
export interface WriterRun {
  label: string;
  pid: number;
  first: number;
  last: number;
}

/** The writer processes that wrote to `file`, each with its first and last write. */
export function writerRuns(file: string): WriterRun[] {
  const runs = new Map<string, WriterRun>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  for (const line of text.split('\n')) {
    const [label, pid, at] = line.split(' ');
    if (!label || !pid || !at) continue;
    const time = Number(at);
    const run = runs.get(pid);
    if (run) {
      run.first = Math.min(run.first, time);
      run.last = Math.max(run.last, time);
    } else runs.set(pid, { label, pid: Number(pid), first: time, last: time });
  }
  return [...runs.values()].sort((a, b) => a.first - b.first);
}

/**
 * How long writers of different labels (members) both wrote, in ms: the sum over every pair
 * of runs with different labels of the overlap of their [first, last] spans. 0 means the
 * program never ran on two members at once.
 */
export function overlapMs(runs: readonly WriterRun[]): number {
  let total = 0;
  for (const [i, a] of runs.entries()) {
    for (const b of runs.slice(i + 1)) {
      if (a.label === b.label) continue;
      total += Math.max(0, Math.min(a.last, b.last) - Math.max(a.first, b.first));
    }
  }
  return total;
}
