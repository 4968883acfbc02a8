import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startRedis } from '../src/index.js';

/** What a plain-TCP client hears after sending PING: a TLS-only port answers nothing it can read. */
function plainPing(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'));
    let heard = '';
    socket.on('data', (chunk: Buffer) => {
      heard += chunk.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(heard));
    socket.setTimeout(2000, () => socket.destroy());
  });
}

describe('startRedis({ tls })', () => {
  it('serves TLS only, with certificates it generated, keeps them across a restart, and removes them on stop', async () => {
    const server = await startRedis({ tls: true });
    try {
      expect(server.url).toBe(`rediss://127.0.0.1:${server.port}`);
      const files = server.tls;
      expect(files).toBeDefined();
      if (!files) return;
      for (const file of Object.values(files)) expect(existsSync(file)).toBe(true);
      expect(await server.admin('PING')).toBe('+PONG');
      expect(await plainPing(server.port)).not.toContain('+PONG');

      const ca = readFileSync(files.ca);
      const client = new Redis(server.url, { tls: { ca }, maxRetriesPerRequest: 1 });
      try {
        expect(await client.ping()).toBe('PONG');
      } finally {
        client.disconnect();
      }
      await server.restart();
      expect(readFileSync(files.ca).equals(ca)).toBe(true);
      expect(await server.admin('PING')).toBe('+PONG');
    } finally {
      await server.stop();
    }
    expect(existsSync(server.tls?.ca ?? '')).toBe(false);
  });

  it('requires a client certificate with authClients, and its admin() presents one', async () => {
    const server = await startRedis({ tls: { authClients: true } });
    try {
      expect(await server.admin('CONFIG', 'GET', 'tls-auth-clients')).toBe('tls-auth-clients\nyes');
    } finally {
      await server.stop();
    }
  });
});
