import { type Advisory, HandlerError, type Member } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { describe, expect, it } from 'vitest';
import { FAST, fileServer, maxOverlap, memberFactory, Timeline, uniqueGroup, waitFor } from './helpers.js';

const { server, observer } = fileServer();
const join = memberFactory(server);

const A = FAST.activationInterval;
const H = FAST.heartbeatInterval;
/** Node timers may fire up to a millisecond before their delay has passed (DESIGN §8). */
const TIMER_EARLY_MS = 2;
/** How much later than due a loaded 2-core machine may run a timer, a script and a reply. */
const LATE_MS = 600;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A handler that never settles. */
const hang = () => new Promise<never>(() => undefined);

interface HandlerRun {
  member: string;
  action: 'prepare' | 'activate' | 'deactivate';
  start: number;
  end?: number;
}

/** Handlers that take `ms` and record when they start and settle, on one clock. */
function recordingHandler(runs: HandlerRun[], member: string, action: HandlerRun['action'], ms: number) {
  return async () => {
    const run: HandlerRun = { member, action, start: performance.now() };
    runs.push(run);
    await sleep(ms);
    run.end = performance.now();
  };
}

/** The most handlers of one member that ran at one instant. */
function maxConcurrentHandlers(runs: HandlerRun[]): number {
  return maxOverlap(runs.map((r) => [r.start, r.end ?? Number.POSITIVE_INFINITY] as const));
}

function advisoriesOf(member: Member): (Advisory & { t: number })[] {
  const advisories: (Advisory & { t: number })[] = [];
  member.on('advisory', (a) => advisories.push({ ...a, t: performance.now() }));
  return advisories;
}

/** What a member's `activate` or `deactivate` events said, and when. */
function eventsOf(member: Member, event: 'activate' | 'deactivate') {
  const events: { t: number; epoch: number; reason: string }[] = [];
  const record = (info: { epoch: number; reason: string }) => void events.push({ t: performance.now(), ...info });
  if (event === 'activate') member.on('activate', record);
  else member.on('deactivate', record);
  return events;
}

/** Calls leave() just before the member's next renewal would have been sent: its lease is then at its oldest. */
async function leaveJustBeforeRenewal(member: Member): Promise<number> {
  await new Promise<void>((resolve) => member.once('renewal', () => resolve()));
  await sleep(H - 10);
  const leaveCalled = performance.now();
  await member.leave();
  return leaveCalled;
}

describe('an activate handler that throws', () => {
  it('disables its member: weight 0 in the group, advisory DISABLED, deactivate "disabled", error HANDLER_FAILED', async () => {
    const group = uniqueGroup('h');
    await join({ group, memberId: 'steady', weight: 10 });
    const failure = new Error('cannot open the port');
    const flaky = await join({
      group,
      memberId: 'flaky',
      weight: 50,
      onActivate: () => {
        throw failure;
      },
    });
    const errors: Error[] = [];
    flaky.on('error', (e) => errors.push(e));
    const advisories = advisoriesOf(flaky);
    const deactivations = eventsOf(flaky, 'deactivate');

    await waitFor(() => advisories.some((a) => a.code === 'DISABLED'), 'advisory DISABLED');
    await waitFor(() => deactivations.length > 0, 'the disabled member to deactivate');
    expect(flaky.weight).toBe(0);
    expect(flaky.isActive()).toBe(false);
    expect(flaky.state).toBe('standby');
    expect(deactivations.map((d) => d.reason)).toEqual(['disabled']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(HandlerError);
    expect(errors[0]).toMatchObject({ code: 'HANDLER_FAILED', action: 'activate', cause: failure });
    // The group learns the weight from the `disable` script, which runs once the (absent) deactivate handler settled.
    const storedWeight = async () => JSON.parse((await observer().hget(groupKeys(group).members, 'flaky')) ?? '{}').w;
    const deadline = performance.now() + 2000;
    while ((await storedWeight()) !== 0 && performance.now() < deadline) await sleep(10);
    expect(await storedWeight()).toBe(0);
  });

  it('hands the slot to the next member, after the disabled member’s deactivate handler settled', async () => {
    const group = uniqueGroup('h');
    const timeline = new Timeline();
    const runs: HandlerRun[] = [];
    const steady = await join({ group, memberId: 'steady', weight: 10 });
    timeline.watch(steady);
    const steadyActivations = eventsOf(steady, 'activate');
    const flaky = await join({
      group,
      memberId: 'flaky',
      weight: 50,
      onActivate: () => {
        throw new Error('cannot open the port');
      },
      onDeactivate: recordingHandler(runs, 'flaky', 'deactivate', 150),
    });
    timeline.watch(flaky);
    const flakyActivations = eventsOf(flaky, 'activate');

    await waitFor(() => steady.isActive(), 'steady active', 5000);
    const handed = steadyActivations[0];
    const deactivated = runs[0];
    expect(handed?.reason).toBe('handover');
    expect(deactivated?.end).toBeDefined();
    // Demote before promote: no tolerance.
    expect(handed?.t).toBeGreaterThanOrEqual(deactivated?.end ?? Number.POSITIVE_INFINITY);

    // Disabled, it does not come back while a member with a positive weight is live.
    await sleep(H * 6);
    expect(steady.isActive()).toBe(true);
    expect(flakyActivations).toHaveLength(1);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});

describe('a deactivate handler that never settles', () => {
  it('holds a preempted slot for the activation interval, then releases it with advisory HANDLER_TIMEOUT', async () => {
    const group = uniqueGroup('h');
    const timeline = new Timeline();
    const old = await join({ group, memberId: 'old', weight: 10, onDeactivate: hang });
    timeline.watch(old);
    const advisories = advisoriesOf(old);
    const oldDeactivations = eventsOf(old, 'deactivate');
    await waitFor(() => old.isActive(), 'old active');

    const newcomer = await join({ group, memberId: 'newcomer', weight: 20 });
    timeline.watch(newcomer);
    const newcomerActivations = eventsOf(newcomer, 'activate');
    await waitFor(() => newcomer.isActive(), 'newcomer active', 5000);

    const demoted = oldDeactivations[0];
    const timedOut = advisories.find((a) => a.code === 'HANDLER_TIMEOUT');
    const promoted = newcomerActivations[0];
    expect(demoted?.reason).toBe('preempted');
    expect(timedOut).toMatchObject({ code: 'HANDLER_TIMEOUT', action: 'deactivate', member: 'old', group });
    if (!demoted || !timedOut || !promoted) throw new Error('missing events');
    // The handler had the whole activation interval to settle before it was abandoned…
    expect(timedOut.t - demoted.t).toBeGreaterThanOrEqual(A - TIMER_EARLY_MS);
    expect(timedOut.t - demoted.t).toBeLessThan(A + LATE_MS);
    // …and the newcomer activated only after that (demote before promote), soon after it.
    expect(promoted.t).toBeGreaterThanOrEqual(timedOut.t);
    expect(promoted.t - demoted.t).toBeGreaterThanOrEqual(A - TIMER_EARLY_MS);
    expect(promoted.t - demoted.t).toBeLessThan(A + LATE_MS);
    expect(promoted.reason).toBe('handover');
    expect(old.state).toBe('standby');
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('lets a leaving member go after the activation interval with advisory HANDLER_TIMEOUT; the next activates only then', async () => {
    const group = uniqueGroup('h');
    const timeline = new Timeline();
    const leaver = await join({ group, memberId: 'leaver', weight: 20, onDeactivate: hang });
    timeline.watch(leaver);
    const advisories = advisoriesOf(leaver);
    const next = await join({ group, memberId: 'next', weight: 10 });
    timeline.watch(next);
    const nextActivations = eventsOf(next, 'activate');
    await waitFor(() => leaver.isActive(), 'leaver active');

    const leaveCalled = await leaveJustBeforeRenewal(leaver);
    const leaveReturned = performance.now();
    await waitFor(() => next.isActive(), 'next active');

    const timedOut = advisories.find((a) => a.code === 'HANDLER_TIMEOUT');
    const promoted = nextActivations[0];
    if (!timedOut || !promoted) throw new Error('missing events');
    expect(leaver.state).toBe('left');
    expect(timedOut.t - leaveCalled).toBeGreaterThanOrEqual(A - TIMER_EARLY_MS);
    expect(leaveReturned - leaveCalled).toBeLessThan(A + LATE_MS);
    expect(promoted.t).toBeGreaterThanOrEqual(timedOut.t);
    expect(promoted.t - leaveCalled).toBeLessThan(A + LATE_MS);
    expect(promoted.reason).toBe('handover');
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});

describe('a slow deactivate handler on leave', () => {
  it('keeps the slot until the handler settled, even when that is later than the last renewal’s lease', async () => {
    const group = uniqueGroup('h');
    const timeline = new Timeline();
    const runs: HandlerRun[] = [];
    // Settles within its time limit A, but later than A after the last renewal before leave().
    const handlerMs = A - 10;
    const leaver = await join({
      group,
      memberId: 'leaver',
      weight: 20,
      onDeactivate: recordingHandler(runs, 'leaver', 'deactivate', handlerMs),
    });
    timeline.watch(leaver);
    const next = await join({ group, memberId: 'next', weight: 10 });
    timeline.watch(next);
    const nextActivations = eventsOf(next, 'activate');
    await waitFor(() => leaver.isActive(), 'leaver active');

    await leaveJustBeforeRenewal(leaver);
    await waitFor(() => next.isActive(), 'next active');

    const deactivated = runs[0];
    const promoted = nextActivations[0];
    expect(deactivated?.end).toBeDefined();
    // Demote before promote: no tolerance.
    expect(promoted?.t).toBeGreaterThanOrEqual(deactivated?.end ?? Number.POSITIVE_INFINITY);
    expect(promoted?.reason).toBe('handover');
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});

describe('actions', () => {
  it('starts the deactivate handler only after a slow activate handler settled', async () => {
    const group = uniqueGroup('h');
    const runs: HandlerRun[] = [];
    const member = await join({
      group,
      memberId: 'slow',
      weight: 10,
      onActivate: recordingHandler(runs, 'slow', 'activate', 200),
      onDeactivate: recordingHandler(runs, 'slow', 'deactivate', 20),
    });
    await waitFor(() => runs.length > 0, 'the activate handler to start');
    await member.leave();

    expect(runs.map((r) => r.action)).toEqual(['activate', 'deactivate']);
    const [activate, deactivate] = runs;
    expect(deactivate?.start).toBeGreaterThanOrEqual(activate?.end ?? Number.POSITIVE_INFINITY);
    expect(maxConcurrentHandlers(runs)).toBe(1);
  });

  it('delivers prepare, activate and deactivate one at a time and in order when a preemption arrives mid-activate', async () => {
    const group = uniqueGroup('h');
    const runs: HandlerRun[] = [];
    const withPrepare = { preparationInterval: 200 };
    await join({
      group,
      memberId: 'old',
      weight: 10,
      ...withPrepare,
      onPrepare: recordingHandler(runs, 'old', 'prepare', 60),
      onActivate: recordingHandler(runs, 'old', 'activate', 250),
      onDeactivate: recordingHandler(runs, 'old', 'deactivate', 60),
    });
    await waitFor(() => runs.some((r) => r.action === 'activate'), 'old’s activate handler to start');
    const newcomer = await join({
      group,
      memberId: 'newcomer',
      weight: 20,
      ...withPrepare,
      onActivate: recordingHandler(runs, 'newcomer', 'activate', 0),
    });
    await waitFor(() => newcomer.isActive(), 'newcomer active');
    await waitFor(() => runs.every((r) => r.end !== undefined), 'every handler to settle');

    const old = runs.filter((r) => r.member === 'old');
    expect(old.map((r) => r.action)).toEqual(['prepare', 'activate', 'deactivate']);
    for (let i = 1; i < old.length; i++) {
      expect(old[i]?.start).toBeGreaterThanOrEqual(old[i - 1]?.end ?? Number.POSITIVE_INFINITY);
    }
    expect(maxConcurrentHandlers(old)).toBe(1);
    // Demote before promote across members: no tolerance.
    const promoted = runs.find((r) => r.member === 'newcomer' && r.action === 'activate');
    expect(promoted?.start).toBeGreaterThanOrEqual(old[2]?.end ?? Number.POSITIVE_INFINITY);
  });

  it('still hands the slot over when the deactivate handler throws, and reports HANDLER_FAILED', async () => {
    const group = uniqueGroup('h');
    const timeline = new Timeline();
    const failure = new Error('flush failed');
    const leaver = await join({
      group,
      memberId: 'leaver',
      weight: 20,
      onDeactivate: () => {
        throw failure;
      },
    });
    timeline.watch(leaver);
    const errors: Error[] = [];
    leaver.on('error', (e) => errors.push(e));
    const next = await join({ group, memberId: 'next', weight: 10 });
    timeline.watch(next);
    await waitFor(() => leaver.isActive(), 'leaver active');

    await leaver.leave();
    await waitFor(() => next.isActive(), 'next active');
    // Handed over by the leave itself, not by the lease lapsing.
    expect(timeline.of('next', 'activate').map((e) => e.reason)).toEqual(['handover']);
    expect(errors[0]).toBeInstanceOf(HandlerError);
    expect(errors[0]).toMatchObject({ code: 'HANDLER_FAILED', action: 'deactivate', cause: failure });
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});

describe('listeners', () => {
  it('a listener that throws does not stop its member from renewing, activating and handing over', async () => {
    const group = uniqueGroup('h');
    const timeline = new Timeline();
    const renewals = new Map<string, number>();
    const unruly = (member: Member) => {
      // Counted first: a throwing listener stops later listeners of the same event.
      member.on('renewal', (r) => {
        if (r.outcome === 'ok') renewals.set(member.id, (renewals.get(member.id) ?? 0) + 1);
      });
      timeline.watch(member);
      for (const event of ['renewal', 'state', 'activate', 'deactivate', 'version', 'advisory', 'error'] as const) {
        member.on(event, () => {
          throw new Error(`listener of ${event} broke`);
        });
      }
      return member;
    };
    const first = unruly(await join({ group, memberId: 'first', weight: 20 }));
    const second = unruly(await join({ group, memberId: 'second', weight: 10 }));

    await waitFor(() => first.isActive(), 'first active');
    const before = { first: renewals.get('first') ?? 0, second: renewals.get('second') ?? 0 };
    await sleep(H * 8);
    // Eight heartbeats: a loaded machine may delay some, never half of them.
    expect((renewals.get('first') ?? 0) - before.first).toBeGreaterThanOrEqual(4);
    expect((renewals.get('second') ?? 0) - before.second).toBeGreaterThanOrEqual(4);
    expect(first.isActive()).toBe(true);
    expect(second.state).toBe('standby');

    await first.leave();
    await waitFor(() => second.isActive(), 'second active after first left');
    expect(first.state).toBe('left');
    expect(timeline.of('second', 'activate').map((e) => e.reason)).toEqual(['handover']);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});
