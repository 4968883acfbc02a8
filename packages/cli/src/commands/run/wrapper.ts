import {
  describeGroup,
  joinGroup,
  MEMBER_DEFAULTS,
  type Member,
  MemberExistsError,
  ParamMismatchError,
} from '@understudy/core';
import { CliError, ExitCode, exitCodeOf, messageOf } from '../../exit.js';
import { shown } from '../../format.js';
import type { MetricsEndpoint, MetricsOptions } from '../../metrics.js';
import { type ConnectionOptions, groupSources, redisSource } from '../../options.js';
import { Child, describeExit, shellExitCode } from './child.js';

/** The options of `understudy run`. */
export interface RunOptions extends ConnectionOptions, MetricsOptions {
  group: string;
  weight: number;
  activeGoal?: number;
  heartbeat: number;
  preparation: number;
  activation: number;
  stopTimeout?: number;
  prepareCmd?: string;
  memberId?: string;
  quiet?: boolean;
}

/**
 * How long before the lease deadline the program must be gone (SIGKILL sent): room for the
 * kill to take effect and for this process's timers to run late.
 */
export const KILL_MARGIN_MS = 100;

/** What `run` checked and set up before joining. */
export interface Launch {
  command: string;
  args: string[];
  stopTimeout: number;
  options: RunOptions;
  say: (message: string) => void;
  endpoint: MetricsEndpoint | undefined;
}

const LEAVE_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * One `understudy run`: a member, and the program it runs while active. The program may run
 * only while the member holds a lease with time left to stop it: it is started on activate,
 * and stopped on deactivate or when the lease deadline comes so near that a stop begun later
 * could outlast it (then started again if a renewal comes back while still active).
 */
export class Wrapper {
  readonly #launch: Launch;
  #member: Member | undefined;
  #child: Child | undefined;
  #prepare: Child | undefined;
  /** The epoch the member holds, while active. */
  #epoch: number | undefined;
  #leaseDeadline = Number.NEGATIVE_INFINITY;
  #guard: NodeJS.Timeout | undefined;
  #finished = false;
  #signals = 0;
  #memberError: Error | undefined;
  /** The join finished: leaving is possible (a leave during the join would race it). */
  #joined = false;
  readonly #abort = new AbortController();
  #resolveExit: (code: number) => void = () => undefined;
  readonly #exitCode = new Promise<number>((resolve) => {
    this.#resolveExit = resolve;
  });

  constructor(launch: Launch) {
    this.#launch = launch;
  }

  get #say() {
    return this.#launch.say;
  }

  async run(): Promise<number> {
    const { options } = this.#launch;
    // Signals count from the start: one that comes during the join leaves right after it.
    for (const signal of LEAVE_SIGNALS) process.on(signal, this.#onSignal);
    process.on('SIGTSTP', this.#onSuspend);
    try {
      let member: Member;
      try {
        member = await this.#join();
      } catch (error) {
        if (this.#abort.signal.aborted && !(error instanceof CliError)) return ExitCode.ok;
        throw error;
      }
      this.#joined = true;
      this.#launch.endpoint?.metrics.instrumentMember(member);
      if (this.#launch.endpoint) this.#say(`serving metrics at ${this.#launch.endpoint.url}`);
      this.#say(`joined group ${options.group} as ${shown(member.id)} (weight ${options.weight})`);
      if (this.#abort.signal.aborted) void this.#finish(ExitCode.ok);
      else await this.#explainWait(member);
      return await this.#exitCode;
    } finally {
      clearTimeout(this.#guard);
      for (const signal of LEAVE_SIGNALS) process.off(signal, this.#onSignal);
      process.off('SIGTSTP', this.#onSuspend);
    }
  }

  /**
   * Joins with the group's own goal unless --active-goal was given: the group's refusal names
   * its goal, and the join is tried again with it (no read needed, so it works under the
   * member's ACL user; a goal that changes meanwhile is followed the same way).
   */
  async #join(): Promise<Member> {
    const { options } = this.#launch;
    let activeGoal = options.activeGoal ?? MEMBER_DEFAULTS.activeGoal;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#start(activeGoal);
      } catch (error) {
        const follow = options.activeGoal === undefined && attempt < 3;
        if (follow && error instanceof ParamMismatchError && error.field === 'activeGoal') {
          activeGoal = error.current;
          continue;
        }
        throw explain(error, options);
      }
    }
  }

  async #start(activeGoal: number): Promise<Member> {
    const { options } = this.#launch;
    const member = await joinGroup({
      redis: groupSources(options),
      prefix: options.prefix,
      group: options.group,
      weight: options.weight,
      activeGoal,
      heartbeatInterval: options.heartbeat,
      preparationInterval: options.preparation,
      activationInterval: options.activation,
      signal: this.#abort.signal,
      ...(options.memberId ? { memberId: options.memberId } : {}),
      onPrepare: () => this.#onPrepare(),
      onActivate: ({ epoch, reason }) => this.#onActivate(epoch, reason),
      onDeactivate: ({ reason }) => this.#onDeactivate(reason),
      // Attached before the join, so that its first renewal event, the join's, is heard: the
      // lease guard needs its deadline.
      listeners: {
        renewal: ({ leaseDeadline }) => {
          this.#leaseDeadline = leaseDeadline;
          this.#guardLease();
        },
        advisory: (advisory) => this.#say(`${advisory.code}: ${shown(advisory.message)}`),
        error: (error) => {
          this.#memberError = error;
        },
        state: ({ to }) => {
          if (to === 'standby') this.#say('standing by');
          // The member ended without being asked to (a rejoin refused, say): so does the wrapper.
          if (to === 'left' && this.#joined && !this.#finished) {
            const error = this.#memberError && explain(this.#memberError, options);
            this.#say(`the member left the group${error ? `: ${shown(messageOf(error))}` : ''}`);
            void this.#finish(error ? exitCodeOf(error) : ExitCode.failure);
          }
        },
      },
    });
    // The member delivers its first actions only after joinGroup() resolved: its handlers see it here.
    this.#member = member;
    return member;
  }

  /** The first member of a new group (or of one whose state was lost) waits in quarantine: say so. */
  async #explainWait(member: Member): Promise<void> {
    const { options } = this.#launch;
    // describeGroup reads one Redis: in quorum mode there is no single state to explain from.
    if (member.state !== 'standby' || options.redisQuorum) return;
    try {
      const snapshot = await describeGroup({
        redis: redisSource(options),
        prefix: options.prefix,
        group: options.group,
      });
      if (snapshot.quarantineRemainingMs > 0 && member.state === 'standby') {
        this.#say(
          `no member is activated for ${(snapshot.quarantineRemainingMs / 1000).toFixed(1)} s: the group is new or ` +
            'its state was lost, and a program started under an earlier lease may still run until that lease has surely lapsed',
        );
      }
    } catch {
      // only an explanation: the member itself reports trouble with Redis
    }
  }

  // ---- the program -----------------------------------------------------------------------

  async #onActivate(epoch: number, reason: string): Promise<void> {
    this.#epoch = epoch;
    if (this.#finished) return; // leaving: the leave deactivates at once
    this.#say(`active (epoch ${epoch}, ${reason}): starting ${this.#launch.command}`);
    await this.#startProgram(epoch);
  }

  async #startProgram(epoch: number): Promise<void> {
    const { command, args } = this.#launch;
    let started: Child;
    try {
      started = await Child.start(command, args, this.#environment(epoch));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code === 'ENOENT' ? ExitCode.notFound : ExitCode.cannotExecute;
      this.#say(`cannot start ${command}: ${(error as Error).message}`);
      void this.#finish(code);
      throw error;
    }
    this.#child = started;
    this.#guardLease();
    void started.exited.then((result) => {
      if (started.stopping) return;
      this.#say(`${command} ended with ${describeExit(result)} while active; leaving the group`);
      // What it left running in its process group goes before the member leaves.
      void this.#stopProgram(started);
      void this.#finish(shellExitCode(result));
    });
  }

  async #onDeactivate(reason: string): Promise<void> {
    this.#epoch = undefined;
    const running = this.#child;
    if (!running) return;
    if (!running.stopping) this.#say(`deactivating (${reason}): stopping ${this.#launch.command}`);
    const result = await this.#stopProgram(running);
    this.#say(`${this.#launch.command} stopped (${describeExit(result)})`);
  }

  /** SIGTERM, SIGKILL after the grace or KILL_MARGIN_MS before the lease deadline, whichever is first. */
  async #stopProgram(running: Child) {
    const stopped = running.stop(this.#launch.stopTimeout);
    running.killBy(this.#leaseDeadline - KILL_MARGIN_MS);
    // `#child` stays set while it stops, so a second signal can still kill it.
    const result = await stopped;
    if (this.#child === running) this.#child = undefined;
    return result;
  }

  /**
   * Keeps the program inside the lease: once the deadline is nearer than the stop budget, the
   * program is stopped (a renewal may come back: then it is started again, same epoch).
   */
  #guardLease(): void {
    clearTimeout(this.#guard);
    const { stopTimeout, command } = this.#launch;
    const stopAt = this.#leaseDeadline - stopTimeout - KILL_MARGIN_MS;
    const running = this.#child;
    if (running && !running.stopping) {
      const delay = stopAt - performance.now();
      if (delay > 0) {
        this.#guard = setTimeout(() => this.#guardLease(), delay);
        return;
      }
      this.#say(`no renewal for too long: stopping ${command} now, so that it is gone before the lease can lapse`);
      void this.#stopProgram(running);
      return;
    }
    const epoch = this.#epoch;
    if (!running && epoch !== undefined && !this.#finished && this.#member?.state === 'active') {
      if (stopAt - performance.now() > this.#launch.options.heartbeat) {
        this.#say(`the lease is renewed again (epoch ${epoch}): starting ${command} again`);
        void this.#startProgram(epoch).catch(() => undefined);
      }
    }
  }

  // ---- the prepare command ---------------------------------------------------------------

  async #onPrepare(): Promise<void> {
    const { prepareCmd, preparation } = this.#launch.options;
    if (!prepareCmd || this.#finished) return;
    this.#say(`preparing: ${prepareCmd}`);
    const started = await Child.shell(prepareCmd, this.#environment());
    this.#prepare = started;
    const timer = setTimeout(() => {
      this.#say(`the prepare command did not end within --preparation ${preparation} ms: killing it`);
      void started.kill();
    }, preparation);
    try {
      const result = await started.exited;
      // It is over: nothing it started may run on in its process group.
      await started.kill();
      if (result.code !== 0) this.#say(`the prepare command ended with ${describeExit(result)}`);
    } finally {
      clearTimeout(timer);
      if (this.#prepare === started) this.#prepare = undefined;
    }
  }

  // ---- leaving ---------------------------------------------------------------------------

  #environment(epoch?: number): NodeJS.ProcessEnv {
    const { options } = this.#launch;
    return {
      ...process.env,
      UNDERSTUDY_GROUP: options.group,
      UNDERSTUDY_MEMBER_ID: this.#member?.id ?? options.memberId ?? '',
      ...(epoch === undefined ? {} : { UNDERSTUDY_EPOCH: String(epoch) }),
    };
  }

  async #finish(code: number): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    void this.#prepare?.kill();
    await this.#member?.leave();
    this.#resolveExit(code);
  }

  #onSignal = (signal: NodeJS.Signals): void => {
    this.#signals += 1;
    if (this.#signals === 1) {
      this.#say(`${signal}: leaving the group`);
      this.#abort.abort();
      if (this.#joined) void this.#finish(ExitCode.ok);
      return;
    }
    this.#say(`${signal} again: stopping ${this.#launch.command} now`);
    void this.#prepare?.kill();
    const running = this.#child;
    const gone = running ? running.kill() : Promise.resolve();
    void Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 1000))]).then(() =>
      this.#resolveExit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGHUP' ? 1 : 15)),
    );
  };

  /**
   * Ctrl-Z would stop this wrapper, not the program (it runs in a session of its own): the
   * lease would lapse while the program ran on, and another member would start a second copy.
   */
  #onSuspend = (): void => {
    this.#say(
      'understudy run cannot be suspended (Ctrl-Z): the program would keep running after the lease lapsed; ' +
        'press Ctrl-C to leave the group',
    );
  };
}

/** A join error in the command line's terms: flags, not library fields, and what to do. */
function explain(error: unknown, options: RunOptions): unknown {
  if (error instanceof ParamMismatchError) {
    const flag = error.field === 'activeGoal' ? '--active-goal' : '--activation';
    const what =
      error.field === 'activeGoal'
        ? `give --active-goal ${error.current} or leave --active-goal out (run then follows the group's goal), ` +
          `or change the group's goal first: understudy group set ${options.group} --active-goal <n>`
        : `give --activation ${error.current}: a group keeps its activation interval until every member has left`;
    return new CliError(
      `group ${options.group} runs with ${flag} ${error.current}; this member asked for ${error.requested}: ${what}`,
      ExitCode.paramMismatch,
    );
  }
  if (error instanceof MemberExistsError) {
    return new CliError(
      `--member-id ${shown(error.memberId)}: a live member of group ${options.group} already uses it ` +
        `(another wrapper, or a crashed one whose lease has not lapsed yet: wait --activation ${options.activation} ms); ` +
        'choose another id',
      ExitCode.failure,
    );
  }
  return error;
}
