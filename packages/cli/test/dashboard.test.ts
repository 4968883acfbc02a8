import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import {
  aclRules,
  forgetGroup,
  type GroupSnapshot,
  joinGroup,
  type Member,
  type RedisSource,
  type Transition,
} from '@understudy/core';
import {
  freePort,
  type RedisServer,
  startCluster,
  startRedis,
  startSentinelSet,
  type TlsFiles,
} from '@understudy/testkit';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { timelineFromLog } from '../src/commands/dashboard/board.js';
import { type DashboardState, EventStream, readState, startDashboard } from './dashboard-helpers.js';
import { killLeftoverClis, STARTUP_MS, understudy, uniqueGroup, waitFor } from './helpers.js';

const H = 100;
const A = 1000;
const OPERATOR = ['operator', 'operator-password'] as const;
const MONITOR_PASSWORD = 'monitor-password';
const DASHBOARD_PASSWORD = 'dashboard-password';
/** The group whose monitor user the ACL test logs in as (the ACL file is written at start). */
const WATCHED = uniqueGroup('dash-acl');

let server: RedisServer;
const members: Member[] = [];
const streams: EventStream[] = [];

/** The user docs/DASHBOARD.md gives for a dashboard of every group, as written there. */
function documentedDashboardUser(): string {
  const docs = readFileSync(new URL('../../../docs/DASHBOARD.md', import.meta.url), 'utf8');
  const line = /^ACL SETUSER dashboard (.*)$/m.exec(docs)?.[1];
  if (!line) throw new Error('docs/DASHBOARD.md has no ACL SETUSER dashboard line');
  return `user dashboard ${line.replace('>PASSWORD', `>${DASHBOARD_PASSWORD}`)}`;
}

beforeAll(async () => {
  const { monitor } = aclRules({ group: WATCHED });
  server = await startRedis({
    acl: [
      `user ${OPERATOR[0]} on >${OPERATOR[1]} ~* &* +@all`,
      `user ${monitor.user} ${monitor.rules.join(' ')} >${MONITOR_PASSWORD}`,
      documentedDashboardUser(),
    ],
  });
});

afterAll(async () => {
  await server.stop();
});

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await Promise.allSettled(members.splice(0).map((m) => m.leave()));
  await killLeftoverClis();
});

const url = (user: string, password: string) => `redis://${user}:${password}@127.0.0.1:${server.port}`;
const operatorUrl = () => url(...OPERATOR);

async function join(
  group: string,
  memberId: string,
  weight: number,
  redis: RedisSource = operatorUrl(),
): Promise<Member> {
  const member = await joinGroup({ redis, group, memberId, weight, heartbeatInterval: H, activationInterval: A });
  members.push(member);
  return member;
}

function events(dashboardUrl: string): EventStream {
  const stream = new EventStream(dashboardUrl);
  streams.push(stream);
  return stream;
}

/** Runs a dashboard with `args` until it shows `group` with one active member, then stops it. */
async function showsActiveGroup(args: string[], group: string): Promise<{ state: DashboardState; stderr: string }> {
  const { cli, url: page } = await startDashboard(args);
  const state = await waitFor(async () => {
    const s = await readState(page);
    return s.groups.some((g) => g.snapshot.group === group && g.snapshot.activeCount === 1) && s;
  }, `group ${group} on the page with one active member`);
  cli.signal('SIGINT');
  const { code, stderr } = await cli.result(10_000);
  expect(code, stderr).toBe(0);
  return { state, stderr };
}

/** A raw request, to send what fetch would not (another Host header, another method). */
function raw(target: string, options: { method?: string; host?: string; path?: string }) {
  const { hostname, port } = new URL(target);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        hostname,
        port,
        path: options.path ?? '/',
        method: options.method ?? 'GET',
        headers: options.host ? { host: options.host } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('understudy dashboard', { timeout: 120_000 }, () => {
  it('serves every group found by SCAN, follows groups appearing and going, and stops cleanly on SIGTERM', async () => {
    const first = uniqueGroup('dash-first');
    const a = await join(first, 'a', 20);
    await join(first, 'b', 10);
    await waitFor(() => a.isActive(), 'a active', A * 3);

    const { cli, url: page } = await startDashboard(['--redis', operatorUrl(), '--scan-interval', '200']);
    expect(cli.stdout).toContain(`every group under prefix understudy on redis://***@127.0.0.1:${server.port}`);
    expect(cli.stdout).not.toContain(OPERATOR[1]);

    const state = await readState(page);
    expect(state.connection).not.toContain(OPERATOR[1]);
    const shown = state.groups.find((g) => g.snapshot.group === first);
    expect(shown?.snapshot.members.map((m) => `${m.id}:${m.state}`)).toEqual(['a:active', 'b:standby']);
    expect(shown?.transitions.map((t) => t.type)).toContain('activate');

    const stream = events(page);
    await stream.next('hello', (d) => (d.groups as unknown[]).length >= 1);
    const later = uniqueGroup('dash-later');
    const c = await join(later, 'c', 5);
    await stream.next('added', (d) => (d.view as { snapshot: { group: string } }).snapshot.group === later, 5000);
    await c.leave();
    await forgetGroup({ redis: operatorUrl(), group: later });
    await stream.next('removed', (d) => d.group === later, 5000);

    // The failover of `first` arrives as a snapshot with b active.
    const before = stream.events.length;
    await a.leave();
    await stream.next(
      'snapshot',
      (d) => (d.snapshot as { members: { id: string; state: string }[] }).members[0]?.state === 'active',
      5000,
      before,
    );

    cli.signal('SIGTERM');
    // The process ends by itself: nothing (monitor, timer, socket) is left open.
    const result = await cli.result(10_000);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('dashboard stopped');
    await waitFor(() => stream.ended, 'the event stream to end', 5000);
  });

  it('shows a quorum group as the one server it watches sees it', async () => {
    // One of the K servers of a group in quorum mode (DESIGN §9): the dashboard reads it like any
    // group, with that server's own grant.
    const others = await Promise.all([startRedis(), startRedis()]);
    try {
      const group = uniqueGroup('dash-quorum');
      const q = await joinGroup({
        redis: [operatorUrl(), ...others.map((o) => o.url)],
        group,
        memberId: 'q',
        weight: 10,
        heartbeatInterval: H,
        activationInterval: A,
      });
      members.push(q);
      await waitFor(() => q.isActive(), 'q active', A * 3);
      const { state } = await showsActiveGroup(['--redis', operatorUrl(), '--scan-interval', '200'], group);
      const shown = state.groups.find((g) => g.snapshot.group === group);
      expect(shown?.snapshot.members.map((m) => `${m.id}:${m.state}`)).toEqual(['q:active']);
    } finally {
      await Promise.allSettled(members.splice(0).map((m) => m.leave()));
      await Promise.all(others.map((o) => o.stop()));
    }
  });

  it('explains itself with --help, and is listed among the commands', async () => {
    const [help, top] = await Promise.all([understudy(['dashboard', '--help']), understudy(['--help'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: understudy dashboard \[options\] \[groups\.\.\.\]/);
    expect(help.stdout).toMatch(/--port <port>.*\n?.*\(default: 8080\)/);
    expect(help.stdout).toMatch(/--host <host>[\s\S]*\(default: "127\.0\.0\.1"\)/);
    expect(help.stdout).toContain('understudy acl');
    expect(top.stdout).toMatch(/^ {2}dashboard \[options\] \[groups\.\.\.\] +serve a live web page of every group$/m);
  });

  it('is read-only and answers only to its own address', async () => {
    const { cli, url: page } = await startDashboard(['--redis', operatorUrl(), uniqueGroup('dash-http')]);
    const html = await fetch(page);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await html.text()).toContain('<script src="app.js"');
    for (const path of ['/app.js', '/style.css', '/favicon.svg']) {
      expect((await fetch(new URL(path, page))).status, path).toBe(200);
    }
    expect((await raw(page, { method: 'POST' })).status).toBe(405);
    expect((await raw(page, { method: 'DELETE', path: '/state' })).status).toBe(405);
    expect((await raw(page, { path: '/nothing' })).status).toBe(404);
    // A page of another site reaching the port through its own DNS name (DNS rebinding).
    expect((await raw(page, { host: `attacker.example:${new URL(page).port}` })).status).toBe(421);
    expect((await raw(page, { host: `localhost:${new URL(page).port}` })).status).toBe(200);
    cli.signal('SIGINT');
    expect((await cli.result(10_000)).code).toBe(0);
  });

  it('runs under a group’s monitor user when given the group, and says to name groups when it may not SCAN', async () => {
    const { monitor } = aclRules({ group: WATCHED });
    await join(WATCHED, 'solo', 1);
    const asMonitor = url(monitor.user, MONITOR_PASSWORD);

    // Named twice: shown once, and still nothing left open at the end.
    const { cli, url: page } = await startDashboard(['--redis', asMonitor, WATCHED, WATCHED]);
    expect(cli.stdout).toContain(`group ${WATCHED} on`);
    const state = await waitFor(async () => {
      const s = await readState(page);
      return s.groups[0]?.snapshot.members.length === 1 && s;
    }, 'the member on the page');
    expect(state.groups.map((g) => g.snapshot.group)).toEqual([WATCHED]);
    cli.signal('SIGINT');
    expect((await cli.result(10_000)).code).toBe(0);

    const refused = await understudy(['dashboard', '--port', '0', '--redis', asMonitor]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain('name the groups to show instead');
  });

  it('lists and watches every group under the read-only user docs/DASHBOARD.md gives', async () => {
    const group = uniqueGroup('dash-user');
    await join(group, 'solo', 1);
    const { stderr } = await showsActiveGroup(['--redis', url('dashboard', DASHBOARD_PASSWORD)], group);
    expect(stderr).toBe('');
  });

  it('fails at once, naming the option, when the port is taken or Redis cannot be reached', async () => {
    const { cli, url: page } = await startDashboard(['--redis', operatorUrl(), uniqueGroup('dash-port')]);
    const taken = new URL(page).port;
    const busy = await understudy(['dashboard', '--port', taken, '--redis', operatorUrl()], STARTUP_MS);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`--port ${taken}: 127.0.0.1:${taken} is already in use`);
    cli.signal('SIGINT');
    await cli.result(10_000);

    const nowhere = await understudy(['dashboard', '--port', '0', '--redis', `redis://127.0.0.1:${await freePort()}`]);
    expect(nowhere.code).toBe(3);
  });
});

describe('understudy dashboard when Redis goes away', { timeout: 120_000 }, () => {
  it('says a group’s reads fail while Redis is down, and clears it once Redis is back', async () => {
    const own = await startRedis();
    try {
      const { cli, url: page } = await startDashboard(['--redis', own.url, 'outage']);
      const stream = events(page);
      await stream.next('hello', () => true);
      await own.kill('SIGKILL');
      const failed = await stream.next('read-error', (d) => d.group === 'outage', 15_000);
      expect(String(failed.data.message)).not.toBe('');
      expect((await readState(page)).groups[0]?.readError).toBe(failed.data.message);
      const after = stream.events.length;
      await own.restart();
      await stream.next('snapshot', (d) => d.group === 'outage', 15_000, after);
      expect((await readState(page)).groups[0]?.readError).toBeUndefined();
      cli.signal('SIGINT');
      expect((await cli.result(10_000)).code).toBe(0);
    } finally {
      await own.stop();
    }
  });
});

describe('understudy dashboard on other topologies', { timeout: 120_000 }, () => {
  it('lists and watches the groups of a Redis Cluster (--cluster)', async () => {
    const cluster = await startCluster();
    const nodes = cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',');
    const group = uniqueGroup('dash-cluster');
    const member = await join(group, 'on-cluster', 1, new Cluster(cluster.startupNodes, { lazyConnect: true }));
    try {
      const { state } = await showsActiveGroup(['--cluster', nodes], group);
      expect(state.connection).toBe(`Cluster ${nodes}`);
    } finally {
      await member.leave();
      members.splice(members.indexOf(member), 1);
      await cluster.stop();
    }
  });

  it('lists and watches groups through Sentinel (--sentinel, --master-name)', async () => {
    const set = await startSentinelSet();
    const group = uniqueGroup('dash-sentinel');
    try {
      await join(group, 'via-sentinel', 1, { sentinels: set.sentinelAddresses, name: set.masterName });
      const sentinels = set.sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(',');
      await showsActiveGroup(['--sentinel', sentinels, '--master-name', set.masterName], group);
    } finally {
      await Promise.allSettled(members.splice(0).map((m) => m.leave()));
      await set.stop();
    }
  });

  it('watches a group over TLS (rediss:// with --tls-ca)', async () => {
    const tls = await startRedis({ tls: true });
    try {
      const files = tls.tls as TlsFiles;
      const group = uniqueGroup('dash-tls');
      await join(group, 'over-tls', 1, new Redis(tls.url, { lazyConnect: true, tls: { ca: readFileSync(files.ca) } }));
      await showsActiveGroup(['--redis', tls.url, '--tls-ca', files.ca], group);
    } finally {
      await Promise.allSettled(members.splice(0).map((m) => m.leave()));
      await tls.stop();
    }
  });
});

describe('the timeline a dashboard starts with', () => {
  it('is read back from the transition log: creation, a handover’s dip, a failover, a raised goal', () => {
    const log: [number, Transition['type'], string, Partial<Transition>][] = [
      [1000, 'goal', '', { reason: 'created', goal: 1 }],
      [1500, 'join', 'a', { reason: 'join' }],
      [2000, 'activate', 'a', { reason: 'initial' }],
      [3000, 'deactivate', 'a', { reason: 'preempted' }],
      [3000, 'activate', 'b', { reason: 'handover' }],
      [4000, 'deactivate', 'b', { reason: 'lease-lost' }],
      [4000, 'lapse', 'b', {}],
      [5000, 'activate', 'a', { reason: 'failover' }],
      [6000, 'goal', '', { reason: 'set', goal: 2 }],
      [6000, 'activate', 'c', { reason: 'goal' }],
    ];
    const transitions = log.map(([time, type, member, rest], i) => ({
      id: `${time}-${i}`,
      time,
      type,
      member,
      ...rest,
    }));
    const snapshot = { serverTime: 7000, activeCount: 2, activeGoal: 2 } as GroupSnapshot;

    expect(timelineFromLog(snapshot, transitions).map((p) => `${p.time} ${p.active}/${p.goal}`)).toEqual([
      '1000 0/0',
      '1000 0/1',
      '2000 1/1',
      '3000 0/1',
      '3000 1/1',
      '4000 0/1',
      '5000 1/1',
      '6000 1/2',
      '6000 2/2',
    ]);
  });

  it('starts at a goal change whose previous goal the entries read do not tell', () => {
    const transitions: Transition[] = [
      { id: '1000-0', time: 1000, type: 'activate', member: 'a', reason: 'initial' },
      { id: '2000-0', time: 2000, type: 'goal', member: '', reason: 'set', goal: 3 },
    ];
    const snapshot = { serverTime: 3000, activeCount: 1, activeGoal: 3 } as GroupSnapshot;
    expect(timelineFromLog(snapshot, transitions)).toEqual([{ time: 2000, active: 1, goal: 3 }]);
  });
});
