import { execFile } from 'node:child_process';
import { join as joinPath } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, type Member, type Monitor, monitorGroup } from '@understudy/core';
import { createMetrics, type UnderstudyMetrics } from '@understudy/core/metrics';
import { metricValue, parseMetrics, runTypeScript, startRedis } from '@understudy/testkit';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { FAST, fileServer, MemberProcess, memberFactory, uniqueGroup, waitFor } from './helpers.js';

const { server } = fileServer();
const join = memberFactory(server);
const A = FAST.activationInterval;

const monitors: Monitor[] = [];
const stops: (() => void)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await Promise.all(monitors.splice(0).map((m) => m.close()));
});

/** Fresh metrics on a registry of the test's own. */
function metrics(): UnderstudyMetrics {
  return createMetrics({ registry: new Registry() });
}

async function watch(m: UnderstudyMetrics, group: string, redis = server().url): Promise<Monitor> {
  const monitor = await monitorGroup({ redis, group });
  monitors.push(monitor);
  stops.push(m.instrumentMonitor(monitor));
  return monitor;
}

function instrument(m: UnderstudyMetrics, member: Member): void {
  stops.push(m.instrumentMember(member));
}

/** Reads one value from the registry's text exposition, the way Prometheus would. */
async function value(m: UnderstudyMetrics, name: string, labels: Record<string, string> = {}) {
  return metricValue(parseMetrics(await m.registry.metrics()), name, labels);
}

async function waitForValue(
  m: UnderstudyMetrics,
  name: string,
  labels: Record<string, string>,
  accept: (v: number | undefined) => boolean,
) {
  let last: number | undefined;
  await waitFor(
    async () => {
      last = await value(m, name, labels);
      return accept(last);
    },
    () => `${name}${JSON.stringify(labels)} to change; it is ${last}`,
  );
  return last;
}

describe('monitor metrics', () => {
  it('follow a crash failover: active against goal, transitions by reason, one failover of at least A', async () => {
    const m = metrics();
    const group = uniqueGroup();
    const active = new MemberProcess({ url: server().url, group, memberId: 'active', weight: 20 });
    await active.waitFor('activate');
    const standby = await join({ group, memberId: 'standby', weight: 10 });
    instrument(m, standby);
    await watch(m, group);
    expect(await value(m, 'understudy_group_active_members', { group })).toBe(1);
    expect(await value(m, 'understudy_group_active_goal', { group })).toBe(1);
    expect(await value(m, 'understudy_group_live_members', { group })).toBe(2);

    await active.kill();
    await waitFor(() => standby.isActive(), 'the standby to take over');
    await waitForValue(m, 'understudy_failover_duration_seconds_count', { group }, (v) => v === 1);
    const failover = (await value(m, 'understudy_failover_duration_seconds_sum', { group })) as number;
    // From the dead member's last renewal to the takeover: its lease (A) had to run out first.
    expect(failover).toBeGreaterThanOrEqual(A / 1000);
    expect(failover).toBeLessThan((A + 2000) / 1000);
    await waitForValue(m, 'understudy_group_live_members', { group }, (v) => v === 1);
    // The monitor reads the group, then its log: one read may see the lapse (nobody active) and
    // the log the activation after it; the announcement of the grant brings a read that shows it.
    await waitForValue(m, 'understudy_group_active_members', { group }, (v) => v === 1);
    const transitions = { group, type: 'activate', reason: 'failover' };
    expect(await value(m, 'understudy_group_transitions_total', transitions)).toBe(1);
    expect(
      await value(m, 'understudy_group_transitions_total', { group, type: 'deactivate', reason: 'lease-lost' }),
    ).toBe(1);
    expect(await value(m, 'understudy_group_transitions_total', { group, type: 'lapse' })).toBe(1);
    expect(await value(m, 'understudy_handover_duration_seconds_count', { group })).toBeUndefined();

    // The standby's own side of it.
    const own = { group, member: 'standby' };
    expect(await value(m, 'understudy_member_state', { ...own, state: 'active' })).toBe(1);
    expect(await value(m, 'understudy_member_state', { ...own, state: 'standby' })).toBe(0);
    expect(await value(m, 'understudy_member_actions_total', { group, action: 'activate', reason: 'failover' })).toBe(
      1,
    );
    expect(await value(m, 'understudy_renewal_duration_seconds_count', { group })).toBeGreaterThan(0);
    const margin = (await value(m, 'understudy_member_lease_margin_seconds', own)) as number;
    expect(margin).toBeGreaterThan(0);
    expect(margin).toBeLessThanOrEqual(A / 1000);
  });

  it('time a preemption from the group asking for the slot back, through the deactivate handler', async () => {
    const m = metrics();
    const group = uniqueGroup();
    const handlerMs = 200;
    const low = await join({
      group,
      memberId: 'low',
      weight: 10,
      onDeactivate: () => new Promise((resolve) => setTimeout(resolve, handlerMs)),
    });
    await waitFor(() => low.isActive(), 'low active');
    await watch(m, group);
    const high = await join({ group, memberId: 'high', weight: 20 });
    await waitFor(() => high.isActive(), 'high to take over');
    await waitForValue(m, 'understudy_handover_duration_seconds_count', { group }, (v) => v === 1);
    const handover = (await value(m, 'understudy_handover_duration_seconds_sum', { group })) as number;
    expect(handover).toBeGreaterThanOrEqual((handlerMs - 10) / 1000);
    expect(handover).toBeLessThan((handlerMs + 1000) / 1000);
    expect(
      await value(m, 'understudy_group_transitions_total', { group, type: 'deactivate', reason: 'preempted' }),
    ).toBe(1);
    expect(await value(m, 'understudy_failover_duration_seconds_count', { group })).toBeUndefined();

    // A leave runs its deactivate handler before it tells the group: the group sees no gap.
    await high.leave();
    await waitForValue(m, 'understudy_handover_duration_seconds_count', { group }, (v) => v === 2);
    const both = (await value(m, 'understudy_handover_duration_seconds_sum', { group })) as number;
    expect(both - handover).toBeLessThan(0.05);
    expect(await value(m, 'understudy_group_transitions_total', { group, type: 'leave' })).toBe(1);
  });

  it('leave out transitions the monitor replays from before it started', async () => {
    const m = metrics();
    const group = uniqueGroup();
    const first = await join({ group, memberId: 'first', weight: 10 });
    await waitFor(() => first.isActive(), 'first active');
    const monitor = await monitorGroup({ redis: server().url, group, history: 10 });
    monitors.push(monitor);
    const replayed: unknown[] = [];
    monitor.on('transition', (t) => replayed.push(t));
    stops.push(m.instrumentMonitor(monitor));
    await waitFor(() => replayed.length >= 3, 'the replay (goal, join, activate)');
    await join({ group, memberId: 'second', weight: 5 });
    await waitForValue(m, 'understudy_group_transitions_total', { group, type: 'join' }, (v) => v === 1);
    expect(await value(m, 'understudy_group_transitions_total', { group, type: 'activate' })).toBeUndefined();
    expect(await value(m, 'understudy_group_transitions_total', { group, type: 'goal' })).toBeUndefined();
  });

  it('stop recording when told to, and drop the group’s gauges', async () => {
    const m = metrics();
    const group = uniqueGroup();
    const monitor = await monitorGroup({ redis: server().url, group });
    monitors.push(monitor);
    const stop = m.instrumentMonitor(monitor);
    expect(await value(m, 'understudy_group_active_goal', { group })).toBe(0);
    stop();
    expect(await value(m, 'understudy_group_active_goal', { group })).toBeUndefined();
    await join({ group, memberId: 'unseen', weight: 10 });
    await waitFor(() => monitor.snapshot().members.length === 1, 'the monitor to see the member');
    expect(await value(m, 'understudy_group_transitions_total', { group })).toBeUndefined();
  });
});

describe('member metrics', () => {
  it('count REDIS_UNAVAILABLE once and every failed renewal while Redis does not answer', async () => {
    const m = metrics();
    const own = await startRedis();
    try {
      const group = uniqueGroup();
      const member = await join({ redis: own.url, group, memberId: 'cut-off', weight: 10 });
      instrument(m, member);
      await waitFor(() => member.isActive(), 'active');
      expect(await value(m, 'understudy_advisories_total', { group })).toBeUndefined();
      await own.pause();
      await waitForValue(m, 'understudy_renewal_failures_total', { group }, (v) => (v ?? 0) >= 2);
      await waitForValue(m, 'understudy_advisories_total', { group, code: 'LEASE_LOST' }, (v) => v === 1);
      expect(await value(m, 'understudy_advisories_total', { group, code: 'REDIS_UNAVAILABLE' })).toBe(1);
      // The next failure after the deadline shows the lease overdrawn.
      await waitForValue(
        m,
        'understudy_member_lease_margin_seconds',
        { group, member: 'cut-off' },
        (v) => (v ?? 0) < 0,
      );
      expect(
        await value(m, 'understudy_member_actions_total', { group, action: 'deactivate', reason: 'lease-lost' }),
      ).toBe(1);
      await own.resume();
      await waitFor(() => member.isActive(), 'active again once Redis answers');
    } finally {
      await own.stop();
    }
  });

  it('remove a member’s own series when it leaves', async () => {
    const m = metrics();
    const group = uniqueGroup();
    const member = await join({ group, memberId: 'brief', weight: 10 });
    instrument(m, member);
    await waitFor(() => member.isActive(), 'active');
    const own = { group, member: 'brief' };
    await waitForValue(m, 'understudy_member_state', { ...own, state: 'active' }, (v) => v === 1);
    expect(await value(m, 'understudy_member_state', own)).toBe(1);
    await member.leave();
    expect(await value(m, 'understudy_member_state', own)).toBeUndefined();
    expect(await value(m, 'understudy_member_lease_margin_seconds', own)).toBeUndefined();
    expect(await value(m, 'understudy_member_actions_total', { group, action: 'deactivate', reason: 'leave' })).toBe(1);
  });
});

describe('createMetrics', () => {
  it('gives one set of metrics per registry and prefix, registered when first used', async () => {
    const registry = new Registry();
    const a = createMetrics({ registry });
    expect(createMetrics({ registry })).toBe(a);
    const b = createMetrics({ registry, prefix: 'other_' });
    expect(b).not.toBe(a);
    expect(registry.getMetricsAsArray()).toEqual([]);
    const monitor = await monitorGroup({ redis: server().url, group: uniqueGroup() });
    monitors.push(monitor);
    stops.push(a.instrumentMonitor(monitor), b.instrumentMonitor(monitor));
    expect(registry.getSingleMetric('understudy_group_active_members')).toBeDefined();
    expect(registry.getSingleMetric('other_group_active_members')).toBeDefined();
    expect(registry.getSingleMetric('understudy_member_state')).toBeUndefined();
  });

  it('refuses a prefix that is not a metric name, naming it', () => {
    expect(() => createMetrics({ registry: new Registry(), prefix: '9-lives' })).toThrow(ConfigError);
    expect(() => createMetrics({ registry: new Registry(), prefix: '9-lives' })).toThrow(/prefix = "9-lives"/);
  });

  it('is the only way prom-client gets loaded: importing @understudy/core does not load it', async () => {
    const fixture = joinPath(import.meta.dirname, 'fixtures/loaded-modules.ts');
    const { stdout } = await promisify(execFile)(process.execPath, [
      ...runTypeScript(),
      fixture,
      '@understudy/core',
      '@understudy/core/metrics',
    ]);
    // The second import shows that the check sees prom-client when it is loaded.
    expect(JSON.parse(stdout)).toEqual({ '@understudy/core': false, '@understudy/core/metrics': true });
  });
});
