import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { redact } from '@understudy/core/failures';
import { CliError, ExitCode } from '../../exit.js';

export interface DemoRedis {
  url: string;
  /** How it was found, for the user. */
  origin: string;
  stop(): Promise<void>;
}

const LOCAL = { host: '127.0.0.1', port: 6379 };

/** Whether something answers PING at host:port within `timeoutMs`. */
function answersPing(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

function redisServerOnPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** A throwaway redis-server for the demo: free port, temporary directory, no persistence. */
async function startTemporary(binary: string): Promise<DemoRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'understudy-demo-'));
  const server = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const stop = async () => {
    server.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (await answersPing('127.0.0.1', port, 200)) {
      return { url: `redis://127.0.0.1:${port}`, origin: `a temporary redis-server on port ${port}`, stop };
    }
    if (server.exitCode !== null) break;
    await sleep(50);
  }
  await stop();
  throw new CliError(`the temporary redis-server on port ${port} did not start`);
}

/**
 * The Redis for the demo: the one given, else one answering on localhost:6379, else a
 * temporary redis-server, else an error that says how to get one.
 */
export async function demoRedis(given: string | undefined): Promise<DemoRedis> {
  const keep = async () => undefined;
  if (given) return { url: given, origin: redact(given), stop: keep };
  if (await answersPing(LOCAL.host, LOCAL.port, 300)) {
    return { url: `redis://${LOCAL.host}:${LOCAL.port}`, origin: 'the Redis on localhost:6379', stop: keep };
  }
  const binary = redisServerOnPath();
  if (binary) return startTemporary(binary);
  throw new CliError(
    [
      'The demo needs a Redis, and none was given, none answers on localhost:6379, and redis-server is not installed.',
      'Any of these works:',
      '  docker compose up -d redis          (from the repository root), then: understudy demo',
      '  sudo apt-get install redis-server   (Debian/Ubuntu; brew install redis on macOS)',
      '  understudy demo --redis redis://host:port',
    ].join('\n'),
    ExitCode.redisUnavailable,
  );
}
