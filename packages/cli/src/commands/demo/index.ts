import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { forgetGroup, type GroupSnapshot, type Monitor, monitorGroup, readHistory } from '@understudy/core';
import { Command, Option } from 'commander';
import { createLogUpdate } from 'log-update';
import pc from 'picocolors';
import { CliError, ExitCode } from '../../exit.js';
import { headline, memberTable } from '../../format.js';
import { interruption } from '../../interrupt.js';
import type { Io } from '../../io.js';
import { integer } from '../../options.js';
import { tiedToParent } from '../../tie-to-parent.js';
import { type DemoRedis, demoRedis } from './redis.js';

interface DemoOptions {
  redis?: string;
  heartbeat: number;
  activation: number;
  pause: number;
}

const BIN = fileURLToPath(new URL('../../../bin/understudy.js', import.meta.url));
/** The demo's stand-in for a real service: it idles until stopped. */
const WORKLOAD = 'setInterval(() => {}, 1 << 30)';
/** Starting a member process (and its TypeScript, in development) can take seconds on a busy machine. */
const START_UP_MS = 60_000;
const CAST = [
  { name: 'alpha', weight: 300 },
  { name: 'bravo', weight: 200 },
  { name: 'charlie', weight: 100 },
] as const;

export function demoCommand(io: Io, exit: (code: number) => void): Command {
  return new Command('demo')
    .summary('a guided, timed show of failover and handover')
    .description(
      'A guided show of the whole model, unattended, in about half a minute: three members with ' +
        'different weights run as real `understudy run` processes; the active one is killed ' +
        '(failover), comes back (preemption) and leaves (graceful handover); every step is ' +
        'measured and summed up. Without --redis or REDIS_URL it uses a Redis on ' +
        'localhost:6379, else starts a temporary redis-server, else says how to get one.',
    )
    .addOption(new Option('--redis <url>', 'Redis to use').env('REDIS_URL'))
    .option('--heartbeat <ms>', 'heartbeat interval H of the demo members', integer(10), 200)
    .option('--activation <ms>', 'activation interval A of the demo members', integer(20), 1000)
    .option('--pause <ms>', 'time to watch the group between steps', integer(0), 1500)
    .action(async (options: DemoOptions) => {
      if (options.activation <= options.heartbeat) {
        throw new CliError(
          `--activation ${options.activation} must be greater than --heartbeat ${options.heartbeat}`,
          2,
        );
      }
      const redis = await demoRedis(options.redis);
      try {
        exit(await new Demo(redis, options, io).run());
      } finally {
        await redis.stop();
      }
    });
}

class Demo {
  readonly #group = `demo-${Date.now().toString(36)}`;
  /** SIGINT / SIGTERM: stop waiting, clean up, exit 130. */
  readonly #interruption = interruption();
  readonly #members = new Map<string, ChildProcess>();
  readonly #stderr = new Map<string, string>();
  #monitor: Monitor | undefined;
  #mostActive = 0;

  constructor(
    readonly redis: DemoRedis,
    readonly options: DemoOptions,
    readonly io: Io,
  ) {}

  #say(text: string): void {
    this.io.stdout(`${text}\n`);
  }

  #step(title: string): void {
    this.#say(`\n${this.io.isTTY ? pc.bold(title) : title}`);
  }

  async run(): Promise<number> {
    try {
      return await this.#show();
    } catch (error) {
      if (this.#interruption.signal.aborted) {
        this.#say('\ninterrupted: the demo members leave and the demo group is removed');
        return ExitCode.interrupted;
      }
      throw error;
    } finally {
      this.#interruption.dispose();
      await this.#cleanUp();
    }
  }

  async #show(): Promise<number> {
    const { heartbeat: h, activation: a } = this.options;
    this.#say(`understudy demo on ${this.redis.origin}, group ${this.#group}`);
    this.#say(`H = ${h} ms (heartbeat), A = ${a} ms (activation interval), active goal N = 1`);
    this.#monitor = await monitorGroup({ redis: this.redis.url, group: this.#group });
    this.#monitor.on('change', (s) => {
      this.#mostActive = Math.max(this.#mostActive, s.activeCount);
    });

    this.#step('1. Three members join: alpha (weight 300), bravo (200), charlie (100)');
    this.#say('   Each is `understudy run -- <program>`: the program runs only while its member is active.');
    this.#say(`   A new group waits one activation interval before anyone activates (an old active may still run).`);
    for (const { name, weight } of CAST) this.#start(name, weight);
    await this.#until((s) => s.members.length === CAST.length, 'the three members to join', START_UP_MS);
    await this.#until((s) => this.#activeIs(s, 'alpha'), 'alpha to become active', 3 * a + 5000);
    await this.#watch();

    this.#step('2. Crash: alpha is killed with SIGKILL');
    this.#say('   Nobody tells the group. alpha’s lease must lapse (A) before bravo may start: never two active.');
    const killedAt = performance.now();
    await this.#kill('alpha', 'SIGKILL');
    await this.#until((s) => this.#activeIs(s, 'bravo'), 'bravo to take over', 3 * a + 5000);
    const failover = performance.now() - killedAt;
    this.#say(`   bravo took over ${Math.round(failover)} ms after the kill.`);
    await this.#watch();

    this.#step('3. Comeback: alpha starts again with the highest weight');
    this.#say('   It preempts bravo: bravo deactivates first, then alpha activates (demote before promote).');
    this.#start('alpha', 300);
    await this.#until((s) => s.members.some((m) => m.id === 'alpha'), 'alpha to join', START_UP_MS);
    await this.#until((s) => this.#activeIs(s, 'alpha'), 'alpha to preempt bravo', 3 * a + 5000);
    const preemption = await this.#preemption();
    this.#say(
      `   alpha was active ${preemption.ms} ms after it joined (Redis time); bravo had stopped ` +
        `${preemption.stoppedBefore ? 'before' : 'AFTER'} that.`,
    );
    await this.#watch();

    this.#step('4. Graceful handover: alpha receives SIGTERM and leaves');
    const leftAt = performance.now();
    await this.#kill('alpha', 'SIGTERM');
    await this.#until((s) => this.#activeIs(s, 'bravo'), 'bravo to take over', 3 * a + 5000);
    const handover = performance.now() - leftAt;
    this.#say(`   bravo took over ${Math.round(handover)} ms after the SIGTERM: no lease to wait for.`);
    await this.#watch();

    const history = await readHistory({ redis: this.redis.url, group: this.#group, count: 1000 });
    const epochs = history.filter((t) => t.type === 'activate').map((t) => t.epoch ?? 0);
    const increasing = epochs.every((e, i) => i === 0 || e > (epochs[i - 1] ?? 0));
    this.#step('Summary');
    const rows = [
      ['crash failover', `${Math.round(failover)} ms`, `SIGKILL of the active → standby active (A = ${a} ms)`],
      ['preemption', `${preemption.ms} ms`, 'a higher weight joins → it is active, the old one stopped first'],
      ['graceful handover', `${Math.round(handover)} ms`, 'the active leaves → the next one is active'],
      ['most active at once', String(this.#mostActive), 'the goal is 1'],
      [
        'fencing epochs',
        String(epochs.length),
        increasing ? 'activations, each epoch larger than the one before' : 'activations, NOT increasing',
      ],
    ];
    const width = Math.max(...rows.map((r) => (r[0] ?? '').length));
    for (const [what, value, note] of rows) {
      this.#say(`  ${(what ?? '').padEnd(width)}  ${(value ?? '').padStart(8)}  ${note}`);
    }
    return this.#mostActive <= 1 && increasing && preemption.stoppedBefore ? 0 : 1;
  }

  /** From the transition log: alpha's join → its activation, and whether bravo stopped first. */
  async #preemption(): Promise<{ ms: number; stoppedBefore: boolean }> {
    const history = await readHistory({ redis: this.redis.url, group: this.#group, count: 1000 });
    const joined = history.findLastIndex((t) => t.type === 'join' && t.member === 'alpha');
    const rest = history.slice(joined);
    const activated = rest.findIndex((t) => t.type === 'activate' && t.member === 'alpha');
    const stopped = rest.findIndex((t) => t.type === 'deactivate' && t.member === 'bravo');
    return {
      ms: (rest[activated]?.time ?? Number.NaN) - (history[joined]?.time ?? Number.NaN),
      stoppedBefore: stopped !== -1 && activated !== -1 && stopped < activated,
    };
  }

  #activeIs(s: GroupSnapshot, name: string): boolean {
    const active = s.members.filter((m) => m.state === 'active');
    return active.length === 1 && active[0]?.id === name;
  }

  #start(name: string, weight: number): void {
    const { heartbeat: h, activation: a } = this.options;
    const args = [
      ...process.execArgv,
      BIN,
      'run',
      '--redis',
      this.redis.url,
      '--group',
      this.#group,
      '--member-id',
      name,
      '--weight',
      String(weight),
      '--heartbeat',
      String(h),
      '--activation',
      String(a),
      '--quiet',
      '--',
      process.execPath,
      '-e',
      WORKLOAD,
    ];
    // If the demo dies, its members get SIGTERM and leave (the kernel sends it: setpriv).
    const [file, argv] = tiedToParent(process.execPath, args, 'TERM');
    const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#stderr.set(name, '');
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr.set(name, `${this.#stderr.get(name) ?? ''}${chunk.toString()}`);
    });
    this.#members.set(name, child);
  }

  async #kill(name: string, signal: NodeJS.Signals): Promise<void> {
    const child = this.#members.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
    this.#members.delete(name);
  }

  /** Resolves once the monitor shows a state that satisfies `done`. */
  async #until(done: (s: GroupSnapshot) => boolean, what: string, timeoutMs: number): Promise<void> {
    const monitor = this.#monitor as Monitor;
    if (done(monitor.snapshot())) return;
    const interrupted = this.#interruption.signal;
    interrupted.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const finish = (error?: Error) => {
        clearTimeout(timer);
        monitor.off('change', onChange);
        interrupted.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(() => {
        const errors = [...this.#stderr].filter(([, text]) => text.trim()).map(([n, t]) => `${n}: ${t.trim()}`);
        finish(new CliError(`timed out waiting for ${what}${errors.length ? `\n${errors.join('\n')}` : ''}`));
      }, timeoutMs);
      const onChange = (s: GroupSnapshot) => {
        if (done(s)) finish();
      };
      const onAbort = () => finish(new CliError('interrupted', ExitCode.failure));
      monitor.on('change', onChange);
      interrupted.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Shows the group: live for a moment on a terminal, else one table. */
  async #watch(): Promise<void> {
    const monitor = this.#monitor as Monitor;
    const draw = () => {
      const s = monitor.snapshot();
      return [`   ${headline(s, this.io.isTTY)}`, ...memberTable(s, this.io.isTTY).map((l) => `     ${l}`)].join('\n');
    };
    if (!this.io.isTTY) {
      this.#say(draw());
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.options.pause, 200)));
      return;
    }
    const screen = createLogUpdate(process.stdout);
    const end = performance.now() + this.options.pause;
    while (performance.now() < end) {
      await monitor.refresh();
      screen(draw());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    screen.done();
  }

  async #cleanUp(): Promise<void> {
    await Promise.all([...this.#members.keys()].map((name) => this.#kill(name, 'SIGTERM')));
    await this.#monitor?.close();
    await forgetGroup({ redis: this.redis.url, group: this.#group }).catch(() => undefined);
  }
}
