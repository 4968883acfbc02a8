import type { ChaosProxy, LinkDirection } from '../chaos/proxy.js';
import type { RedisQuorum } from '../redis/quorum.js';

/** Where faults are recorded: `fault` when one starts, `heal` when it ends (ScenarioRun is one). */
export interface FaultLog {
  fault(description: string, inject?: () => unknown): Promise<void>;
  heal(description: string, lift?: () => unknown): Promise<void>;
  /** Waits (a scenario's sleep ends when the run is aborted). */
  sleep(ms: number): Promise<void>;
}

/** Which links a link fault acts on: those of `members` (ids) only, or every live member's. */
export interface LinkScope {
  members?: readonly string[];
}

/**
 * The fault kinds of quorum mode (DESIGN §9) over K independent servers: a server killed,
 * frozen or restarted empty (one, or a majority at once), one link slowed (a far region) or
 * cut one way or both. Each is recorded in `log` — `fault` when it starts, `heal` when it
 * ends — so the checker suspends its liveness rules meanwhile. A fault that lasts (a dead or
 * frozen server, a slow or cut link) stays open until its counterpart (`restartServer`,
 * `thawServer`, `healLink`) or the harness's `healAll`. Indexes are 0-based.
 */
export class QuorumFaults {
  readonly #quorum: RedisQuorum;
  readonly #log: FaultLog;
  readonly #linksTo: (server: number, members?: readonly string[]) => readonly ChaosProxy[];
  /** Open faults by server: what `restartServer`, `thawServer` and `healLink` end. */
  readonly #openServer = new Map<number, string[]>();
  readonly #openLink = new Map<number, string[]>();

  constructor(
    quorum: RedisQuorum,
    log: FaultLog,
    /** The proxies between members and server `i` (in a scenario: each member's own). */
    linksTo: (server: number, members?: readonly string[]) => readonly ChaosProxy[],
  ) {
    this.#quorum = quorum;
    this.#log = log;
    this.#linksTo = linksTo;
  }

  get quorum(): RedisQuorum {
    return this.#quorum;
  }

  /** SIGKILL of server `i`: it stays down until `restartServer(i)`. */
  async killServer(i: number): Promise<void> {
    await this.#open(this.#openServer, i, `SIGKILL ${this.#name(i)}`, () => this.#quorum.kill(i));
  }

  /** SIGKILL of a majority (the first Q, or `indexes`) at once: down until `restartServers`. */
  async killMajority(indexes?: readonly number[]): Promise<number[]> {
    const chosen = this.#quorum.majorityIndexes(indexes);
    await Promise.all(chosen.map((i) => this.killServer(i)));
    return chosen;
  }

  /** SIGSTOP of server `i`: its sockets stay open, nothing is answered, until `thawServer(i)`. */
  async freezeServer(i: number): Promise<void> {
    await this.#open(this.#openServer, i, `SIGSTOP ${this.#name(i)}`, () => this.#quorum.pause(i));
  }

  /** SIGCONT of server `i`; ends its freeze. */
  async thawServer(i: number): Promise<void> {
    await this.#close(this.#openServer, i, () => this.#quorum.resume(i));
  }

  /** SIGSTOP of server `i` for `ms`, then SIGCONT. */
  async pauseServer(i: number, ms: number): Promise<void> {
    await this.freezeServer(i);
    try {
      await this.#log.sleep(ms);
    } finally {
      await this.thawServer(i);
    }
  }

  /**
   * Brings server `i` back on the same port — empty by default (`empty: false` keeps what a
   * running server saved; a killed one has nothing saved) — and ends its open faults.
   */
  async restartServer(i: number, { empty = true }: { empty?: boolean } = {}): Promise<void> {
    const restart = () => this.#quorum.server(i).restart({ keepData: !empty });
    if (this.#openServer.has(i)) {
      await this.#close(this.#openServer, i, restart);
      return;
    }
    // Nothing open: the restart is a fault of its own.
    const description = `${this.#name(i)} restarted${empty ? ' empty' : ''}`;
    await this.#log.fault(description, restart);
    await this.#log.heal(description);
  }

  /** Brings several servers back at once (a majority that was lost returns). */
  async restartServers(indexes: readonly number[], options: { empty?: boolean } = {}): Promise<void> {
    await Promise.all(indexes.map((i) => this.restartServer(i, options)));
  }

  /** Server `i` SIGKILLed and started again empty on the same port, as one fault. */
  async restartEmpty(i: number): Promise<void> {
    const description = `${this.#name(i)} restarted empty`;
    await this.#log.fault(description, () => this.#quorum.restartEmpty(i));
    await this.#log.heal(description);
  }

  /** A majority (the first Q, or `indexes`) down at once and back empty, as one fault. */
  async restartMajorityEmpty(indexes?: readonly number[]): Promise<number[]> {
    const chosen = this.#quorum.majorityIndexes(indexes);
    const description = `servers ${chosen.join(', ')} (a majority of ${this.#quorum.count}) restarted empty`;
    await this.#log.fault(description, () => this.#quorum.restartMajorityEmpty(chosen));
    await this.#log.heal(description);
    return chosen;
  }

  /** The links to server `i` slowed by `delayMs ± jitterMs` per chunk (`direction`, default both), until `healLink(i)`. */
  async slowLink(
    i: number,
    delayMs: number,
    jitterMs = 0,
    { direction = 'both', members }: LinkScope & { direction?: LinkDirection } = {},
  ): Promise<void> {
    const links = this.#links(i, members);
    const description = `links to ${this.#name(i)}${scope(members)} delayed ${delayMs} ± ${jitterMs} ms ${direction}`;
    await this.#open(this.#openLink, i, description, () => {
      for (const link of links) link.setDelay(delayMs, jitterMs, direction);
    });
  }

  /** The links to server `i` blackholed in `direction` (default both), until `healLink(i)`. */
  async blackholeLink(i: number, direction: LinkDirection = 'both', { members }: LinkScope = {}): Promise<void> {
    const links = this.#links(i, members);
    const description = `links to ${this.#name(i)}${scope(members)} blackholed ${direction}`;
    await this.#open(this.#openLink, i, description, () => {
      for (const link of links) link.blackhole(true, direction);
    });
  }

  /**
   * Every link to server `i` healed (a connection that lost bytes is reset first: a RESP stream
   * with a gap would pair replies with the wrong commands); ends the link faults of server `i`.
   */
  async healLink(i: number): Promise<void> {
    await this.#close(this.#openLink, i, () => {
      for (const link of this.#links(i)) {
        if (link.blackholed) link.reset();
        link.heal();
      }
    });
  }

  /** @internal The harness healed everything (`healAll`) and recorded the heals: nothing is open here any more. */
  forgetOpen(): void {
    this.#openServer.clear();
    this.#openLink.clear();
  }

  #links(i: number, members?: readonly string[]): readonly ChaosProxy[] {
    this.#quorum.server(i);
    return this.#linksTo(i, members);
  }

  #name(i: number): string {
    return `server ${i} (port ${this.#quorum.server(i).port})`;
  }

  async #open(open: Map<number, string[]>, i: number, description: string, inject: () => unknown): Promise<void> {
    open.set(i, [...(open.get(i) ?? []), description]);
    await this.#log.fault(description, inject);
  }

  async #close(open: Map<number, string[]>, i: number, lift: () => unknown): Promise<void> {
    const descriptions = open.get(i) ?? [];
    open.delete(i);
    await lift();
    for (const description of descriptions) await this.#log.heal(description);
  }
}

function scope(members: readonly string[] | undefined): string {
  return members === undefined ? '' : ` from ${members.join(', ')}`;
}

/**
 * A member clock's rate for `MemberSpec.clockRate`: `multiple` × ρ slow or fast. 0.9 stays
 * within the model (the suite's clock-drift scenario); 1 is at its edge, still inside; above 1
 * is beyond ρ — the checker marks what goes wrong then as outside the model (`breaches`).
 */
export function clockRateAt(rho: number, multiple: number, way: 'slow' | 'fast'): number {
  if (!Number.isFinite(rho) || rho <= 0 || rho >= 1) throw new RangeError(`ρ must be in (0, 1), got ${rho}`);
  if (!Number.isFinite(multiple) || multiple < 0 || multiple * rho >= 1) {
    throw new RangeError(`the drift multiple must be ≥ 0 and leave a positive rate, got ${multiple} × ${rho}`);
  }
  return way === 'slow' ? 1 - multiple * rho : 1 + multiple * rho;
}
