import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ChaosProxy, startChaosProxy } from '../chaos/proxy.js';
import { HistoryRecorder, type NewHistoryEvent } from '../history/recorder.js';
import type { RedisCluster } from '../redis/cluster.js';
import type { RedisQuorum } from '../redis/quorum.js';
import type { ReplicatedPair } from '../redis/replicated.js';
import type { SentinelSet } from '../redis/sentinel.js';
import type { RedisServer } from '../redis/types.js';
import { REDIS_STATE_FILE } from './invariants.js';
import type { GroupIntervals } from './member-args.js';
import { type MemberExit, MemberProcess, type ProcessArgs, untilMembers } from './member-process.js';
import { Random } from './random.js';
import { type MemberConnection, masterFor, memberConnection, type ScenarioTopology } from './topology.js';
import type { MemberLinks, MemberSpec, RunOptions, ScenarioSpec, SpawnUntil } from './types.js';

/** How long a member process may take to start and join. */
export const CHILD_START_MS = 30_000;

/**
 * The servers and members of a scenario's run: its topology, the members' processes and
 * links, convergence, the seeded random source and the notes. `ScenarioRun` (faults.ts) adds
 * the faults; the harness records `killed` events (and the faults') in a history file of its own.
 */
export class RunCore {
  readonly scenario: ScenarioSpec;
  readonly random: Random;
  readonly params: GroupIntervals;
  readonly group: string;
  readonly topology: ScenarioTopology;
  readonly sinkRedis: RedisServer;
  readonly signal: AbortSignal;
  readonly durationMs: number | undefined;
  readonly notes = new Map<string, bigint>();
  /** The members a scenario aimed its faults at (`victim()`), for its `verify`. */
  readonly victims: string[] = [];
  /** Scenario criteria found unmet while it ran (`unmet()`). */
  readonly findings: string[] = [];
  readonly processes: MemberProcess[] = [];
  protected readonly links = new Map<MemberProcess<ProcessArgs>, MemberLinks>();
  /** Killed, left, or exited on their own: no longer in the group (or queue) as far as the harness knows. */
  protected readonly gone = new Set<MemberProcess<ProcessArgs>>();
  /** How many processes each member id has had: a restart with the same id writes new files. */
  readonly #incarnations = new Map<string, number>();
  protected readonly recorder: HistoryRecorder;
  readonly #dir: string;
  protected readonly options: RunOptions;
  readonly #sinkOffset: bigint;
  /** Set when the run shuts down: exits from then on are the harness's doing. */
  protected closed = false;

  /** @internal use `runScenario` */
  constructor(
    scenario: ScenarioSpec,
    options: RunOptions,
    servers: { topology: ScenarioTopology; sink: RedisServer; sinkOffset: bigint },
    dir: string,
    signal: AbortSignal,
  ) {
    this.scenario = scenario;
    this.random = new Random(options.seed);
    this.params = scenario.params;
    this.group = `chaos-${scenario.name}-${options.seed}`;
    this.topology = servers.topology;
    this.sinkRedis = servers.sink;
    this.#sinkOffset = servers.sinkOffset;
    this.signal = signal;
    this.durationMs = options.durationMs;
    this.options = options;
    this.#dir = dir;
    this.recorder = new HistoryRecorder(join(dir, 'harness.jsonl'), 'harness');
  }

  /** A, the activation interval (ms). */
  get A(): number {
    return this.params.activationInterval;
  }

  /** H, the heartbeat interval (ms). */
  get H(): number {
    return this.params.heartbeatInterval;
  }

  /** The checker's settling time A + H + slack (ms): how long the group may take to converge. */
  get settleMs(): number {
    return this.A + this.H + slackOf(this.scenario, this.options);
  }

  /** The master and replica of a `replicated` scenario. */
  get pair(): ReplicatedPair {
    if (this.topology.kind !== 'replicated')
      throw new Error(`${this.scenario.name} runs on ${this.topology.kind}, not replicated`);
    return this.topology.pair;
  }

  /** The single Redis of a `single` scenario. */
  get redis(): RedisServer {
    if (this.topology.kind !== 'single') {
      throw new Error(`${this.scenario.name} runs on ${this.topology.kind}: use run.master() for the group's server`);
    }
    return this.topology.server;
  }

  /** The Sentinel set of a `sentinel` scenario. */
  get sentinelSet(): SentinelSet {
    if (this.topology.kind !== 'sentinel')
      throw new Error(`${this.scenario.name} runs on ${this.topology.kind}, not sentinel`);
    return this.topology.set;
  }

  /** The Redis Cluster of a `cluster` scenario. */
  get cluster(): RedisCluster {
    if (this.topology.kind !== 'cluster')
      throw new Error(`${this.scenario.name} runs on ${this.topology.kind}, not cluster`);
    return this.topology.cluster;
  }

  /** The K independent servers of a `quorum` scenario. */
  get quorum(): RedisQuorum {
    if (this.topology.kind !== 'quorum')
      throw new Error(`${this.scenario.name} runs on ${this.topology.kind}, not quorum`);
    return this.topology.quorum;
  }

  /** The K servers of a `quorum` scenario, each of which holds the group; undefined for any other topology. */
  quorumServers(): readonly RedisServer[] | undefined {
    return this.topology.kind === 'quorum' ? this.topology.quorum.servers : undefined;
  }

  /** A key in the group's slot (its hash tag alone): where a Cluster keeps the group. */
  get groupSlotKey(): string {
    return `{${this.group}}`;
  }

  /** The server that holds the group's keys now: the single Redis, the Sentinels' master, or the master of the group's slot. */
  master(): Promise<RedisServer> {
    return masterFor(this.topology, this.groupSlotKey);
  }

  get historyDir(): string {
    return this.#dir;
  }

  log(line: string): void {
    this.options.log?.(line);
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.signal });
  }

  /** Notes a scenario criterion that is not met (checked while the scenario runs). */
  unmet(criterion: string): void {
    this.findings.push(criterion);
  }

  /** Records `member` as a target of the scenario's faults, and returns it. */
  victim<P extends MemberProcess<ProcessArgs>>(member: P): P {
    this.victims.push(member.id);
    return member;
  }

  /** Records an event in the harness's history file (a publish, an enqueue, the queue's final state). */
  record(event: NewHistoryEvent): void {
    this.recorder.record(event);
  }

  note(label: string): bigint {
    const t = process.hrtime.bigint();
    this.notes.set(label, t);
    return t;
  }

  // ---- members ---------------------------------------------------------------------------

  /** Members in the group as far as the harness knows: started, not killed, not left. */
  live(): MemberProcess[] {
    return this.processes.filter((m) => m.running && !this.gone.has(m));
  }

  /** The latest process of member `id`. */
  member(id: string): MemberProcess {
    const found = this.processes.findLast((m) => m.id === id);
    if (!found) throw new Error(`no member ${id} in this run`);
    return found;
  }

  /** Live members that last reported themselves active. */
  actives(): MemberProcess[] {
    return this.live().filter((m) => m.active);
  }

  /** The member's weight as far as it knows: the last one it confirmed (a request can fail). */
  weightOf(member: MemberProcess): number {
    return member.reported('weight').findLast((r) => r.ok)?.weight ?? member.args.weight;
  }

  /** The top min(N, live) live members by weight: who should be active. */
  expected(): MemberProcess[] {
    return this.live()
      .sort((a, b) => this.weightOf(b) - this.weightOf(a))
      .slice(0, this.params.activeGoal);
  }

  /** Whether exactly the expected members report themselves active. */
  converged(): boolean {
    const actives = new Set(this.actives().map((m) => m.id));
    const expected = this.expected();
    return expected.length === actives.size && expected.every((m) => actives.has(m.id));
  }

  /**
   * Waits until exactly the expected members have been active for 2H in a row (a report can
   * be a moment behind: a member that just lost its lease may not have said so yet); returns
   * how long that took (ms). `timeoutMs` bounds the convergence, as the checker's settling time
   * does; the 2H in a row come on top of it (counted inside it, a wait of the settling time gave
   * the group 2H less than L1 does, and a loaded machine's run failed on the wait, not the rule).
   */
  async untilConverged(timeoutMs: number): Promise<number> {
    const start = performance.now();
    let since: number | undefined;
    const steady = () => {
      if (!this.converged()) since = undefined;
      else since ??= performance.now();
      return since !== undefined && performance.now() - since >= 2 * this.H;
    };
    await untilMembers(this.processes, steady, 'the group to converge', timeoutMs + 2 * this.H, this.signal);
    return performance.now() - start;
  }

  /** Waits until `probe` holds, checked whenever a process of the run reports, and every 50 ms. */
  until(probe: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return untilMembers(this.reporters(), probe, what, timeoutMs, this.signal);
  }

  /** The processes whose reports `until` wakes on. */
  protected reporters(): MemberProcess<ProcessArgs>[] {
    return this.processes;
  }

  /**
   * Polls an asynchronous probe of the servers every 50 ms until it holds (a probe that throws
   * — a server that is down or frozen — counts as "not yet"); fails with `what` after
   * `timeoutMs`, or at once when the run is aborted.
   */
  async untilServers(probe: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await probe().catch(() => false))) {
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await this.sleep(50);
    }
  }

  /** The member's link to the group's Redis (single, replicated, proxied Sentinel: see `Scenario.topology`). */
  link(member: MemberProcess<ProcessArgs>): ChaosProxy {
    const link = this.#linksOf(member).redis;
    if (!link) throw new Error(`${member.id} has a link to each server of the quorum: use run.serverLinks(member)`);
    return link;
  }

  /** The member's links to each server of a quorum, in server order (quorum only). */
  serverLinks(member: MemberProcess<ProcessArgs>): readonly ChaosProxy[] {
    return this.#linksOf(member).servers;
  }

  /**
   * The links to server `i` of a quorum: every live member's, or those of `members` (ids) only.
   * What a slow or cut region means for the members it names.
   */
  linksTo(i: number, members?: readonly string[]): ChaosProxy[] {
    this.quorum.server(i); // a valid index of a quorum scenario
    return [...this.links]
      .filter(([member]) => !this.gone.has(member) && (members === undefined || members.includes(member.id)))
      .flatMap(([, links]) => links.servers.slice(i, i + 1));
  }

  /** Every proxy of every member, to whatever it leads. */
  protected allLinks(): ChaosProxy[] {
    return [...this.links.values()].flatMap((l) => [...(l.redis ? [l.redis] : []), ...l.sentinels, ...l.servers]);
  }

  /** The member's links to each Sentinel (a proxied Sentinel set only). */
  sentinelLinks(member: MemberProcess): readonly ChaosProxy[] {
    return this.#linksOf(member).sentinels;
  }

  #linksOf(member: MemberProcess<ProcessArgs>): MemberLinks {
    const links = this.links.get(member);
    if (!links)
      throw new Error(
        `${member.id} has no chaos proxy: members of this ${this.topology.kind} scenario connect directly`,
      );
    return links;
  }

  /** A member's own proxies, and how it connects through them; none where members connect directly. */
  protected async connect(): Promise<{ links: MemberLinks | undefined; url: string; connection: MemberConnection }> {
    const connection = memberConnection(this.topology);
    const proxy = (target: { host: string; port: number }) => startChaosProxy({ target });
    const topology = this.topology;
    if (topology.kind === 'single' || topology.kind === 'replicated') {
      const redis = await proxy(topology.kind === 'single' ? topology.server : topology.pair.primary);
      return { links: { redis, sentinels: [], servers: [] }, url: redis.url(), connection };
    }
    if (topology.kind === 'quorum') {
      const servers = await Promise.all(topology.quorum.servers.map(proxy));
      return {
        links: { redis: undefined, sentinels: [], servers },
        url: '',
        connection: { ...connection, nodes: servers.map((p) => `${p.host}:${p.port}`).join(',') },
      };
    }
    const setLinks = topology.kind === 'sentinel' ? topology.set.links : undefined;
    if (topology.kind === 'sentinel' && setLinks) {
      const { set } = topology;
      const first = set.servers[0] as RedisServer;
      const redis = await proxy(first);
      const sentinels = await Promise.all(set.sentinels.map(proxy));
      const at = (p: ChaosProxy) => `${p.host}:${p.port}`;
      return {
        links: { redis, sentinels, servers: [] },
        url: '',
        // The Sentinels name the first master by their own proxy's address: this member goes through its own.
        connection: {
          ...connection,
          nodes: sentinels.map(at).join(','),
          natMap: `${at(setLinks.sentinels)}=${at(redis)}`,
        },
      };
    }
    return { links: undefined, url: '', connection };
  }

  /**
   * Starts a member and waits until it has joined (or, with `until: 'attempted'`, until its
   * first join attempt ended either way): on a single Redis behind a chaos proxy of its own,
   * else as a Sentinel or Cluster client.
   */
  async spawn(spec: MemberSpec, until: SpawnUntil = 'joined'): Promise<MemberProcess> {
    const { links, url, connection } = await this.connect();
    const incarnation = (this.#incarnations.get(spec.id) ?? 0) + 1;
    this.#incarnations.set(spec.id, incarnation);
    const file = incarnation === 1 ? spec.id : `${spec.id}.${incarnation}`;
    const member = new MemberProcess(
      this.options.memberScript,
      {
        ...this.params,
        ...spec.params,
        ...connection,
        url,
        group: this.group,
        id: spec.id,
        weight: spec.weight,
        clockRate: spec.clockRate ?? 1,
        deactivateMs: spec.deactivateMs ?? 0,
        history: join(this.#dir, `${file}.jsonl`),
        sinkHistory: join(this.#dir, `${file}.sink.jsonl`),
        sinkUrl: this.sinkRedis.url,
        sinkKey: `sink:{${this.group}}`,
        sinkClockOffset: this.#sinkOffset,
        abortJoinAfterMs: spec.abortJoinAfterMs ?? -1,
        messageMs: this.scenario.feed?.messageMs ?? -1,
      },
      join(this.#dir, `${file}.stderr.log`),
    );
    if (links) this.links.set(member, links);
    this.processes.push(member);
    void member.exited.then((exit) => this.#exitedOnItsOwn(member, exit));
    const ended = () =>
      member.joined ||
      (until === 'attempted' && member.reports.some((r) => r.event === 'join-failed' || r.event === 'join-aborted'));
    try {
      await untilMembers([member], () => ended() || !member.running, `${spec.id} to join`, CHILD_START_MS, this.signal);
    } catch (error) {
      throw new Error(`${describe(error)}\n${member.logTail()}`);
    }
    if (!member.running && !member.left) throw new Error(`${spec.id} exited before it joined:\n${member.logTail()}`);
    return member;
  }

  /** Changes a member's weight (a membership change, not a fault); waits for the request to finish. */
  async setWeight(member: MemberProcess, weight: number): Promise<void> {
    const before = member.reported('weight').length;
    member.send({ cmd: 'weight', weight });
    await member.until(
      () => member.reported('weight').length > before || !member.running,
      `its weight to become ${weight}`,
      10 * this.A,
      this.signal,
    );
  }

  /** Graceful leave (a member's or a worker's); waits for the process to exit (SIGKILL after `timeoutMs`). */
  async leave(member: MemberProcess<ProcessArgs>, timeoutMs = 3 * this.A + 2000): Promise<void> {
    this.gone.add(member);
    member.send({ cmd: 'leave' });
    member.child.stdin?.end();
    const exited = await Promise.race([member.exited.then(() => true), sleep(timeoutMs, false)]);
    if (!exited) await this.killNow(member);
  }

  /** @internal Stops every process and link at once, gracefully or not. */
  async shutdown(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.processes.map((m) => m.stop()));
    await Promise.allSettled(this.allLinks().map((l) => l.close()));
    this.recorder.close();
  }

  /** @internal */
  historyFiles(): string[] {
    return [
      join(this.#dir, 'harness.jsonl'),
      join(this.#dir, REDIS_STATE_FILE),
      ...this.processes.flatMap((m) => [m.args.history, m.args.sinkHistory]),
    ].filter((path) => existsSync(path));
  }

  /**
   * A member process that ends without being told to (a crash) is gone from the group: the
   * history says so (as `killed`: it did not leave), and the run notes it as a criterion not met.
   */
  #exitedOnItsOwn(member: MemberProcess, exit: MemberExit): void {
    if (this.gone.has(member) || this.closed) return;
    this.gone.add(member);
    // A member whose join's signal was aborted, or whose rejoin the group refused, leaves and
    // exits: it said so, and recorded its leave.
    const mayLeave =
      member.args.abortJoinAfterMs >= 0 || member.reported('advisory').some((a) => a.code === 'PARAM_MISMATCH');
    if (member.left && exit.code === 0 && mayLeave) return;
    this.recorder.record({ type: 'killed', member: member.id });
    this.unmet(
      `${member.id} exited on its own (${exit.signal ?? `code ${exit.code}`}); its stderr ends with:\n${member.logTail(12)}`,
    );
  }

  /** SIGKILL, for `kill` and for a leave that does not end: `killed` is recorded once the process is gone. */
  protected async killNow(member: MemberProcess<ProcessArgs>): Promise<void> {
    this.gone.add(member);
    member.signal('SIGKILL');
    await member.exited;
    this.recorder.record({ type: 'killed', member: member.id });
  }
}

/** The checker's slack for the liveness rules, in ms: the run's, else the scenario's, else 500 as in L1. */
export function slackOf(scenario: ScenarioSpec, options: RunOptions): number {
  return options.slackMs ?? scenario.slackMs ?? 500;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
