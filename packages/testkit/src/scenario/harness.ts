import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ChaosProxy, startChaosProxy } from '../chaos/proxy.js';
import { checkHistory } from '../history/checker.js';
import { HistoryRecorder, readHistory } from '../history/recorder.js';
import type { HistoryEvent, Violation } from '../history/types.js';
import type { RedisCluster } from '../redis/cluster.js';
import type { ReplicatedPair } from '../redis/replicated.js';
import type { SentinelSet, StartSentinelSetOptions } from '../redis/sentinel.js';
import { startRedis } from '../redis/start.js';
import type { RedisServer, StartRedisOptions } from '../redis/types.js';
import { REDIS_STATE_FILE, watchRedisState } from './invariants.js';
import { convergenceAfterFaults } from './measures.js';
import type { GroupIntervals } from './member-args.js';
import { type MemberExit, MemberProcess, untilMembers } from './member-process.js';
import { Random } from './random.js';
import { describeResult } from './report.js';
import { redisClockOffset } from './sink.js';
import {
  dataServers,
  type MemberConnection,
  masterFor,
  memberConnection,
  type ScenarioTopology,
  startTopology,
  stopTopology,
  type TopologyKind,
} from './topology.js';

export interface MemberSpec {
  /** A member restarted with the same id (a supervisor's fixed `--member-id`) is the same member to the checker. */
  id: string;
  /** Distinct weights keep the expected ranking independent of join order. */
  weight: number;
  /** The member's clock runs this many times as fast as the real one (default 1). */
  clockRate?: number;
  /** Intervals or goal other than the scenario's: a member restarted with other parameters. */
  params?: Partial<GroupIntervals>;
  /** Aborts the join's AbortSignal this many ms after the join began (inside it, or after it). */
  abortJoinAfterMs?: number;
  /** How long its deactivate handler takes, in ms (default 0; below A). */
  deactivateMs?: number;
}

/** How long `spawn` waits: until the member joined (default), or until its first join attempt ended either way. */
export type SpawnUntil = 'joined' | 'attempted';

/** A member's own chaos proxies: to the group's Redis, and on a proxied Sentinel set to each Sentinel. */
interface MemberLinks {
  redis: ChaosProxy;
  sentinels: ChaosProxy[];
}

/** A fault scenario: its group, its members, the faults it injects, and how it passes. */
export interface Scenario {
  name: string;
  /** What happens, in one sentence. */
  title: string;
  /** How it passes beyond the checker's rules, in words. */
  criteria: string;
  params: GroupIntervals;
  members: readonly MemberSpec[];
  /**
   * Where the group lives (default `single`). On a single Redis (and on a `replicated` pair's
   * primary) every member reaches it through a chaos proxy of its own (`run.link()`); on
   * `sentinel` and `cluster` members connect as Sentinel or Cluster clients, directly — except
   * on a `proxied` Sentinel set, where each member reaches the first master and each Sentinel
   * through proxies of its own (`run.link()`, `run.sentinelLinks()`).
   */
  topology?: TopologyKind;
  /** Options of the single Redis, or of both servers of a `replicated` pair. */
  redis?: StartRedisOptions;
  /** Options of the Sentinel set (`topology` sentinel only). */
  sentinel?: StartSentinelSetOptions;
  /**
   * The checker's slack for this scenario's liveness rules, in ms (default 500, as in L1):
   * after a failover, members must also find the new master, which a heal on a single
   * server does not ask of them. A soak's `slackMs` option overrides it.
   */
  slackMs?: number;
  /**
   * Injects the faults. Before it, the harness has waited until the group converged and then
   * for a settling time; after it, it heals what is still open, waits for convergence and a
   * settling time again, and makes every member leave.
   */
  run(run: ScenarioRun): Promise<void>;
  /** Criteria beyond the checker's rules: returns those not met, in words. */
  verify?(outcome: ScenarioOutcome): string[];
  /** Figures of the run worth reporting (ms), e.g. how long the Redis failover took; undefined if not seen. */
  measure?(outcome: ScenarioOutcome): Record<string, number | undefined>;
}

export interface RunOptions {
  seed: number;
  /** The history-recording member program (test/fixtures/history-member.ts). */
  memberScript: string;
  /** For scenarios that run for a while (churn), in ms. */
  durationMs?: number;
  /** Aborting stops the run at once: everything it started is stopped, nothing is checked. */
  signal?: AbortSignal;
  /** Keep the run's folder (histories, report): always, or only when it fails (default). */
  keep?: 'always' | 'on-failure';
  /** Where run folders go (default: <tmp>/understudy-chaos). */
  resultsDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** The checker's slack for its liveness rules, in ms (default: the scenario's `slackMs`, else 500 as in L1). */
  slackMs?: number;
}

export interface ScenarioOutcome {
  history: readonly HistoryEvent[];
  /** What the scenario noted: instants (`run.note()`, hrtime ns), and other values it set. */
  notes: ReadonlyMap<string, bigint>;
  /** Every member process of the run, restarted ones included. */
  members: readonly MemberProcess[];
  /** The members the scenario aimed its faults at. */
  victims: readonly string[];
  params: GroupIntervals;
}

export interface ScenarioResult {
  scenario: string;
  seed: number;
  passed: boolean;
  /** Faults injected (`fault` events). */
  faults: number;
  violations: Violation[];
  /** Scenario criteria not met (besides the checker's rules). */
  unmet: string[];
  /** The scenario's own figures (`Scenario.measure`), in ms. */
  measures: Record<string, number | undefined>;
  /** Worst time from a heal to convergence, in ms; undefined if no fault healed. */
  worstConvergenceMs: number | undefined;
  /** Fault episodes after which the group had not converged before the next fault or the end. */
  unconverged: number;
  sinkAccepted: number;
  /** Stale work the sink refused: fencing at work. */
  sinkRejected: number;
  advisories: Record<string, number>;
  durationMs: number;
  /** The run's folder, when kept: histories, report.txt. */
  dir: string | undefined;
}

const CHILD_START_MS = 30_000;

/**
 * What a scenario's `run` works with: the servers, the members, their links, the seeded
 * random source, and the history's `fault` / `heal` / `killed` events, which the harness
 * records in a history file of its own.
 */
export class ScenarioRun {
  readonly scenario: Scenario;
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
  readonly #links = new Map<MemberProcess, MemberLinks>();
  readonly #gone = new Set<MemberProcess>();
  /** How many processes each member id has had: a restart with the same id writes new files. */
  readonly #incarnations = new Map<string, number>();
  readonly #openFaults: string[] = [];
  readonly #recorder: HistoryRecorder;
  readonly #dir: string;
  readonly #options: RunOptions;
  readonly #sinkOffset: bigint;
  #faultCount = 0;
  /** Set when the run shuts down: exits from then on are the harness's doing. */
  #closed = false;

  /** @internal use `runScenario` */
  constructor(
    scenario: Scenario,
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
    this.#options = options;
    this.#dir = dir;
    this.#recorder = new HistoryRecorder(join(dir, 'harness.jsonl'), 'harness');
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
    return this.A + this.H + slackOf(this.scenario, this.#options);
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

  /** A key in the group's slot (its hash tag alone): where a Cluster keeps the group. */
  get groupSlotKey(): string {
    return `{${this.group}}`;
  }

  /** The server that holds the group's keys now: the single Redis, the Sentinels' master, or the master of the group's slot. */
  master(): Promise<RedisServer> {
    return masterFor(this.topology, this.groupSlotKey);
  }

  get faultCount(): number {
    return this.#faultCount;
  }

  get historyDir(): string {
    return this.#dir;
  }

  log(line: string): void {
    this.#options.log?.(line);
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.signal });
  }

  /** Notes a scenario criterion that is not met (checked while the scenario runs). */
  unmet(criterion: string): void {
    this.findings.push(criterion);
  }

  /** Records `member` as a target of the scenario's faults, and returns it. */
  victim(member: MemberProcess): MemberProcess {
    this.victims.push(member.id);
    return member;
  }

  note(label: string): bigint {
    const t = process.hrtime.bigint();
    this.notes.set(label, t);
    return t;
  }

  // ---- members ---------------------------------------------------------------------------

  /** Members in the group as far as the harness knows: started, not killed, not left. */
  live(): MemberProcess[] {
    return this.processes.filter((m) => m.running && !this.#gone.has(m));
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
   * how long that took (ms).
   */
  async untilConverged(timeoutMs: number): Promise<number> {
    const start = performance.now();
    let since: number | undefined;
    const steady = () => {
      if (!this.converged()) since = undefined;
      else since ??= performance.now();
      return since !== undefined && performance.now() - since >= 2 * this.H;
    };
    await untilMembers(this.processes, steady, 'the group to converge', timeoutMs, this.signal);
    return performance.now() - start;
  }

  until(probe: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return untilMembers(this.processes, probe, what, timeoutMs, this.signal);
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
  link(member: MemberProcess): ChaosProxy {
    return this.#linksOf(member).redis;
  }

  /** The member's links to each Sentinel (a proxied Sentinel set only). */
  sentinelLinks(member: MemberProcess): readonly ChaosProxy[] {
    return this.#linksOf(member).sentinels;
  }

  #linksOf(member: MemberProcess): MemberLinks {
    const links = this.#links.get(member);
    if (!links)
      throw new Error(
        `${member.id} has no chaos proxy: members of this ${this.topology.kind} scenario connect directly`,
      );
    return links;
  }

  /**
   * Promotes the replica of a `replicated` scenario (`REPLICAOF NO ONE`) and moves every
   * member's link to it, as a floating address would move; open connections are reset.
   */
  async promoteReplica(): Promise<RedisServer> {
    const promoted = await this.pair.promote();
    for (const links of this.#links.values()) links.redis.retarget(promoted);
    return promoted;
  }

  /** A member's own proxies, and how it connects through them; none where members connect directly. */
  async #connect(): Promise<{ links: MemberLinks | undefined; url: string; connection: MemberConnection }> {
    const connection = memberConnection(this.topology);
    const proxy = (target: { host: string; port: number }) => startChaosProxy({ target });
    const topology = this.topology;
    if (topology.kind === 'single' || topology.kind === 'replicated') {
      const redis = await proxy(topology.kind === 'single' ? topology.server : topology.pair.primary);
      return { links: { redis, sentinels: [] }, url: redis.url(), connection };
    }
    const setLinks = topology.kind === 'sentinel' ? topology.set.links : undefined;
    if (topology.kind === 'sentinel' && setLinks) {
      const { set } = topology;
      const first = set.servers[0] as RedisServer;
      const redis = await proxy(first);
      const sentinels = await Promise.all(set.sentinels.map(proxy));
      const at = (p: ChaosProxy) => `${p.host}:${p.port}`;
      return {
        links: { redis, sentinels },
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
    const { links, url, connection } = await this.#connect();
    const incarnation = (this.#incarnations.get(spec.id) ?? 0) + 1;
    this.#incarnations.set(spec.id, incarnation);
    const file = incarnation === 1 ? spec.id : `${spec.id}.${incarnation}`;
    const member = new MemberProcess(
      this.#options.memberScript,
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
      },
      join(this.#dir, `${file}.stderr.log`),
    );
    if (links) this.#links.set(member, links);
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

  /** Graceful leave; waits for the process to exit (SIGKILL after `timeoutMs`). */
  async leave(member: MemberProcess, timeoutMs = 3 * this.A + 2000): Promise<void> {
    this.#gone.add(member);
    member.send({ cmd: 'leave' });
    member.child.stdin?.end();
    const exited = await Promise.race([member.exited.then(() => true), sleep(timeoutMs, false)]);
    if (!exited) await this.#kill(member);
  }

  // ---- faults ----------------------------------------------------------------------------

  /** Records the start of a fault, then injects it. */
  async fault(description: string, inject: () => unknown = () => undefined): Promise<void> {
    this.#recorder.record({ type: 'fault', fault: description });
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
    this.#recorder.record({ type: 'heal', fault: description });
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
  async kill(member: MemberProcess): Promise<void> {
    const description = `SIGKILL ${member.id}`;
    await this.fault(description);
    await this.#kill(member);
    await this.heal(description);
  }

  /** SIGSTOP for `ms`, then SIGCONT. */
  pause(member: MemberProcess, ms: number): Promise<void> {
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
    for (const links of this.#links.values()) for (const link of [links.redis, ...links.sentinels]) link.heal();
    for (const server of dataServers(this.topology)) if (server.paused) await server.resume();
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
    for (const member of this.live()) member.signal('SIGCONT');
    for (const description of [...this.#openFaults]) await this.heal(description);
  }

  /** @internal */
  async finish(): Promise<void> {
    await this.healAll();
    await Promise.all(this.live().map((m) => this.leave(m)));
  }

  /** @internal Stops every process and link at once, gracefully or not. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled(this.processes.map((m) => m.stop()));
    await Promise.allSettled([...this.#links.values()].flatMap((l) => [l.redis, ...l.sentinels]).map((l) => l.close()));
    this.#recorder.close();
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
    if (this.#gone.has(member) || this.#closed) return;
    this.#gone.add(member);
    // A member whose join's signal was aborted, or whose rejoin the group refused, leaves and
    // exits: it said so, and recorded its leave.
    const mayLeave =
      member.args.abortJoinAfterMs >= 0 || member.reported('advisory').some((a) => a.code === 'PARAM_MISMATCH');
    if (member.left && exit.code === 0 && mayLeave) return;
    this.#recorder.record({ type: 'killed', member: member.id });
    this.unmet(
      `${member.id} exited on its own (${exit.signal ?? `code ${exit.code}`}); its stderr ends with:\n${member.logTail(12)}`,
    );
  }

  async #kill(member: MemberProcess): Promise<void> {
    this.#gone.add(member);
    member.signal('SIGKILL');
    await member.exited;
    this.#recorder.record({ type: 'killed', member: member.id });
  }
}

/**
 * Runs one scenario: a Redis for the group and one for the fenced sink, a chaos proxy per
 * member, the members, the faults; then stops everything, merges the histories and checks
 * them. Everything it started is stopped when it returns or throws, or when `signal` aborts.
 */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const resultsDir = options.resultsDir ?? join(tmpdir(), 'understudy-chaos');
  mkdirSync(resultsDir, { recursive: true });
  const dir = mkdtempSync(join(resultsDir, `${scenario.name}-${options.seed}-`));
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const servers: { stop(): Promise<void> }[] = [];
  let run: ScenarioRun | undefined;
  let passed = false;
  try {
    if (scenario.redis && !['single', 'replicated'].includes(scenario.topology ?? 'single')) {
      throw new Error(`${scenario.name}: redis options apply to a single Redis or a pair, not to ${scenario.topology}`);
    }
    const kind = scenario.topology ?? 'single';
    if (scenario.sentinel && kind !== 'sentinel') {
      throw new Error(`${scenario.name}: sentinel options apply to a Sentinel set, not to ${kind}`);
    }
    const topology = await startTopology(kind, scenario.redis, scenario.sentinel);
    servers.push({ stop: () => stopTopology(topology) });
    const sink = await startRedis();
    servers.push(sink);
    const sinkOffset = await redisClockOffset(sink.url);
    run = new ScenarioRun(scenario, options, { topology, sink, sinkOffset }, dir, controller.signal);
    const r = run;
    const watch = watchRedisState(r);
    servers.push({ stop: () => watch.stop() });
    await Promise.all(scenario.members.map((spec) => r.spawn(spec)));
    await r.untilConverged(CHILD_START_MS);
    await r.sleep(r.settleMs);
    r.note('run');
    await scenario.run(r);
    r.note('end');

    await r.healAll();
    const unmet: string[] = [];
    await r.untilConverged(r.settleMs + 5 * r.A).catch(() => {
      unmet.push(`the group had not converged ${r.settleMs + 5 * r.A} ms after the last heal`);
    });
    await r.sleep(r.settleMs);
    await r.finish();
    await watch.stop();
    await r.shutdown();
    await Promise.allSettled(servers.map((s) => s.stop()));

    const history = readHistory(r.historyFiles());
    const params = scenario.params;
    const check = checkHistory(
      history,
      {
        activeGoal: params.activeGoal,
        activationIntervalMs: params.activationInterval,
        heartbeatIntervalMs: params.heartbeatInterval,
      },
      { slackMs: slackOf(scenario, options) },
    );
    const outcome: ScenarioOutcome = { history, notes: r.notes, members: r.processes, victims: r.victims, params };
    unmet.push(...r.findings, ...verifyCommon(outcome), ...(scenario.verify?.(outcome) ?? []));
    const convergence = convergenceAfterFaults(history, params.activeGoal);
    const measured = convergence.flatMap((c) => (c.ms === undefined ? [] : [c.ms]));
    passed = check.ok && unmet.length === 0;
    const result: ScenarioResult = {
      scenario: scenario.name,
      seed: options.seed,
      passed,
      faults: r.faultCount,
      violations: check.violations,
      unmet,
      measures: scenario.measure?.(outcome) ?? {},
      worstConvergenceMs: measured.length > 0 ? Math.max(...measured) : undefined,
      unconverged: convergence.length - measured.length,
      sinkAccepted: history.filter((e) => e.type === 'sink-accept').length,
      sinkRejected: history.filter((e) => e.type === 'sink-reject').length,
      advisories: countAdvisories(r.processes),
      durationMs: performance.now() - started,
      dir: undefined,
    };
    writeFileSync(join(dir, 'report.txt'), describeResult(result));
    if (!passed || options.keep === 'always') result.dir = dir;
    return result;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await run?.shutdown();
    await Promise.allSettled(servers.map((s) => s.stop()));
    if (passed && options.keep !== 'always') rmSync(dir, { recursive: true, force: true });
  }
}

function slackOf(scenario: Scenario, options: RunOptions): number {
  return options.slackMs ?? scenario.slackMs ?? 500;
}

/** Criteria every scenario shares. */
function verifyCommon(outcome: ScenarioOutcome): string[] {
  const unmet: string[] = [];
  for (const member of outcome.members) {
    // Redis itself counting more slots than the goal must never happen.
    const tooMany = member.reported('advisory').filter((a) => a.code === 'TOO_MANY_ACTIVE');
    if (tooMany.length > 0) unmet.push(`${member.id} reported TOO_MANY_ACTIVE: ${tooMany[0]?.message}`);
  }
  return unmet;
}

function countAdvisories(members: readonly MemberProcess[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const member of members) {
    for (const advisory of member.reported('advisory')) counts[advisory.code] = (counts[advisory.code] ?? 0) + 1;
  }
  return counts;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
