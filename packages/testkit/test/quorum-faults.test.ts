import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  clockRateAt,
  type FaultLog,
  type HistoryEvent,
  HistoryRecorder,
  QuorumFaults,
  type RedisQuorum,
  readHistory,
  runScenario,
  type Scenario,
  type ScenarioRun,
  startRedisQuorum,
  testkitRoot,
} from '../src/index.js';

const clients: Redis[] = [];
const quorums: RedisQuorum[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await Promise.all(quorums.splice(0).map((q) => q.stop()));
});

function connect(url: string, options: RedisOptions = {}): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, ...options });
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

/** A fault log on a history file of its own, as the harness keeps one. */
function recordedLog(): { log: FaultLog; events: () => HistoryEvent[] } {
  const path = join(mkdtempSync(join(testkitRoot(), 'faults-')), 'harness.jsonl');
  const recorder = new HistoryRecorder(path, 'harness');
  return {
    log: {
      async fault(description, inject = () => undefined) {
        recorder.record({ type: 'fault', fault: description });
        await inject();
      },
      async heal(description, lift = () => undefined) {
        await lift();
        recorder.record({ type: 'heal', fault: description });
      },
      sleep: (ms) => sleep(ms),
    },
    events: () => readHistory([path]),
  };
}

const faultsOf = (events: HistoryEvent[]) =>
  events.flatMap((e) => (e.type === 'fault' || e.type === 'heal' ? [`${e.type} ${e.fault}`] : []));

async function roundTripMs(client: Redis): Promise<number> {
  const start = performance.now();
  await client.ping();
  return performance.now() - start;
}

describe('QuorumFaults on real servers', () => {
  async function setUp() {
    const quorum = await startRedisQuorum({ count: 3, proxied: true });
    quorums.push(quorum);
    const { log, events } = recordedLog();
    const faults = new QuorumFaults(quorum, log, (i) => [quorum.link(i)]);
    return { quorum, faults, events, port: (i: number) => quorum.server(i).port };
  }

  it('slows one link in one direction until healLink, recording the fault and its heal', async () => {
    const { quorum, faults, events, port } = await setUp();
    const client = connect(quorum.urls[1] as string);
    await client.ping();
    const other = connect(quorum.urls[0] as string);
    await other.ping();
    // A delay far above what a loaded machine adds to a loopback round trip, so the two sides
    // of each comparison cannot meet.
    await faults.slowLink(1, 300, 0, { direction: 'to-server' });
    expect(await roundTripMs(client)).toBeGreaterThanOrEqual(299);
    expect(await roundTripMs(other)).toBeLessThan(200);
    await faults.healLink(1);
    expect(await roundTripMs(client)).toBeLessThan(200);
    const description = `links to server 1 (port ${port(1)}) delayed 300 ± 0 ms to-server`;
    expect(faultsOf(events())).toEqual([`fault ${description}`, `heal ${description}`]);
  });

  it('blackholes one direction of one link: commands are lost, then a heal resets and serves again', async () => {
    const { quorum, faults, events, port } = await setUp();
    const writer = connect(quorum.urls[2] as string, { commandTimeout: 300 });
    await writer.ping();
    await faults.blackholeLink(2, 'to-server');
    await expect(writer.set('k', 'lost')).rejects.toThrow(/timed out/i);
    expect(await connect(quorum.directUrls[2] as string).get('k')).toBeNull();
    await faults.healLink(2);
    expect(quorum.link(2).connectionCount).toBe(0); // reset: the stream with a gap is gone
    expect(await connect(quorum.urls[2] as string).set('k', 'after')).toBe('OK');
    const description = `links to server 2 (port ${port(2)}) blackholed to-server`;
    expect(faultsOf(events())).toEqual([`fault ${description}`, `heal ${description}`]);
  });

  it('kills a majority, keeps it down, and brings it back empty; freezes and thaws one server', async () => {
    const { quorum, faults, events, port } = await setUp();
    await Promise.all(quorum.directUrls.map((url) => connect(url).set('kept', 'yes')));
    expect(await faults.killMajority([2, 0])).toEqual([2, 0]);
    expect(quorum.servers.map((s) => s.running)).toEqual([false, true, false]);
    await faults.restartServers([2, 0]);
    expect(await Promise.all(quorum.directUrls.map((url) => connect(url).get('kept')))).toEqual([null, 'yes', null]);
    await faults.pauseServer(1, 50);
    expect(quorum.server(1).paused).toBe(false);
    await faults.restartEmpty(1);
    expect(await connect(quorum.directUrls[1] as string).get('kept')).toBeNull();
    // A restart with no fault open is recorded as a fault of its own.
    await faults.restartServer(0, { empty: false });
    const recorded = faultsOf(events());
    expect(recorded.slice(0, 2)).toEqual([
      `fault SIGKILL server 2 (port ${port(2)})`,
      `fault SIGKILL server 0 (port ${port(0)})`,
    ]);
    // The two come back at once: each heal is recorded as its server answers, in either order.
    expect([...recorded.slice(2, 4)].sort()).toEqual(
      [`heal SIGKILL server 2 (port ${port(2)})`, `heal SIGKILL server 0 (port ${port(0)})`].sort(),
    );
    expect(recorded.slice(4)).toEqual([
      `fault SIGSTOP server 1 (port ${port(1)})`,
      `heal SIGSTOP server 1 (port ${port(1)})`,
      `fault server 1 (port ${port(1)}) restarted empty`,
      `heal server 1 (port ${port(1)}) restarted empty`,
      `fault server 0 (port ${port(0)}) restarted`,
      `heal server 0 (port ${port(0)}) restarted`,
    ]);
  });

  it('gives clock rates at, within and beyond ρ, and refuses nonsense', () => {
    expect(clockRateAt(0.01, 0.9, 'slow')).toBeCloseTo(0.991, 12);
    expect(clockRateAt(0.01, 1, 'fast')).toBeCloseTo(1.01, 12);
    expect(clockRateAt(0.01, 3, 'slow')).toBeCloseTo(0.97, 12);
    expect(() => clockRateAt(0, 1, 'slow')).toThrow('ρ must be in (0, 1), got 0');
    expect(() => clockRateAt(0.5, 2, 'slow')).toThrow('leave a positive rate, got 2 × 0.5');
  });
});

// ---- the harness on a quorum, with no member (members need core's quorum mode) --------------

const PARAMS = { activeGoal: 1, heartbeatInterval: 100, preparationInterval: 0, activationInterval: 300 };

/** Writes what a quorum member's scripts would: goal, member records and slot 0, on server `i`. */
async function grant(run: ScenarioRun, i: number, member: string, epoch: number): Promise<void> {
  const server = run.quorum.server(i);
  await server.admin('HSET', run.key('config'), 'activeGoal', '1');
  await server.admin('HSET', run.key('members'), member, '{}');
  await server.admin('HSET', run.key('slots'), '0', JSON.stringify({ m: member, e: epoch, s: 'active' }));
}

function quorumScenario(name: string, run: (run: ScenarioRun) => Promise<void>): Scenario {
  return {
    name,
    title: name,
    criteria: 'none beyond the rules',
    params: PARAMS,
    members: [],
    topology: 'quorum',
    quorum: { servers: 3 },
    run,
  };
}

const runOptions = { seed: 7, memberScript: 'unused: this scenario has no member', resultsDir: testkitRoot() };

describe('runScenario on a quorum topology', () => {
  it('starts K servers, injects the quorum fault kinds, reads each server’s state and passes an honest history', {
    timeout: 60_000,
  }, async () => {
    const states: Record<string, number> = {};
    const result = await runScenario(
      quorumScenario('quorum-honest', async (run) => {
        expect(run.quorum.count).toBe(3);
        await expect(run.master()).rejects.toThrow('a quorum has no master');
        for (const i of [0, 1, 2]) await grant(run, i, 'a', 100);
        await run.sleep(100);
        await run.quorumFaults.killServer(0);
        await run.sleep(100);
        await run.quorumFaults.restartServer(0);
        await grant(run, 0, 'a', 100); // a re-claims its slot and epoch on the server that lost it
        await run.quorumFaults.pauseServer(1, 100);
        for (const i of [0, 1, 2]) await grant(run, i, 'b', 200);
        await run.sleep(100);
        await run.quorumFaults.restartMajorityEmpty();
        for (const i of [0, 1]) await grant(run, i, 'b', 200);
        await run.sleep(100);
        // Left open on purpose: the harness's healAll ends it (restarting the server empty).
        await run.quorumFaults.killServer(2);
      }),
      { ...runOptions, keep: 'always' },
    );
    expect(result.violations.map((v) => v.format())).toEqual([]);
    expect(result.unmet).toEqual([]);
    expect(result.passed).toBe(true);
    expect(result.faults).toBe(4);
    const history = readHistory([
      join(result.dir as string, 'harness.jsonl'),
      join(result.dir as string, 'redis-state.jsonl'),
    ]);
    for (const e of history) if (e.type === 'redis-state') states[e.server ?? '-'] = (states[e.server ?? '-'] ?? 0) + 1;
    expect(Object.keys(states).sort()).toEqual(['0', '1', '2']);
    const faults = history.filter((e) => e.type === 'fault').length;
    const heals = history.filter((e) => e.type === 'heal').length;
    expect(heals).toBe(faults);
  });

  it('fails a run in which one server grants an epoch below its floor (rule 18)', { timeout: 60_000 }, async () => {
    const result = await runScenario(
      quorumScenario('quorum-floor', async (run) => {
        for (const i of [0, 1, 2]) await grant(run, i, 'a', 100);
        await run.sleep(100);
        await grant(run, 1, 'c', 50);
        await run.sleep(100);
      }),
      runOptions,
    );
    expect(result.passed).toBe(false);
    expect(result.violations.map((v) => v.rule)).toEqual([18]);
    expect(result.violations[0]?.message).toMatch(
      /server 1 granted slot 0 to c with epoch 50, not above its floor 100/,
    );
  });
});
