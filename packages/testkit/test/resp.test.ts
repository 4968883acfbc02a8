import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { rawCommand } from '../src/redis/resp.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

describe('rawCommand', () => {
  it('fails at once when the server closes the connection without a reply', async () => {
    // What a Sentinel does to the clients of a master it turns into a replica (CLIENT KILL).
    const server = createServer((socket) => socket.once('data', () => socket.destroy()));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const started = performance.now();
    await expect(rawCommand(port, ['INFO', 'replication'], { timeoutMs: 10_000 })).rejects.toThrow(
      /closed the connection before replying to INFO/,
    );
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
