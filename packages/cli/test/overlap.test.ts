import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { joinGroup } from '@understudy/core';
import { type ChaosProxy, type RedisServer, startChaosProxy, startRedis } from '@understudy/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Cli,
  hrNow,
  killLeftoverClis,
  overlapMs,
  processesOfGroup,
  uniqueGroup,
  WRITER,
  waitFor,
  writerRuns,
} from './helpers.js';

// Items 1–4 of issue 19: every process of the program, and only on one member at a time.
// Two wrappers run the timestamp writer (one shared file, a write every 10 ms); the file
// shows whether their programs ever wrote at once.
const H = 100;
const A = 1000;

let server: RedisServer;
let dir: string;
const groups: string[] = [];
const proxies: ChaosProxy[] = [];

beforeAll(async () => {
  server = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'understudy-overlap-'));
});

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const cli of await killLeftoverClis()) cli.signal('SIGCONT');
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await sleep(300); // pdeathsig: a SIGKILLed wrapper's program goes a moment later
  const orphans = groups.splice(0).flatMap(processesOfGroup);
  for (const pid of orphans) process.kill(pid, 'SIGKILL');
  expect(orphans, 'programs still running after the test').toEqual([]);
});

interface Pair {
  group: string;
  file: string;
  high: Cli;
  low: Cli;
}

/**
 * Two wrappers of the writer: `high` (weight 200) active, `low` (weight 100) standing by. A
 * placeholder member holds the slot until both have joined, so `high` is active before `low`
 * is needed, however long their start-ups take.
 */
async function pair(label: string, program: (file: string, member: string) => string[], options: PairOptions = {}) {
  const group = uniqueGroup(label);
  groups.push(group);
  const file = join(dir, `${group}.log`);
  const placeholder = await joinGroup({
    redis: server.url,
    group,
    memberId: 'placeholder',
    weight: 65535,
    heartbeatInterval: H,
    activationInterval: A,
  });
  await waitFor(() => placeholder.state === 'active', 'the placeholder to be active', A + 5000);
  const wrapper = (member: string, weight: number, redis: string) =>
    new Cli([
      'run',
      '--redis',
      redis,
      '--group',
      group,
      '--member-id',
      member,
      '--weight',
      String(weight),
      '--heartbeat',
      String(H),
      '--activation',
      String(A),
      ...(options.wrapper ?? []),
      '--',
      ...program(file, member),
    ]);
  const high = wrapper('high', 200, options.highRedis ?? server.url);
  const low = wrapper('low', 100, server.url);
  await high.waitForStderr(/joined group/);
  await low.waitForStderr(/joined group/);
  await placeholder.leave();
  await waitFor(() => writerRuns(file).some((r) => r.label === 'high'), `high's program to write`, 5000);
  return { group, file, high, low } satisfies Pair;
}

interface PairOptions {
  wrapper?: string[];
  highRedis?: string;
}

const writer =
  (...flags: string[]) =>
  (file: string, member: string) => [process.execPath, WRITER, file, member, ...flags];
/** `sh -c 'writer & wait'`: the main process (the shell) exits at once on SIGTERM; the writer does not. */
const shellWithWriter =
  (...flags: string[]) =>
  (file: string, member: string) => [
    '/bin/sh',
    '-c',
    `"${process.execPath}" "${WRITER}" "${file}" ${member} ${flags.join(' ')} & wait`,
  ];

/** Waits until `low` took over and wrote for a while, then stops both; returns the overlap. */
async function overlapAfterTakeover({ file, high, low }: Pair, watchMs: number): Promise<number> {
  await waitFor(() => writerRuns(file).some((r) => r.label === 'low'), `low's program to write`, 10_000);
  await sleep(watchMs);
  high.signal('SIGCONT');
  for (const cli of [high, low]) if (cli.running) cli.signal('SIGTERM');
  await Promise.all([high.result(), low.result()]);
  await sleep(200);
  const runs = writerRuns(file);
  const overlap = overlapMs(runs);
  console.info(
    `${file}: ${runs.map((r) => `${r.label}/${r.pid} ${r.first.toFixed(0)}–${r.last.toFixed(0)}`).join(', ')}; overlap ${overlap.toFixed(0)} ms`,
  );
  return overlap;
}

describe('understudy run never runs the program on two members at once', { timeout: 120_000 }, () => {
  it.each([
    { shutdown: 'needs 1 s to stop', flags: ['--term-delay', '1000'] },
    { shutdown: 'ignores SIGTERM', flags: ['--ignore-term'] },
  ])(
    'item 1: waits for the whole process group on a handover, when a child of the program $shutdown',
    async ({ flags }) => {
      const p = await pair('group-stop', shellWithWriter(...flags));
      p.high.signal('SIGTERM');
      const { code, stderr } = await p.high.result();
      expect(code, stderr).toBe(0);
      expect(await overlapAfterTakeover(p, 1000)).toBe(0);
    },
  );

  it('item 2: kills what is left of the program’s process group when it exits by itself, before leaving', async () => {
    const p = await pair('exit-early', writer('--fork', '--exit-after', '300'));
    const { code, stderr } = await p.high.result();
    expect(code, stderr).toBe(0);
    expect(await overlapAfterTakeover(p, 1000)).toBe(0);
  });

  it('takes the program’s whole process group with it when the wrapper is SIGKILLed', async () => {
    const p = await pair('sigkill-fork', writer('--fork'));
    p.high.signal('SIGKILL');
    expect((await p.high.result()).signal).toBe('SIGKILL');
    expect(await overlapAfterTakeover(p, 1000)).toBe(0);
  });

  it('item 3: cut off from Redis, stops the program (SIGKILL included) before its lease can lapse', async () => {
    const proxy = await startChaosProxy({ target: { host: server.host, port: server.port } });
    proxies.push(proxy);
    const p = await pair('cut-off', writer('--ignore-term'), {
      highRedis: proxy.url(server.url),
      wrapper: ['--stop-timeout', '500'],
    });
    proxy.blackhole(true);
    expect(await overlapAfterTakeover(p, 1000)).toBe(0);
  });

  it('item 4: refuses Ctrl-Z (SIGTSTP): it stays active and the program alone keeps running', async () => {
    const p = await pair('ctrl-z', writer());
    p.high.signal('SIGTSTP');
    await sleep(3 * A);
    const low = writerRuns(p.file).filter((r) => r.label === 'low');
    expect(low, 'the standby started its program').toEqual([]);
    expect(p.high.stderr).toContain('cannot be suspended');
    // The same member is still active: its program wrote throughout.
    expect(
      writerRuns(p.file)
        .filter((r) => r.label === 'high')
        .at(-1)?.last,
    ).toBeGreaterThan(hrNow() - 500);
    p.high.signal('SIGTERM');
    expect(await overlapAfterTakeover(p, 1000)).toBe(0);
  });
});
