import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  plainRedis,
  RedisBinaryMissingError,
  type RedisServer,
  runTypeScript,
  startRedis,
  sweepLeftovers,
  testkitRoot,
} from '../src/index.js';

const clients: Redis[] = [];
function connect(server: RedisServer, options: RedisOptions = {}): Redis {
  const client = new Redis(server.url, { maxRetriesPerRequest: 1, ...options });
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

/** Alive and not a zombie (an orphan's zombie lingers where PID 1 does not reap). */
function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Runs the fixture in its own process; resolves with the pids it printed. */
function runFixture(mode: 'exit' | 'hang', root: string) {
  const child = spawn(
    process.execPath,
    [...runTypeScript(), join(import.meta.dirname, 'fixtures/leave-servers-running.ts'), mode],
    { env: { ...process.env, UNDERSTUDY_TESTKIT_ROOT: root }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pids = new Promise<number[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(JSON.parse(out) as number[]);
    });
    child.once('exit', () => reject(new Error(`fixture exited before printing pids: ${out}`)));
  });
  return { child, pids, exited };
}

describe('startRedis', () => {
  it('starts a server on a free port that answers commands', async () => {
    const server = await startRedis();
    expect(server.kind).toBe('process');
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.pid).toBeGreaterThan(0);
    const redis = connect(server);
    await redis.set('greeting', 'hello');
    expect(await redis.get('greeting')).toBe('hello');
    expect(await redis.config('GET', 'save')).toEqual(['save', '']);
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
  });

  it('gives every server its own port, process and directory', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    expect(a?.port).not.toBe(b?.port);
    expect(a?.pid).not.toBe(b?.pid);
  });

  it('comes back empty on the same port after SIGKILL and a restart without data', async () => {
    const server = await startRedis();
    const port = server.port;
    const redis = connect(server);
    await redis.set('k', 'v');
    const oldPid = server.pid as number;
    await server.kill('SIGKILL');
    expect(server.running).toBe(false);
    expect(isRunning(oldPid)).toBe(false);
    await server.restart({ keepData: false });
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(oldPid);
    const fresh = connect(server);
    expect(await fresh.get('k')).toBeNull();
  });

  it('keeps the data across a restart of a running server', async () => {
    const server = await startRedis();
    await connect(server).set('k', 'kept');
    await server.restart();
    expect(await connect(server).get('k')).toBe('kept');
  });

  it('keeps every acknowledged write across SIGKILL with appendfsync always', async () => {
    const server = await startRedis({ appendOnly: 'always' });
    await connect(server).set('k', 'durable');
    await server.kill('SIGKILL');
    await server.restart();
    expect(await connect(server).get('k')).toBe('durable');
  });

  it('makes commands time out while paused (SIGSTOP) and answers again after SIGCONT', async () => {
    const server = await startRedis();
    const redis = connect(server, { commandTimeout: 200 });
    await redis.ping();
    await server.pause();
    expect(server.paused).toBe(true);
    await expect(redis.ping()).rejects.toThrow(/timed out/i);
    await server.resume();
    expect(server.paused).toBe(false);
    expect(await redis.ping()).toBe('PONG');
  });

  it('honours an ACL file', async () => {
    const server = await startRedis({
      acl: ['user default off', 'user reader on >secret ~app:* +get +ping', 'user writer on >secret ~app:* +@all'],
    });
    const writer = connect(server, { username: 'writer', password: 'secret' });
    // The reader may not run INFO, which ioredis's ready check sends.
    await writer.set('app:x', '1');
    const reader = connect(server, { username: 'reader', password: 'secret', enableReadyCheck: false });
    expect(await reader.get('app:x')).toBe('1');
    await expect(reader.set('app:x', '2')).rejects.toThrow(/NOPERM/);
    await expect(reader.get('other')).rejects.toThrow(/NOPERM/);
    const anonymous = connect(server, { enableReadyCheck: false });
    await expect(anonymous.get('app:x')).rejects.toThrow(/NOAUTH/);
  });

  it('requires the password it was given, and puts it in the URL', async () => {
    const server = await startRedis({ password: 'p@ss word' });
    expect(server.url).toContain(encodeURIComponent('p@ss word'));
    expect(await connect(server).ping()).toBe('PONG');
    expect(await server.admin('PING')).toBe('+PONG');
    const port = server.port;
    const anonymous = connect({ ...server, url: `redis://127.0.0.1:${port}` } as RedisServer);
    await expect(anonymous.get('x')).rejects.toThrow(/NOAUTH/);
  });

  it('enables the DEBUG command on request only', async () => {
    const plain = await startRedis();
    await expect(connect(plain).call('DEBUG', 'SLEEP', '0')).rejects.toThrow(/DEBUG command not allowed/);
    const debug = await startRedis({ enableDebugCommand: true });
    expect(await connect(debug).call('DEBUG', 'SLEEP', '0')).toBe('OK');
  });

  it('stops the process and removes its directory, idempotently', async () => {
    const server = await startRedis();
    const pid = server.pid as number;
    await server.stop();
    await server.stop();
    expect(isRunning(pid)).toBe(false);
    expect(server.running).toBe(false);
  });

  it('names the way to install redis-server when the binary is missing', async () => {
    const saved = process.env.UNDERSTUDY_REDIS_SERVER;
    process.env.UNDERSTUDY_REDIS_SERVER = '/nonexistent/redis-server';
    try {
      const error = await startRedis().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisBinaryMissingError);
      expect((error as Error).message).toMatch(/apt-get install redis-server/);
      expect((error as Error).message).toContain('/nonexistent/redis-server');
    } finally {
      if (saved === undefined) delete process.env.UNDERSTUDY_REDIS_SERVER;
      else process.env.UNDERSTUDY_REDIS_SERVER = saved;
    }
  });
});

describe('clean-up', () => {
  it('kills the servers of a process that exits without stopping them', async () => {
    const root = mkdtempSync(join(testkitRoot(), 'nested-'));
    const fixture = runFixture('exit', root);
    const pids = await fixture.pids;
    await fixture.exited;
    await sleep(50);
    for (const pid of pids) expect(isRunning(pid)).toBe(false);
    expect(sweepLeftovers(root)).toEqual([]);
  });

  it('sweeps the servers of a process that was SIGKILLed', async () => {
    const root = mkdtempSync(join(testkitRoot(), 'nested-'));
    try {
      const fixture = runFixture('hang', root);
      const pids = await fixture.pids;
      fixture.child.kill('SIGKILL');
      await fixture.exited;
      for (const pid of pids) expect(isRunning(pid)).toBe(true);
      expect(sweepLeftovers(root).sort()).toEqual([...pids].sort());
      await sleep(50);
      for (const pid of pids) expect(isRunning(pid)).toBe(false);
    } finally {
      sweepLeftovers(root);
    }
  });
});

describe('plainRedis', () => {
  it('uses the server at REDIS_URL when it is set, refuses to fault it, and leaves it running', async () => {
    const shared = await startRedis();
    const saved = process.env.REDIS_URL;
    process.env.REDIS_URL = shared.url;
    try {
      const plain = await plainRedis();
      expect(plain.kind).toBe('external');
      expect(plain.url).toBe(shared.url);
      expect(plain.port).toBe(shared.port);
      await expect(plain.kill()).rejects.toThrow(/REDIS_URL .* is shared and is never faulted/);
      await expect(plain.pause()).rejects.toThrow(/never faulted/);
      await plain.stop();
      expect(await connect(plain).ping()).toBe('PONG');
    } finally {
      if (saved === undefined) delete process.env.REDIS_URL;
      else process.env.REDIS_URL = saved;
    }
  });

  it('starts a server of its own when REDIS_URL is not set', async () => {
    const saved = process.env.REDIS_URL;
    delete process.env.REDIS_URL;
    try {
      const plain = await plainRedis();
      expect(plain.kind).toBe('process');
      expect(await connect(plain).ping()).toBe('PONG');
    } finally {
      if (saved !== undefined) process.env.REDIS_URL = saved;
    }
  });
});
