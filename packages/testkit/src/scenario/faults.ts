import type { RedisServer } from '../redis/types.js';
import type { MemberProcess, ProcessArgs } from './member-process.js';
import { QueueRun } from './queue-run.js';
import { QuorumFaults } from './quorum-faults.js';
import { dataServers } from './topology.js';

/**
 * What a scenario's `run` works with: the servers and members of `RunCore`, the queue workers
 * of `QueueRun`, and the faults.
 * Every fault is recorded as `fault` when it starts and `heal` when it ends, in the harness's
 * own history file; `healAll` ends those still open.
 */
export class ScenarioRun extends QueueRun {
  readonly #openFaults: string[] = [];
  #faultCount = 0;
  #quorumFaults: QuorumFaults | undefined;

  /**
   * The fault kinds of a `quorum` scenario: servers killed, frozen or restarted empty (one or
   * a majority), the members' links to one server slowed or cut one way (`QuorumFaults`).
   */
  get quorumFaults(): QuorumFaults {
    this.#quorumFaults ??= new QuorumFaults(this.quorum, this, (i, members) => this.linksTo(i, members));
    return this.#quorumFaults;
  }

  /** Faults injected so far. */
  get faultCount(): number {
    return this.#faultCount;
  }

  /** Records the start of a fault, then injects it. */
  async fault(description: string, inject: () => unknown = () => undefined): Promise<void> {
    this.recorder.record({ type: 'fault', fault: description });
    this.#faultCount += 1;
    this.#openFaults.push(description);
    this.log(`  fault: ${description}`);
    await inject();
  }

  /** Lifts a fault, then records its end. */
  async heal(description: string, lift: () => unknown = () => undefined): Promise<void> {
    await lift();
    const index = this.#openFaults.indexOf(description);
    if (index !== -1) this.#openFaults.splice(index, 1);
    this.recorder.record({ type: 'heal', fault: description });
  }

  /** A fault for `ms`, then its heal. */
  async during(description: string, ms: number, inject: () => unknown, lift: () => unknown): Promise<void> {
    await this.fault(description, inject);
    try {
      await this.sleep(ms);
    } finally {
      await this.heal(description, lift);
    }
  }

  /** SIGKILL; `killed` is recorded once the process is gone, so nothing it wrote comes after it. */
  async kill(member: MemberProcess<ProcessArgs>): Promise<void> {
    const description = `SIGKILL ${member.id}`;
    await this.fault(description);
    await this.killNow(member);
    await this.heal(description);
  }

  /** SIGSTOP for `ms`, then SIGCONT. */
  pause(member: MemberProcess<ProcessArgs>, ms: number): Promise<void> {
    return this.during(
      `SIGSTOP ${member.id} ${Math.round(ms)} ms`,
      ms,
      () => member.signal('SIGSTOP'),
      () => member.signal('SIGCONT'),
    );
  }

  /** Blocks the member's event loop for `ms` (an active member: inside its next piece of work). */
  async stall(member: MemberProcess, ms: number): Promise<void> {
    const description = `stall ${member.id} ${Math.round(ms)} ms`;
    const before = member.reported('stall-end').length;
    await this.fault(description, () => member.send({ cmd: 'stall', ms: Math.round(ms) }));
    try {
      await member.until(
        () => member.reported('stall-end').length > before || !member.running,
        'the stall to end',
        ms + 10 * this.A,
        this.signal,
      );
    } finally {
      await this.heal(description);
    }
  }

  /** The group's announcement channel (DESIGN §4 `…:events`). */
  get channel(): string {
    return `understudy:${this.groupSlotKey}:events`;
  }

  /** The name of one of the group's keys (`config`, `members`, `leases`, `rank`, `slots`, `log`). */
  key(kind: string): string {
    return `understudy:${this.groupSlotKey}:${kind}`;
  }

  /** Publishes a message on the group's channel as an administrator: what any publisher could send. */
  announce(message: string): Promise<string> {
    return this.admin('SPUBLISH', this.channel, message);
  }

  /** Runs a command as an administrator on the server that holds the group now (not through any member's link). */
  async admin(...args: string[]): Promise<string> {
    return (await this.master()).admin(...args);
  }

  /**
   * Heals every link and resumes every paused server and stopped member; ends every open
   * fault. A single Redis that is down is restarted empty; a dead node of a Sentinel set or
   * Cluster stays dead (its replica took over).
   */
  async healAll(): Promise<void> {
    for (const link of this.allLinks()) {
      // A quorum member's link that lost bytes is reset as it heals, like a server-side link below.
      if (this.topology.kind === 'quorum' && link.blackholed) link.reset();
      link.heal();
    }
    for (const server of dataServers(this.topology)) if (server.paused) await server.resume();
    // Quorum: a server that is down comes back empty, as a region that lost its disk.
    if (this.topology.kind === 'quorum') await this.topology.quorum.healAll();
    if (this.topology.kind === 'single' && !this.topology.server.running) {
      await this.topology.server.restart({ keepData: false });
    }
    // A server-side link that lost bytes is reset as it heals: a stream with a gap would not parse.
    if (this.topology.kind === 'replicated') this.topology.pair.mend();
    const setLinks = this.topology.kind === 'sentinel' ? this.topology.set.links : undefined;
    for (const link of setLinks ? [...setLinks.replication, setLinks.sentinels] : []) {
      if (link.blackholed) {
        link.reset();
        link.heal();
      }
    }
    for (const member of [...this.live(), ...this.liveWorkers()]) member.signal('SIGCONT');
    for (const description of [...this.#openFaults]) await this.heal(description);
    this.#quorumFaults?.forgetOpen();
  }

  /** @internal */
  async finish(): Promise<void> {
    await this.healAll();
    await Promise.all([...this.live(), ...this.liveWorkers()].map((m) => this.leave(m)));
  }

  /**
   * Promotes the replica of a `replicated` scenario (`REPLICAOF NO ONE`) and moves every
   * member's link to it, as a floating address would move; open connections are reset.
   */
  async promoteReplica(): Promise<RedisServer> {
    const promoted = await this.pair.promote();
    for (const links of this.links.values()) links.redis?.retarget(promoted);
    return promoted;
  }
}
