import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { describeGroup, joinGroup, type Monitor, monitorGroup, RedisUnavailableError } from '@understudy/core';
import { generateTlsFiles, type RedisServer, startRedis, type TlsFiles, testkitRoot } from '@understudy/testkit';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAST, MemberProcess, memberFactory, uniqueGroup, waitFor } from './helpers.js';

const A = FAST.activationInterval;
/** How much later than due a loaded 2-core machine may get something done. */
const LATE_MS = 1000;

let server: RedisServer;
let tls: TlsFiles;
/** A CA of its own, that signed neither the server's nor the client's certificate. */
let strangerDir: string;
let stranger: TlsFiles;

beforeAll(async () => {
  server = await startRedis({ tls: true });
  tls = server.tls as TlsFiles;
  strangerDir = mkdtempSync(joinPath(testkitRoot(), 'stranger-ca-'));
  stranger = generateTlsFiles(strangerDir, 'stranger-ca');
});
afterAll(async () => {
  await server?.stop();
  rmSync(strangerDir, { recursive: true, force: true });
});

const join = memberFactory(() => server);
const monitors: Monitor[] = [];
afterEach(async () => {
  await Promise.allSettled(monitors.splice(0).map((m) => m.close()));
});

/** An ioredis client that never connects: the library opens its own connections from its options. */
const client = (options: RedisOptions) => new Redis(server.url, { lazyConnect: true, ...options });

async function failure(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('the call succeeded; expected it to fail');
}

/** Connections the server holds (the kit's own admin connection excluded: it closes after each command). */
async function connectionCount(): Promise<number> {
  return (await server.admin('CLIENT', 'LIST')).split('\n').filter((l) => l.includes('name=understudy-')).length;
}

describe('a group over TLS (rediss://)', () => {
  it('runs members and a monitor: join, handover on leave, failover after a crash', async () => {
    expect(server.url).toMatch(/^rediss:\/\//);
    const ca = readFileSync(tls.ca);
    const group = uniqueGroup('tls');
    // Three ways to hand over TLS settings: a client, connection options, and (in the child
    // process) a plain rediss:// URL with the CA trusted through NODE_EXTRA_CA_CERTS.
    const first = await join({ group, memberId: 'first', weight: 30, redis: client({ tls: { ca } }) });
    const monitor = await monitorGroup({ redis: client({ tls: { ca } }), group });
    monitors.push(monitor);
    await waitFor(() => first.isActive(), 'first active', A * 2 + LATE_MS);
    const previousExtraCa = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = tls.ca;
    let crasher: MemberProcess;
    try {
      crasher = new MemberProcess({ url: server.url, group, memberId: 'crasher', weight: 20 });
    } finally {
      if (previousExtraCa === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = previousExtraCa;
    }
    await crasher.waitFor('joined', 20_000);
    const last = await join({
      group,
      memberId: 'last',
      weight: 10,
      redis: { host: '127.0.0.1', port: server.port, tls: { ca } },
    });
    await waitFor(() => monitor.snapshot().members.length === 3, 'the monitor to see three members');

    await first.leave();
    await crasher.waitFor('activate', A + LATE_MS);
    await waitFor(() => monitor.snapshot().members[0]?.id === 'crasher', 'the monitor to show crasher first');

    await crasher.kill('SIGKILL');
    await waitFor(() => last.isActive(), 'last active after the crash', A * 2 + LATE_MS);
    await waitFor(
      () =>
        monitor
          .snapshot()
          .members.map((m) => `${m.id}:${m.state}`)
          .join(' ') === 'last:active',
      'the monitor to show last alone and active',
    );
    const described = await describeGroup({ redis: client({ tls: { ca } }), group });
    expect(described.activeCount).toBe(1);
  });

  it('refuses to join a server whose certificate another CA signed, naming the certificate problem, and stops trying', async () => {
    const before = await connectionCount();
    const started = performance.now();
    const error = await failure(() =>
      joinGroup({
        ...FAST,
        redis: client({ tls: { ca: readFileSync(stranger.ca) } }),
        group: uniqueGroup('tls-wrong-ca'),
        weight: 1,
      }),
    );
    expect(performance.now() - started).toBeLessThan(A + LATE_MS);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    const { message } = error as Error;
    expect(message).toContain(`127.0.0.1:${server.port}`);
    expect(message).toContain('self-signed certificate in certificate chain');
    expect(message).toContain('not signed by a CA this client trusts');
    expect(await connectionCount()).toBe(before);

    const url = await failure(() => monitorGroup({ redis: server.url, group: uniqueGroup('tls-no-ca') }));
    expect(url).toBeInstanceOf(RedisUnavailableError);
    expect((url as Error).message).toMatch(/self-signed certificate in certificate chain \(TLS: .*tls\.ca/);
  });
});

describe('mutual TLS (tls-auth-clients yes)', () => {
  let mutual: RedisServer;
  beforeAll(async () => {
    mutual = await startRedis({ tls: { authClients: true } });
  });
  afterAll(() => mutual?.stop());

  it('lets in a member with a client certificate the CA signed', async () => {
    const files = mutual.tls as TlsFiles;
    const group = uniqueGroup('mtls');
    const redis = new Redis(mutual.url, {
      lazyConnect: true,
      tls: { ca: readFileSync(files.ca), cert: readFileSync(files.clientCert), key: readFileSync(files.clientKey) },
    });
    const member = await joinGroup({ ...FAST, redis, group, memberId: 'certified', weight: 5 });
    try {
      await waitFor(() => member.isActive(), 'the certified member active', A * 2 + LATE_MS);
    } finally {
      await member.leave();
    }
  });

  it('refuses a member without a client certificate, or with one another CA signed, saying so', async () => {
    const files = mutual.tls as TlsFiles;
    const ca = readFileSync(files.ca);
    for (const tlsOptions of [
      { ca },
      { ca, cert: readFileSync(stranger.clientCert), key: readFileSync(stranger.clientKey) },
    ]) {
      const started = performance.now();
      const error = await failure(() =>
        joinGroup({
          ...FAST,
          redis: new Redis(mutual.url, { lazyConnect: true, tls: tlsOptions }),
          group: uniqueGroup('mtls-refused'),
          weight: 1,
        }),
      );
      expect(performance.now() - started).toBeLessThan(A + LATE_MS);
      expect(error).toBeInstanceOf(RedisUnavailableError);
      const { message } = error as Error;
      expect(message).toContain(`cannot reach Redis at 127.0.0.1:${mutual.port}`);
      expect(message).toContain('the server closed the connection during the handshake');
      expect(message).toContain('cert' in tlsOptions ? 'it did not accept this one' : 'give one: tls.cert and tls.key');
    }
    expect(await mutual.admin('CLIENT', 'LIST')).not.toContain('name=understudy-');
  });
});
