import { createServer, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeGroup } from '@understudy/core';
import { metricValue, parseMetrics, type RedisServer, startRedis } from '@understudy/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  Cli,
  isAlive,
  killLeftoverClis,
  ProgramRecords,
  processesOfGroup,
  understudy,
  uniqueGroup,
  waitFor,
} from './helpers.js';

/** H and A as in the run tests: short, but not so short that a loaded machine loses leases. */
const H = 100;
const A = 1000;

let server: RedisServer;
let records: ProgramRecords;
const groups: string[] = [];

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  await server.stop();
});

beforeEach(() => {
  records = new ProgramRecords();
});

// As in the run tests: no wrapper, and no program of a test's groups, outlives the test.
afterEach(async () => {
  const killed = await killLeftoverClis();
  if (killed.length > 0) await sleep(500); // a killed wrapper takes its program with it, a moment later
  const orphans = [...new Set([...records.starts().map((s) => s.pid), ...groups.flatMap(processesOfGroup)])].filter(
    isAlive,
  );
  for (const pid of orphans) process.kill(pid, 'SIGKILL');
  records.remove();
  groups.length = 0;
  expect(orphans, 'programs still running after the test').toEqual([]);
});

function newGroup(label: string): string {
  const group = uniqueGroup(label);
  groups.push(group);
  return group;
}

function runWrapper(group: string, memberId: string, weight: number, ...options: string[]): Cli {
  return new Cli([
    'run',
    '--redis',
    server.url,
    '--group',
    group,
    '--member-id',
    memberId,
    '--weight',
    String(weight),
    '--heartbeat',
    String(H),
    '--activation',
    String(A),
    ...options,
    '--',
    ...records.command(memberId),
  ]);
}

/** The address a command printed when it started serving metrics. */
async function metricsUrl(cli: Cli): Promise<string> {
  await cli.waitForStderr(/serving metrics at http:\/\/\S+/);
  return (/serving metrics at (http:\/\/\S+)/.exec(cli.stderr) as RegExpExecArray)[1] as string;
}

async function scrape(url: string) {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

/** Scrapes until `accept` holds; returns that scrape. */
async function scrapeUntil(url: string, what: string, accept: (s: Awaited<ReturnType<typeof scrape>>) => boolean) {
  let last = '';
  return waitFor(
    async () => {
      const samples = await scrape(url);
      last = samples.map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`).join('\n');
      return accept(samples) && samples;
    },
    () => `${what}; the last scrape of ${url} said:\n${last}`,
    10_000,
    50,
  );
}

/** A TCP port that something else holds for as long as the test runs. */
async function occupiedPort(): Promise<{ port: number; release: () => Promise<void> }> {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const { port } = blocker.address() as { port: number };
  return { port, release: () => new Promise<void>((resolve) => blocker.close(() => resolve())) };
}

describe('--metrics-port', { timeout: 120_000 }, () => {
  it('serves /metrics from monitor and run that follow a crash failover, and stops serving on exit', async () => {
    const group = newGroup('metrics');
    const monitor = new Cli(['monitor', group, '--json', '--redis', server.url, '--metrics-port', '0']);
    const monitorUrl = await metricsUrl(monitor);
    const first = runWrapper(group, 'first', 20, '--metrics-port', '0');
    await records.waitForStart('first', 30_000);
    const second = runWrapper(group, 'second', 10, '--metrics-port', '0');
    const secondUrl = await metricsUrl(second);
    await scrapeUntil(
      monitorUrl,
      'the monitor to count one of two members active',
      (s) =>
        metricValue(s, 'understudy_group_active_members', { group }) === 1 &&
        metricValue(s, 'understudy_group_active_goal', { group }) === 1 &&
        metricValue(s, 'understudy_group_live_members', { group }) === 2,
    );
    expect(metricValue(await scrape(secondUrl), 'understudy_member_state', { group, state: 'standby' })).toBe(1);

    first.signal('SIGKILL'); // the wrapper and, with it, its program
    await records.waitForStart('second');
    const seen = await scrapeUntil(
      monitorUrl,
      'one failover',
      (s) => metricValue(s, 'understudy_failover_duration_seconds_count', { group }) === 1,
    );
    const failover = metricValue(seen, 'understudy_failover_duration_seconds_sum', { group }) as number;
    // From the killed member's last renewal: its lease (A) had to run out before the takeover.
    expect(failover).toBeGreaterThanOrEqual(A / 1000);
    expect(failover).toBeLessThan((A + 3000) / 1000);
    expect(
      metricValue(seen, 'understudy_group_transitions_total', { group, type: 'activate', reason: 'failover' }),
    ).toBe(1);
    expect(
      metricValue(seen, 'understudy_group_transitions_total', { group, type: 'deactivate', reason: 'lease-lost' }),
    ).toBe(1);
    await scrapeUntil(
      monitorUrl,
      'the monitor to count the survivor alone',
      (s) =>
        metricValue(s, 'understudy_group_active_members', { group }) === 1 &&
        metricValue(s, 'understudy_group_live_members', { group }) === 1,
    );

    const own = await scrape(secondUrl);
    expect(metricValue(own, 'understudy_member_state', { group, member: 'second', state: 'active' })).toBe(1);
    expect(metricValue(own, 'understudy_member_actions_total', { group, action: 'activate', reason: 'failover' })).toBe(
      1,
    );
    expect(metricValue(own, 'understudy_renewal_duration_seconds_count', { group })).toBeGreaterThan(0);
    expect(metricValue(own, 'understudy_member_lease_margin_seconds', { group, member: 'second' })).toBeGreaterThan(0);

    for (const cli of [second, monitor]) {
      cli.signal('SIGTERM');
      const { code, stderr } = await cli.result();
      expect(code, stderr).toBe(0);
    }
    for (const url of [monitorUrl, secondUrl]) {
      await expect(fetch(url), `${url} after its command exited`).rejects.toThrow();
    }
  });

  it('fails monitor and run at once when the port is taken, naming it, before they read or join', async () => {
    const group = newGroup('taken');
    const { port, release } = await occupiedPort();
    try {
      const watched = await understudy([
        'monitor',
        group,
        '--json',
        '--redis',
        server.url,
        '--metrics-port',
        `${port}`,
      ]);
      expect(watched.code).toBe(1);
      expect(watched.stderr).toContain(`--metrics-port ${port}: 127.0.0.1:${port} is already in use`);
      expect(watched.stdout).toBe('');

      const ran = await runWrapper(group, 'blocked', 10, '--metrics-port', `${port}`).result();
      expect(ran.code).toBe(1);
      expect(ran.stderr).toContain(`--metrics-port ${port}: 127.0.0.1:${port} is already in use`);
      expect((await describeGroup({ redis: server.url, group })).members).toEqual([]);
      expect(records.starts()).toEqual([]);
    } finally {
      await release();
    }
  });

  it('refuses a port above 65535 as a usage error', async () => {
    const { code, stderr } = await understudy(['monitor', 'any', '--metrics-port', '70000']);
    expect(code).toBe(2);
    expect(stderr).toContain('70000 is above the highest port, 65535');
  });

  it('is in the help of monitor and run, with --metrics-host', async () => {
    for (const command of ['monitor', 'run']) {
      const { code, stdout } = await understudy([command, '--help']);
      expect(code).toBe(0);
      expect(stdout).toMatch(/--metrics-port <port>\s+serve Prometheus metrics at\s+http:\/\/HOST:PORT\/metrics/);
      expect(stdout).toMatch(/--metrics-host <host>\s+address to serve metrics on \(default: "127\.0\.0\.1"\)/);
    }
  });
});
