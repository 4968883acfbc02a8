import { readFileSync } from 'node:fs';
import { type GroupSnapshot, joinGroup, type Member } from '@understudy/core';
import { type RedisServer, startRedis, type TlsFiles } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cli, killLeftoverClis, ProgramRecords, understudy, uniqueGroup, waitFor } from './helpers.js';

const H = 100;
const A = 1000;

let server: RedisServer;
let mutual: RedisServer;
const members: Member[] = [];
const records: ProgramRecords[] = [];

beforeAll(async () => {
  [server, mutual] = await Promise.all([startRedis({ tls: true }), startRedis({ tls: { authClients: true } })]);
});

afterAll(async () => {
  await Promise.all([server?.stop(), mutual?.stop()]);
});

afterEach(async () => {
  await Promise.allSettled(members.splice(0).map((m) => m.leave()));
  await killLeftoverClis();
  for (const r of records.splice(0)) r.remove();
});

const files = (s: RedisServer) => s.tls as TlsFiles;

/** A member in this process, over TLS with the server's CA (and client certificate, if the server asks for one). */
async function join(on: RedisServer, group: string, memberId: string): Promise<Member> {
  const f = files(on);
  const member = await joinGroup({
    redis: new Redis(on.url, {
      lazyConnect: true,
      tls: { ca: readFileSync(f.ca), cert: readFileSync(f.clientCert), key: readFileSync(f.clientKey) },
    }),
    group,
    memberId,
    weight: 10,
    heartbeatInterval: H,
    activationInterval: A,
  });
  members.push(member);
  return member;
}

describe('the command line over TLS', { timeout: 120_000 }, () => {
  it('shows a group with status --tls-ca, and says what is wrong without the CA (exit 3)', async () => {
    const group = uniqueGroup('tls-status');
    const member = await join(server, group, 'over-tls');
    await waitFor(() => member.isActive(), 'the member active', A * 3);

    const status = await understudy(['status', group, '--json', '--redis', server.url, '--tls-ca', files(server).ca]);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as GroupSnapshot).members.map((m) => `${m.id}:${m.state}`)).toEqual([
      'over-tls:active',
    ]);

    const untrusted = await understudy(['status', group, '--redis', server.url]);
    expect(untrusted.code).toBe(3);
    expect(untrusted.stderr).toContain('self-signed certificate in certificate chain');
    expect(untrusted.stderr).toContain('--tls-ca');
  });

  it('runs a program under mutual TLS with --tls-cert and --tls-key; without them it says the server wants one', async () => {
    const group = uniqueGroup('mtls-run');
    const f = files(mutual);
    const program = new ProgramRecords();
    records.push(program);
    const tlsFlags = ['--tls-ca', f.ca, '--tls-cert', f.clientCert, '--tls-key', f.clientKey];
    const wrapper = new Cli([
      'run',
      '--redis',
      mutual.url,
      ...tlsFlags,
      '--group',
      group,
      '--member-id',
      'certified',
      '--weight',
      '10',
      '--heartbeat',
      String(H),
      '--activation',
      String(A),
      '--',
      ...program.command('certified'),
    ]);
    await wrapper.waitForStderr(/joined group/);
    await program.waitForStart('certified');
    const status = await understudy(['status', group, '--json', '--redis', mutual.url, ...tlsFlags]);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as GroupSnapshot).activeCount).toBe(1);

    const refused = await understudy(['status', group, '--redis', mutual.url, '--tls-ca', f.ca]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('the server closed the connection during the handshake');
    expect(refused.stderr).toContain('--tls-cert and --tls-key');

    wrapper.signal('SIGTERM');
    expect((await wrapper.result()).code).toBe(0);
  });

  it('refuses TLS options that cannot work, with exit 2, naming them', async () => {
    const f = files(server);
    for (const [args, message] of [
      [['--redis', `redis://127.0.0.1:${server.port}`, '--tls-ca', f.ca], /--tls-ca needs a rediss:\/\/ URL/],
      [['--redis', server.url, '--tls-ca', '/nonexistent/ca.pem'], /--tls-ca \/nonexistent\/ca\.pem: ENOENT/],
      [['--redis', server.url, '--tls-cert', f.clientCert], /--tls-cert and --tls-key go together/],
      [['--redis', server.url, '--cluster', '127.0.0.1:7000'], /Sentinel and Cluster over TLS/],
      [['--redis', 'http://127.0.0.1:6379'], /scheme must be redis:\/\/ or rediss:\/\//],
      [['--redis', 'not a url'], /not a URL/],
    ] as const) {
      const result = await understudy(['status', 'g', ...args]);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });
});
