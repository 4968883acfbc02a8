// The high-availability scenarios of the reliability suite (docs/RELIABILITY.md §4): a group on
// a Sentinel-managed master or on a Redis Cluster, whose master is killed, or frozen past the
// failover and thawed as a stale master, or whose slot migrates to another master under it.
// Members connect as Sentinel or Cluster clients, without chaos proxies: the faults are the
// servers'. Every run is checked by the same history checker as the single-server scenarios.
import type {
  GroupIntervals,
  MemberSpec,
  RedisServer,
  Scenario,
  ScenarioOutcome,
  ScenarioRun,
} from '../../packages/testkit/src/index.js';
import { redisInfo } from '../../packages/testkit/src/index.js';
import { activations, noteOf } from './reading.js';

/** The fixed scenarios' intervals (scenarios.ts): every lease lapses during a failover of 2–4 s. */
const SHORT: GroupIntervals = Object.freeze({
  activeGoal: 1,
  heartbeatInterval: 150,
  preparationInterval: 0,
  activationInterval: 900,
});

/**
 * A longer than a failover: the active's lease outlives the master it was written on, so the
 * new master keeps it (S6: members that hold a valid slot keep it) — and a stale master that
 * comes back after more than A finds every lease lapsed and grants slots of its own.
 */
const OUTLAST: GroupIntervals = Object.freeze({
  activeGoal: 1,
  heartbeatInterval: 250,
  preparationInterval: 0,
  activationInterval: 5000,
});

/**
 * The checker's slack after a failover: on top of L1's 0.5 s, members must find the new master
 * (a lease connection retries every 500 ms at most, then asks the Sentinels or reloads the
 * Cluster's slots, and connects).
 */
const FAILOVER_SLACK_MS = 1500;

const TRIO: readonly MemberSpec[] = [
  { id: 'a', weight: 30 },
  { id: 'b', weight: 20 },
  { id: 'c', weight: 10 },
];

/** How long the harness waits for Redis to fail over (down-after 3 s / node timeout 1 s, then an election). */
const FAILOVER_TIMEOUT_MS = 30_000;

// ---- reading a history and the group's log -------------------------------------------------

const msBetween = (from: bigint | undefined, to: bigint | undefined) =>
  from === undefined || to === undefined ? undefined : Number(to - from) / 1e6;

/** One entry of the group's transition log (`…:log`, see docs/keys.md). */
interface Transition {
  type: string;
  member: string;
  /** Redis time, ms. */
  time: number;
  fields: Record<string, string>;
}

/**
 * The group's transition log, read from the server that holds the group now — after a
 * failover, the promoted replica: what it inherited from the old master and what it wrote since.
 */
async function transitions(run: ScenarioRun): Promise<Transition[]> {
  const text = await run.admin('XRANGE', `understudy:${run.groupSlotKey}:log`, '-', '+');
  if (text.startsWith('-')) throw new Error(`XRANGE of the group's log failed: ${text}`);
  // rawCommand flattens the reply: id, then field/value pairs, entry after entry.
  const tokens = text === '' ? [] : text.split('\n');
  const entries: Transition[] = [];
  for (let i = 0; i < tokens.length; ) {
    i += 1; // the entry id
    const fields: Record<string, string> = {};
    while (i + 1 < tokens.length && !/^\d+-\d+$/.test(tokens[i] ?? '')) {
      fields[tokens[i] as string] = tokens[i + 1] as string;
      i += 2;
    }
    entries.push({ type: fields.type ?? '', member: fields.member ?? '', time: Number(fields.time), fields });
  }
  return entries;
}

/**
 * S6 on the new master: it quarantined the group before granting anything (a `quarantine`
 * entry, reason server-changed, written after `since` on Redis's clock), and no slot was
 * granted before that quarantine ended.
 */
function quarantineHeld(log: readonly Transition[], sinceRedisMs: number): string[] {
  const quarantine = log.find(
    (e) => e.type === 'quarantine' && e.fields.reason === 'server-changed' && e.time >= sinceRedisMs,
  );
  const grants = log.filter((e) => e.type === 'activate' && e.time >= sinceRedisMs);
  if (!quarantine) {
    return grants.length > 0
      ? [`the new master granted ${grants[0]?.member} a slot without a quarantine (S6)`]
      : ['the new master never quarantined the group (S6): it granted nothing, so nothing was shown'];
  }
  const until = Number(quarantine.fields.until);
  return grants
    .filter((e) => e.time < until && e.fields.reason !== 'reclaimed')
    .map(
      (e) => `${e.member} was granted epoch ${e.fields.epoch} ${until - e.time} ms before the quarantine ended (S6)`,
    );
}

/** Redis's clock (ms) on a server, read as an administrator. */
async function redisNowMs(server: RedisServer): Promise<number> {
  const [seconds = '0', micros = '0'] = (await server.admin('TIME')).split('\n');
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** How many scripts a server has run (FCALL, EVALSHA and EVAL), from `INFO commandstats`. */
async function scriptsRun(server: RedisServer): Promise<number> {
  const stats = await redisInfo(server.port, 'commandstats');
  const calls = (name: string) => Number(/calls=(\d+)/.exec(stats.get(`cmdstat_${name}`) ?? '')?.[1] ?? 0);
  return calls('fcall') + calls('evalsha') + calls('eval');
}

/** The server has taken the replica role and synced with its master. */
async function isSyncedReplica(server: RedisServer): Promise<boolean> {
  const replication = await redisInfo(server.port, 'replication');
  return replication.get('role') === 'slave' && replication.get('master_link_status') === 'up';
}

// ---- the failover faults, per topology -----------------------------------------------------

interface Failover {
  /** The master that was lost. */
  old: RedisServer;
  /** Its Redis clock when it was lost (ms): the new master's quarantine must come after. */
  lostAtRedisMs: number;
}

/** The group's master now, and its clock. */
async function currentMaster(run: ScenarioRun): Promise<Failover> {
  const old = await run.master();
  return { old, lostAtRedisMs: await redisNowMs(old) };
}

/** Waits until another server holds the group's keys as a master (Sentinels named it / the Cluster serves the slot from it). */
async function untilFailedOver(run: ScenarioRun, old: RedisServer): Promise<RedisServer> {
  let promoted: RedisServer | undefined;
  await run.untilServers(
    async () => {
      const current = await run.master();
      if (current === old) return false;
      if ((await redisInfo(current.port, 'replication')).get('role') !== 'master') return false;
      if (run.topology.kind === 'cluster' && !(await run.cluster.healthy())) return false;
      promoted = current;
      return true;
    },
    'Redis to fail over',
    FAILOVER_TIMEOUT_MS,
  );
  return promoted as RedisServer;
}

/** SIGKILL of the group's master; the fault lasts until Redis has failed over. */
async function killMaster(run: ScenarioRun): Promise<void> {
  const { old, lostAtRedisMs } = await currentMaster(run);
  run.notes.set('lost-at-redis-ms', BigInt(lostAtRedisMs));
  const description = `SIGKILL of the master (port ${old.port})`;
  run.note('lost');
  await run.fault(description, () => old.kill('SIGKILL'));
  const promoted = await untilFailedOver(run, old);
  run.note('failed-over');
  run.log(`  the replica on port ${promoted.port} took over`);
  await run.heal(description);
}

/**
 * SIGSTOP of the group's master until Redis has failed over and the group has settled on the
 * new master, and for at least `minStopMs`; then SIGCONT. The old master comes back believing
 * it is a master, with whatever requests were queued on its sockets: a stale master. The fault
 * lasts until it has become a replica of the new master and synced.
 */
async function freezeMaster(run: ScenarioRun, minStopMs: number): Promise<void> {
  const { old, lostAtRedisMs } = await currentMaster(run);
  run.notes.set('lost-at-redis-ms', BigInt(lostAtRedisMs));
  const before = await scriptsRun(old);
  const description = `SIGSTOP of the master (port ${old.port}) past the failover`;
  const stoppedAt = performance.now();
  run.note('lost');
  await run.fault(description, () => old.pause());
  const promoted = await untilFailedOver(run, old);
  run.note('failed-over');
  run.log(`  the replica on port ${promoted.port} took over`);
  await run.untilConverged(FAILOVER_TIMEOUT_MS).catch(() => undefined); // judged by the checker
  await run.sleep(Math.max(0, minStopMs - (performance.now() - stoppedAt)));
  run.note('resumed');
  await old.resume();
  // What the stale master ran once thawed: requests members had sent it before it froze.
  await run.sleep(run.H);
  run.notes.set('stale-scripts', BigInt((await scriptsRun(old)) - before));
  await run.untilServers(() => isSyncedReplica(old), 'the old master to become a synced replica', FAILOVER_TIMEOUT_MS);
  run.note('demoted');
  await run.heal(description);
}

// ---- pass criteria -------------------------------------------------------------------------

/** After the failover, the group's log on the new master shows S6, and somebody is active. */
async function checkNewMaster(run: ScenarioRun): Promise<void> {
  await run.untilConverged(run.settleMs + 5 * run.A).catch(() => undefined); // judged by the checker
  const lost = Number(run.notes.get('lost-at-redis-ms') ?? 0n);
  const log = await transitions(run);
  const grantsAfter = log.filter((e) => e.type === 'activate' && e.time >= lost);
  // With leases that outlive the failover, the active may keep its slot: nothing to grant.
  if (grantsAfter.length > 0 || run.A < 2000) for (const u of quarantineHeld(log, lost)) run.unmet(u);
}

/**
 * "Redis failed over, and every member renewed on the new master before the run ended" — a
 * member whose renewals keep failing can go unseen otherwise: the checker's rules 4 and 6 ask
 * nothing more of a standby than to learn versions, which announcements alone can teach it.
 */
function failedOver(outcome: ScenarioOutcome): string[] {
  const failover = outcome.notes.get('failed-over');
  if (failover === undefined) return ['Redis did not fail over'];
  const end = noteOf(outcome, 'end');
  return outcome.members
    .filter(
      (m) =>
        !outcome.history.some(
          (e) => e.member === m.id && e.type === 'renewal' && e.outcome === 'ok' && e.t > failover && e.t < end,
        ),
    )
    .map((m) => `${m.id} never renewed on the new master`);
}

/** "The group re-formed: somebody activated after the master was lost" (every lease had lapsed). */
function reformed(outcome: ScenarioOutcome): string[] {
  const lost = noteOf(outcome, 'lost');
  return activations(outcome.history).some((e) => e.t > lost)
    ? []
    : ['nobody activated after the master was lost (leases of A = 900 ms cannot outlive the failover)'];
}

/**
 * How long after the harness saw the failover the last member renewed on the new master (its
 * first `ok` renewal since the master was lost); negative if every member was there first.
 */
function rediscoveryMs(outcome: ScenarioOutcome): number | undefined {
  const lost = outcome.notes.get('lost');
  const failedOver = outcome.notes.get('failed-over');
  if (lost === undefined || failedOver === undefined) return undefined;
  const firstOk = outcome.members.map(
    (m) =>
      outcome.history.find((e) => e.member === m.id && e.type === 'renewal' && e.outcome === 'ok' && e.t > lost)?.t,
  );
  if (firstOk.some((t) => t === undefined)) return undefined;
  return Math.max(...firstOk.map((t) => msBetween(failedOver, t) ?? 0));
}

/** The figures every failover scenario reports. */
function failoverMeasures(outcome: ScenarioOutcome): Record<string, number | undefined> {
  const lost = outcome.notes.get('lost');
  const timeline = [...outcome.history].sort((x, y) => (x.t < y.t ? -1 : 1));
  const heal = timeline.find((e) => e.type === 'heal' && lost !== undefined && e.t > lost)?.t;
  return {
    failoverMs: msBetween(lost, outcome.notes.get('failed-over')),
    rediscoveryMs: rediscoveryMs(outcome),
    faultMs: msBetween(lost, heal),
    ...(outcome.notes.has('stale-scripts') ? { staleScripts: Number(outcome.notes.get('stale-scripts')) } : {}),
  };
}

// ---- the scenarios -------------------------------------------------------------------------

const sentinelKill: Scenario = {
  name: 'sentinel-kill-master',
  title: 'Sentinel: SIGKILL of the master; the group follows the promoted replica, quarantined for A',
  criteria:
    'the Sentinels promote a replica; on it, the group is quarantined (server-changed) before any grant and nothing is granted before the quarantine ends (S6); someone activates after the failover',
  params: SHORT,
  members: TRIO,
  topology: 'sentinel',
  slackMs: FAILOVER_SLACK_MS,
  async run(run) {
    for (const active of run.actives()) run.victim(active);
    await killMaster(run);
    await checkNewMaster(run);
  },
  verify: (outcome) => [...failedOver(outcome), ...reformed(outcome)],
  measure: failoverMeasures,
};

const sentinelFreeze: Scenario = {
  name: 'sentinel-sigstop-master',
  title:
    'Sentinel: master SIGSTOPped past the failover and for more than A, then resumed: it comes back a stale master',
  criteria:
    'the Sentinels promote a replica while the master is stopped; once resumed, the old master runs the requests queued on it, then becomes a replica; nothing it says makes a second member active',
  params: OUTLAST,
  members: TRIO,
  topology: 'sentinel',
  slackMs: FAILOVER_SLACK_MS,
  async run(run) {
    for (const active of run.actives()) run.victim(active);
    await freezeMaster(run, 1.5 * run.A);
    await checkNewMaster(run);
  },
  verify: (outcome) => [
    ...failedOver(outcome),
    ...(outcome.notes.has('demoted') ? [] : ['the old master never became a replica']),
  ],
  measure: failoverMeasures,
};

const clusterKill: Scenario = {
  name: 'cluster-kill-master',
  title:
    'Cluster: SIGKILL of the master of the group’s slot; its replica takes over, the group follows, quarantined for A',
  criteria:
    'the Cluster promotes the replica; on it, the group is quarantined (server-changed) before any grant and nothing is granted before the quarantine ends (S6); someone activates after the failover',
  params: SHORT,
  members: TRIO,
  topology: 'cluster',
  slackMs: FAILOVER_SLACK_MS,
  async run(run) {
    for (const active of run.actives()) run.victim(active);
    await killMaster(run);
    await checkNewMaster(run);
  },
  verify: (outcome) => [...failedOver(outcome), ...reformed(outcome)],
  measure: failoverMeasures,
};

const clusterFreeze: Scenario = {
  name: 'cluster-sigstop-master',
  title:
    'Cluster: master of the group’s slot SIGSTOPped past the failover and for more than A, then resumed: it comes back a stale master',
  criteria:
    'the Cluster promotes the replica while the master is stopped; once resumed, the old master runs the requests queued on it, then becomes a replica of the new one; nothing it says makes a second member active',
  params: OUTLAST,
  members: TRIO,
  topology: 'cluster',
  slackMs: FAILOVER_SLACK_MS,
  async run(run) {
    for (const active of run.actives()) run.victim(active);
    await freezeMaster(run, 1.5 * run.A);
    await checkNewMaster(run);
  },
  verify: (outcome) => [
    ...failedOver(outcome),
    ...(outcome.notes.has('demoted') ? [] : ['the old master never became a replica']),
  ],
  measure: failoverMeasures,
};

/** `INFO errorstats` of a server: error prefix → how many replies carried it. */
async function errorCounts(server: RedisServer): Promise<Map<string, number>> {
  const stats = await redisInfo(server.port, 'errorstats');
  return new Map(
    [...stats].map(([field, value]) => [field.replace(/^errorstat_/, ''), Number(/count=(\d+)/.exec(value)?.[1] ?? 0)]),
  );
}

async function errorsOnEveryNode(run: ScenarioRun): Promise<Map<string, number>> {
  const total = new Map<string, number>();
  for (const node of run.cluster.nodes.filter((n) => n.running && !n.paused)) {
    for (const [error, count] of await errorCounts(node)) total.set(error, (total.get(error) ?? 0) + count);
  }
  return total;
}

/** Redirections a member's renewal failed with: the client should have followed each. */
const UNFOLLOWED = /\b(MOVED|ASK|CROSSSLOT|TRYAGAIN)\b/;

/**
 * Moves the group's slot to another master the way `redis-cli --cluster reshard` does, while
 * the members renew: IMPORTING on the target, MIGRATING on the source (the source still serves
 * the slot while it has every key a script names), all the group's keys in one MIGRATE (so no
 * script ever finds them split: no TRYAGAIN), then the source answers ASK and the target serves
 * the slot to ASKING clients; SETSLOT NODE on the target, the source and the other masters, and
 * the source answers MOVED. Each phase is held for a few heartbeats so that every member's
 * renewals go through it.
 */
async function migrateSlot(run: ScenarioRun): Promise<void> {
  const { cluster } = run;
  const source = await run.master();
  const slot = Number((await source.admin('CLUSTER', 'KEYSLOT', run.groupSlotKey)).replace(/^:/, ''));
  const nodes = await cluster.topology();
  const idOf = (server: RedisServer) => nodes.find((n) => n.port === server.port)?.id ?? '';
  const masters = nodes.filter((n) => n.role === 'master' && !n.failed);
  const others = masters.filter((n) => n.port !== source.port);
  const targetPort = others[run.random.int(0, others.length - 1)]?.port;
  const target = cluster.nodes.find((n) => n.port === targetPort);
  if (!target) throw new Error(`no other master to migrate slot ${slot} to`);
  const hold = () => run.sleep(4 * run.H);
  const ok = async (server: RedisServer, ...args: string[]) => {
    const reply = await server.admin(...args);
    if (reply.startsWith('-')) throw new Error(`${args.join(' ')} on port ${server.port}: ${reply}`);
    return reply;
  };
  run.notes.set('slot', BigInt(slot));
  run.notes.set('target-port', BigInt(target.port));
  const before = await errorsOnEveryNode(run);
  const sourceBefore = await errorCounts(source);
  const description = `migrate slot ${slot} from port ${source.port} to port ${target.port}`;
  run.note('migration');
  await run.fault(description, async () => {
    await ok(target, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', idOf(source));
    await ok(source, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', idOf(target));
  });
  await hold();
  const keys = (await ok(source, 'CLUSTER', 'GETKEYSINSLOT', String(slot), '1000')).split('\n').filter(Boolean);
  run.notes.set('keys-moved', BigInt(keys.length));
  await ok(source, 'MIGRATE', target.host, String(target.port), '', '0', '5000', 'KEYS', ...keys);
  run.note('keys-moved-at');
  await hold();
  for (const node of [
    target,
    source,
    ...cluster.nodes.filter((n) => others.some((o) => o.port === n.port) && n !== target),
  ]) {
    await ok(node, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', idOf(target));
  }
  run.note('migrated');
  await hold();
  await run.heal(description);
  const sourceAfter = await errorCounts(source);
  const after = await errorsOnEveryNode(run);
  const delta = (a: Map<string, number>, b: Map<string, number>, error: string) =>
    (a.get(error) ?? 0) - (b.get(error) ?? 0);
  run.notes.set('ask', BigInt(delta(sourceAfter, sourceBefore, 'ASK')));
  run.notes.set('moved', BigInt(delta(sourceAfter, sourceBefore, 'MOVED')));
  run.notes.set('crossslot', BigInt(delta(after, before, 'CROSSSLOT')));
  run.notes.set('tryagain', BigInt(delta(after, before, 'TRYAGAIN')));
  const owner = await run.master();
  if (owner.port !== target.port) run.unmet(`slot ${slot} is served by port ${owner.port}, not ${target.port}`);
}

const clusterMigrate: Scenario = {
  name: 'cluster-migrate-slot',
  title:
    'Cluster: the group’s slot migrates to another master (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE) while members renew',
  criteria:
    'the slot ends on the other master; members were redirected (ASK, then MOVED) and followed: no renewal failed with a redirection, no CROSSSLOT anywhere; nobody activates or deactivates from the migration until the members leave',
  params: SHORT,
  members: TRIO,
  topology: 'cluster',
  async run(run) {
    for (const active of run.actives()) run.victim(active);
    await migrateSlot(run);
    await run.sleep(run.settleMs);
  },
  verify(outcome) {
    const migration = noteOf(outcome, 'migration');
    const end = noteOf(outcome, 'end'); // then the harness heals, settles and makes everyone leave
    const count = (label: string) => Number(outcome.notes.get(label) ?? 0n);
    const unmet = outcome.history
      .filter((e) => e.type === 'activate' || e.type === 'deactivate')
      .filter((e) => e.t > migration && e.t < end)
      .map((e) => `${e.member} ${e.type}d during or after the migration (epoch ${e.epoch})`);
    if (count('ask') === 0)
      unmet.push('the source answered no ASK: no member renewed while the keys were on the target');
    if (count('moved') === 0) unmet.push('the source answered no MOVED after the slot moved');
    if (count('crossslot') > 0) unmet.push(`${count('crossslot')} CROSSSLOT errors on the cluster`);
    for (const member of outcome.members) {
      const failed = member.reported('renewal-failed').filter((r) => UNFOLLOWED.test(r.error));
      if (failed.length > 0)
        unmet.push(`${member.id}: ${failed.length} renewals failed on a redirection: ${failed[0]?.error}`);
    }
    return unmet;
  },
  measure(outcome) {
    const count = (label: string) => (outcome.notes.has(label) ? Number(outcome.notes.get(label)) : undefined);
    return {
      migrationMs: msBetween(outcome.notes.get('migration'), outcome.notes.get('migrated')),
      ask: count('ask'),
      moved: count('moved'),
      tryagain: count('tryagain'),
      crossslot: count('crossslot'),
    };
  },
};

export const HA_SCENARIOS: readonly Scenario[] = [
  sentinelKill,
  sentinelFreeze,
  clusterKill,
  clusterFreeze,
  clusterMigrate,
];
