import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ChaosProxy, liveServerCount, type RedisServer, startChaosProxy, startRedis } from '../src/index.js';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});

const clients: Redis[] = [];
const sockets: Socket[] = [];
const proxies: ChaosProxy[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

async function proxyToRedis(): Promise<ChaosProxy> {
  const proxy = await startChaosProxy({ target: server });
  proxies.push(proxy);
  return proxy;
}

function connectTo(url: string, options: RedisOptions = {}): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, ...options });
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

async function roundTripMs(client: Redis): Promise<number> {
  const start = performance.now();
  await client.ping();
  return performance.now() - start;
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** A raw RESP connection through the proxy, collecting whatever arrives. */
async function rawConnection(proxy: ChaosProxy): Promise<{ socket: Socket; received: () => string }> {
  const socket = connect({ host: proxy.host, port: proxy.port });
  sockets.push(socket);
  socket.on('error', () => undefined);
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('utf8');
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, received: () => received };
}

describe('chaos proxy', () => {
  it('forwards commands to Redis and replies back', async () => {
    const proxy = await proxyToRedis();
    expect(proxy.host).toBe('127.0.0.1');
    expect(proxy.port).not.toBe(server.port);
    const client = connectTo(proxy.url());
    await client.set('proxied', 'yes');
    expect(await client.get('proxied')).toBe('yes');
    expect(proxy.connectionCount).toBe(1);
  });

  it('rewrites a Redis URL to point at itself, keeping password and database', async () => {
    const secured = await startRedis({ password: 's3cret' });
    const proxy = await startChaosProxy({ target: secured });
    proxies.push(proxy);
    const url = proxy.url(`${secured.url}/3`);
    expect(url).toBe(`redis://:s3cret@127.0.0.1:${proxy.port}/3`);
    await connectTo(url).set('in-db-3', 'x');
    expect(await connectTo(secured.url, { db: 3 }).get('in-db-3')).toBe('x');
  });

  it('holds every chunk in both directions for the configured delay', async () => {
    const proxy = await proxyToRedis();
    const client = connectTo(proxy.url());
    await client.ping();
    proxy.setDelay(100);
    // One delay each way: a round trip takes at least twice the delay.
    expect(await roundTripMs(client)).toBeGreaterThanOrEqual(0.8 * 200);
  });

  it('varies the hold time of each chunk by up to the jitter', async () => {
    const proxy = await proxyToRedis();
    const client = connectTo(proxy.url());
    await client.ping();
    proxy.setDelay(60, 50);
    const samples: number[] = [];
    for (let i = 0; i < 15; i++) samples.push(await roundTripMs(client));
    // Each way holds 10..110 ms: never less than 20 ms in all, and fifteen round trips spread out.
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0.8 * 20);
    expect(Math.max(...samples) - Math.min(...samples)).toBeGreaterThanOrEqual(20);
  });

  it('never reorders chunks within one direction, even with jitter wider than the gap between them', async () => {
    const proxy = await proxyToRedis();
    const client = connectTo(proxy.url());
    await client.ping();
    proxy.setDelay(20, 19);
    const replies: Promise<string>[] = [];
    for (let i = 0; i < 60; i++) {
      replies.push(client.echo(`message-${i}`));
      await sleep(1); // each command leaves in its own chunk
    }
    expect(await Promise.all(replies)).toEqual(Array.from({ length: 60 }, (_, i) => `message-${i}`));
  });

  it('loses bytes sent during a blackhole and delivers nothing of them after it heals', async () => {
    const proxy = await proxyToRedis();
    const { socket, received } = await rawConnection(proxy);
    socket.write('PING\r\n');
    await waitFor(() => received() === '+PONG\r\n');
    proxy.blackhole(true);
    socket.write('ECHO lost\r\n');
    await sleep(300);
    expect(received()).toBe('+PONG\r\n');
    proxy.heal();
    socket.write('ECHO after\r\n');
    await waitFor(() => received().length > '+PONG\r\n'.length);
    await sleep(50);
    expect(received()).toBe('+PONG\r\n$5\r\nafter\r\n');
  });

  it('keeps the connection open during a blackhole, so only a command timeout notices', async () => {
    const proxy = await proxyToRedis();
    const client = connectTo(proxy.url(), { commandTimeout: 200 });
    await client.ping();
    const closings: string[] = [];
    client.on('close', () => closings.push('close'));
    client.on('end', () => closings.push('end'));
    proxy.blackhole(true);
    await expect(client.ping()).rejects.toThrow(/timed out/i);
    await sleep(300);
    expect(closings).toEqual([]);
    expect(proxy.connectionCount).toBe(1);
    proxy.heal();
    // The timed-out PING stays in ioredis's reply queue and its request was lost, so the old
    // connection would pair every later reply with the wrong command: use a new one.
    expect(await connectTo(proxy.url(), { commandTimeout: 1000 }).ping()).toBe('PONG');
  });

  it('reset aborts every open connection with an RST on both sides', async () => {
    const proxy = await proxyToRedis();
    const observer = connectTo(server.url);
    const clientCount = async () =>
      String(await observer.client('LIST'))
        .trim()
        .split('\n').length;
    const baseline = await clientCount();
    const client = connectTo(proxy.url(), { retryStrategy: () => null });
    await client.ping();
    expect(await clientCount()).toBe(baseline + 1);
    const errors: string[] = [];
    client.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
    const closed = new Promise((resolve) => client.once('close', resolve));
    proxy.reset();
    await closed;
    expect(errors).toContain('ECONNRESET');
    expect(proxy.connectionCount).toBe(0);
    await waitFor(async () => (await clientCount()) === baseline);
  });

  it('refuse resets new connections while open ones keep working', async () => {
    const proxy = await proxyToRedis();
    const established = connectTo(proxy.url());
    await established.ping();
    proxy.refuse(true);
    const refused = connectTo(proxy.url(), { lazyConnect: true, retryStrategy: () => null });
    const errors: string[] = [];
    refused.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
    await expect(refused.connect()).rejects.toThrow();
    expect(errors).toContain('ECONNRESET');
    expect(await established.ping()).toBe('PONG');
    proxy.refuse(false);
    expect(await connectTo(proxy.url()).ping()).toBe('PONG');
  });

  it('heal clears delay, blackhole and refusal at once', async () => {
    const proxy = await proxyToRedis();
    proxy.setDelay(2000, 100);
    proxy.blackhole(true);
    proxy.refuse(true);
    proxy.heal();
    const client = connectTo(proxy.url(), { commandTimeout: 5000 });
    await client.ping();
    // Still delayed, a round trip would take 4 s.
    expect(await roundTripMs(client)).toBeLessThan(2000);
  });

  it('close ends every connection and stops listening, idempotently', async () => {
    const proxy = await proxyToRedis();
    const client = connectTo(proxy.url(), { retryStrategy: () => null });
    await client.ping();
    const closed = new Promise((resolve) => client.once('close', resolve));
    await proxy.close();
    await proxy.close();
    await closed;
    const late = connectTo(proxy.url(), { lazyConnect: true, retryStrategy: () => null });
    const errors: string[] = [];
    late.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
    await expect(late.connect()).rejects.toThrow();
    expect(errors).toContain('ECONNREFUSED');
  });

  it('is tracked until closed, so the suite closes a proxy a test forgot', async () => {
    const before = liveServerCount();
    const proxy = await proxyToRedis();
    expect(liveServerCount()).toBe(before + 1);
    await proxy.close();
    expect(liveServerCount()).toBe(before);
  });

  it('is a WAN link with setDelay(15, 5): round trips centre on 30 ms and spread by the jitter', async () => {
    const proxy = await proxyToRedis();
    const client = connectTo(proxy.url());
    await client.ping();
    proxy.setDelay(15, 5);
    const samples: number[] = [];
    for (let i = 0; i < 41; i++) samples.push(await roundTripMs(client));
    samples.sort((a, b) => a - b);
    const at = (q: number) => samples[Math.floor(q * (samples.length - 1))] as number;
    // Each way holds 10..20 ms: never below 20 ms in all; the median of the sum is 30 ms, plus
    // timer granularity and a loaded machine's scheduling, a few ms at most.
    expect(at(0)).toBeGreaterThanOrEqual(20 - 1);
    expect(at(0.5)).toBeGreaterThanOrEqual(30 - 3);
    expect(at(0.5)).toBeLessThanOrEqual(30 + 8);
    expect(at(0.9) - at(0.1)).toBeGreaterThanOrEqual(2);
  });

  it('delays one direction only: a round trip costs that one delay, not two', async () => {
    const proxy = await proxyToRedis();
    const client = connectTo(proxy.url());
    await client.ping();
    for (const direction of ['to-server', 'to-client'] as const) {
      proxy.setDelay(60, 0, direction);
      expect(proxy.faultsOf(direction)).toEqual({ delayMs: 60, jitterMs: 0, blackhole: false });
      const other = direction === 'to-server' ? 'to-client' : 'to-server';
      expect(proxy.faultsOf(other).delayMs).toBe(0);
      const samples = [await roundTripMs(client), await roundTripMs(client), await roundTripMs(client)];
      expect(Math.min(...samples)).toBeGreaterThanOrEqual(60 - 1);
      // Two delays would be 120 ms; one plus scheduling stays well below.
      expect(Math.min(...samples)).toBeLessThan(100);
      proxy.heal();
    }
  });

  it('keeps client → server bytes in order under jitter wider than the gap between chunks', async () => {
    const proxy = await proxyToRedis();
    const client = connectTo(proxy.url());
    const list = `order-${proxy.port}`;
    await client.ping();
    proxy.setDelay(15, 14, 'to-server');
    const pushes: Promise<number>[] = [];
    for (let i = 0; i < 60; i++) {
      pushes.push(client.rpush(list, String(i)));
      await sleep(1); // each command leaves in its own chunk
    }
    await Promise.all(pushes);
    // Read straight from Redis: the order in which the commands arrived there.
    const direct = connectTo(server.url);
    expect(await direct.lrange(list, 0, -1)).toEqual(Array.from({ length: 60 }, (_, i) => String(i)));
  });

  it('blackholes client → server only: commands never reach Redis while what Redis sends still arrives', async () => {
    const proxy = await proxyToRedis();
    const channel = `one-way-${proxy.port}`;
    const subscriber = connectTo(proxy.url());
    const messages: string[] = [];
    subscriber.on('message', (_channel: string, message: string) => messages.push(message));
    await subscriber.subscribe(channel);
    const writer = connectTo(proxy.url(), { commandTimeout: 300 });
    await writer.ping();
    const direct = connectTo(server.url);
    proxy.blackhole(true, 'to-server');
    expect(proxy.blackholed).toBe(true);
    expect(proxy.faultsOf('to-client').blackhole).toBe(false);
    await expect(writer.set(`${channel}:key`, 'lost')).rejects.toThrow(/timed out/i);
    expect(await direct.get(`${channel}:key`)).toBeNull();
    await direct.publish(channel, 'still-flows');
    await waitFor(() => messages.includes('still-flows'));
    proxy.blackhole(false, 'to-server');
    expect(proxy.blackholed).toBe(false);
    expect(await connectTo(proxy.url()).set(`${channel}:key`, 'after')).toBe('OK');
    expect(await direct.get(`${channel}:key`)).toBe('after');
  });

  it('blackholes server → client only: commands reach Redis, their replies and messages never come back', async () => {
    const proxy = await proxyToRedis();
    const channel = `other-way-${proxy.port}`;
    const subscriber = connectTo(proxy.url());
    const messages: string[] = [];
    subscriber.on('message', (_channel: string, message: string) => messages.push(message));
    await subscriber.subscribe(channel);
    const writer = connectTo(proxy.url(), { commandTimeout: 300 });
    await writer.ping();
    const direct = connectTo(server.url);
    proxy.blackhole(true, 'to-client');
    await expect(writer.set(`${channel}:key`, 'applied')).rejects.toThrow(/timed out/i);
    // The request went through: Redis ran it.
    expect(await direct.get(`${channel}:key`)).toBe('applied');
    await direct.publish(channel, 'lost');
    await sleep(200);
    expect(messages).toEqual([]);
    expect(proxy.connectionCount).toBe(2);
    proxy.heal();
    expect(await connectTo(proxy.url()).get(`${channel}:key`)).toBe('applied');
  });

  it('lifts a one-way blackhole without touching the other direction, and names a bad direction', async () => {
    const proxy = await proxyToRedis();
    proxy.blackhole(true);
    proxy.blackhole(false, 'to-client');
    expect(proxy.faultsOf('to-server').blackhole).toBe(true);
    expect(proxy.faultsOf('to-client').blackhole).toBe(false);
    expect(() => proxy.blackhole(true, 'up' as never)).toThrow(/'to-server', 'to-client' or 'both', got up/);
    expect(() => proxy.setDelay(5, 0, 'down' as never)).toThrow(/got down/);
  });

  it('rejects a negative or non-finite delay, naming the field', async () => {
    const proxy = await proxyToRedis();
    expect(() => proxy.setDelay(-1)).toThrow(/delayMs .* got -1/);
    expect(() => proxy.setDelay(10, Number.NaN)).toThrow(/jitterMs .* got NaN/);
  });
});
