import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { joinGroup, type Member } from '@understudy/core';
import { runTypeScript, startCluster, startSentinelSet } from '@understudy/testkit';
import { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';

const bin = join(import.meta.dirname, '../bin/understudy.js');

/** Runs the CLI without blocking this process: the members under test live here and must keep renewing. */
function understudy(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...runTypeScript(), bin, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function activeMember(redis: Parameters<typeof joinGroup>[0]['redis'], group: string): Promise<Member> {
  const member = await joinGroup({
    redis,
    group,
    memberId: 'solo',
    weight: 5,
    heartbeatInterval: 100,
    activationInterval: 3000,
  });
  for (let i = 0; i < 300 && !member.isActive(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(member.isActive()).toBe(true);
  return member;
}

describe('connecting through Cluster and Sentinel', () => {
  it('reads a group on a Redis Cluster with --cluster', async () => {
    const cluster = await startCluster();
    const client = new Cluster(cluster.startupNodes, { lazyConnect: true });
    const member = await activeMember(client, 'on-cluster');
    try {
      const nodes = cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',');
      const { code, stdout } = await understudy('status', 'on-cluster', '--json', '--cluster', nodes);
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ group: 'on-cluster', activeCount: 1, members: [{ id: 'solo' }] });
    } finally {
      await member.leave();
      client.disconnect();
      await cluster.stop();
    }
  });

  it('reads a group through Sentinel with --sentinel and --master-name', async () => {
    const set = await startSentinelSet();
    const member = await activeMember({ sentinels: set.sentinelAddresses, name: set.masterName }, 'on-sentinel');
    try {
      const sentinels = set.sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(',');
      const ok = await understudy(
        'status',
        'on-sentinel',
        '--json',
        '--sentinel',
        sentinels,
        '--master-name',
        set.masterName,
      );
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ group: 'on-sentinel', activeCount: 1 });
      const missingName = await understudy('status', '--sentinel', sentinels);
      expect(missingName.code).toBe(2);
      expect(missingName.stderr).toContain('--sentinel needs --master-name');
      const badList = await understudy('status', '--cluster', 'localhost');
      expect(badList.code).toBe(2);
      expect(badList.stderr).toContain('"localhost" is not host:port');
    } finally {
      await member.leave();
      await set.stop();
    }
  });
});
