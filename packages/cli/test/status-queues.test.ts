// `understudy status` lists the distributed queues beside the groups: one line each, in JSON
// too, and a queue that cannot be read with its error.
import { enqueue, type GroupSnapshot, joinGroup, type Member, type QueueSnapshot, queueKeys } from '@understudy/core';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { fileFixture, understudy, uniqueGroup, waitFor } from './helpers.js';

const H = 100;
const A = 1000;

const { server, members } = fileFixture();

function untilActive(member: Member, timeoutMs = A + 5000): Promise<true> {
  return waitFor(() => member.state === 'active', `${member.id} to be active`, timeoutMs);
}

interface StatusGroup extends GroupSnapshot {
  transitions: unknown[];
}

describe('understudy status with queues', { timeout: 90_000 }, () => {
  it('lists queues beside groups, one line each, and in JSON', async () => {
    // Database 4 of the server: only this group and these queues.
    const db = `${server().url}/4`;
    const group = uniqueGroup('beside');
    const queues = ['zeta', 'alpha'].map((n) => uniqueGroup(`queue-${n}`));
    const member = await joinGroup({
      redis: db,
      group,
      memberId: 'm',
      weight: 10,
      heartbeatInterval: H,
      activationInterval: A,
    });
    members.push(member);
    await untilActive(member);
    // No worker in this process (it is a group member): the tasks wait.
    await enqueue({ redis: db, queue: queues[0] as string }, 'a');
    await enqueue({ redis: db, queue: queues[0] as string }, 'b');
    await enqueue({ redis: db, queue: queues[1] as string }, 'c');

    const [text, asJson] = await Promise.all([
      understudy(['status', '--redis', db]),
      understudy(['status', '--json', '--redis', db]),
    ]);

    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^GROUP\s+ACTIVE/);
    expect(lines[1]).toMatch(new RegExp(`^${group}\\s+1/1\\s+1\\s`));
    expect(lines[2]).toBe('');
    expect(lines[3]).toMatch(/^QUEUE\s+DEPTH\s+WORKERS\s+IN FLIGHT\s+DEAD\s+QUARANTINE$/);
    const [alpha, zeta] = [...queues].sort();
    expect(lines[4]).toMatch(new RegExp(`^${alpha}\\s+1\\s+0\\s+0\\s+0\\s+-$`));
    expect(lines[5]).toMatch(new RegExp(`^${zeta}\\s+2\\s+0\\s+0\\s+0\\s+-$`));
    expect(lines[6]).toBe('1 group, 2 queues · details: understudy status <group>, understudy queue <queue>');
    expect(asJson.code, asJson.stderr).toBe(0);
    const shown = JSON.parse(asJson.stdout) as { groups: StatusGroup[]; queues: QueueSnapshot[]; failed: unknown[] };
    expect(shown.groups.map((g) => g.group)).toEqual([group]);
    expect(shown.queues).toMatchObject([
      { queue: alpha, depth: 1, inFlight: 0, dead: 0, workers: [] },
      { queue: zeta, depth: 2, inFlight: 0, dead: 0, workers: [] },
    ]);
    expect(shown.failed).toEqual([]);
  });

  it('lists a queue that cannot be read with its error, beside the others, and exits 1', async () => {
    const db = `${server().url}/6`;
    const [healthy, corrupt] = [uniqueGroup('a-queue'), uniqueGroup('b-queue')];
    await enqueue({ redis: db, queue: healthy }, 'a');
    await enqueue({ redis: db, queue: corrupt }, 'b');
    const admin = new Redis(db);
    try {
      await admin.set(queueKeys(corrupt).dead, 'not a stream');

      const [text, asJson] = await Promise.all([
        understudy(['status', '--redis', db]),
        understudy(['status', '--json', '--redis', db]),
      ]);

      expect(text.code, text.stderr).toBe(1);
      expect(text.stdout).toMatch(new RegExp(`^${healthy}\\s+1\\s+0\\s+0\\s+0\\s+-$`, 'm'));
      expect(text.stdout).toMatch(new RegExp(`^${corrupt}\\s+\\?.*cannot be read: .*${corrupt}.*not a stream`, 'm'));
      expect(text.stdout.trimEnd().split('\n').at(-1)).toBe(
        '2 queues, 1 unreadable · details: understudy queue <queue>',
      );
      expect(asJson.code).toBe(1);
      const parsed = JSON.parse(asJson.stdout) as { queues: QueueSnapshot[]; failed: { queue: string }[] };
      expect(parsed.queues.map((q) => q.queue)).toEqual([healthy]);
      expect(parsed.failed.map((f) => f.queue)).toEqual([corrupt]);
    } finally {
      await admin.flushdb();
      admin.disconnect();
    }
  });
});
