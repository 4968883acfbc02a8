import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '@understudy/testkit';
import { sleep } from './clock.js';

export const ETCD_INSTALL_HINT =
  'etcd is not installed: `apt-get update && apt-get install -y etcd-server` (Debian/Ubuntu), or point ETCD_BIN at an etcd binary.';

/**
 * etcd's election timing: heartbeat 50 ms, election timeout 500 ms. etcd's shortest lease TTL
 * is ⌈1.5 × election timeout⌉ s, so these settings allow a 1 s TTL (at the defaults,
 * heartbeat 100 ms / election 1 s, it is 2 s).
 */
export const ETCD_TIMING = Object.freeze({ heartbeatMs: 50, electionTimeoutMs: 500, minTtlSeconds: 1 });

export interface EtcdServer {
  readonly clientUrl: string;
  readonly version: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

export function etcdBinary(): string | undefined {
  const candidates = process.env.ETCD_BIN
    ? [process.env.ETCD_BIN]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, 'etcd'));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

let running: { child: ChildProcess; dir: string } | undefined;

/**
 * Starts a one-node etcd on loopback, on free ports, with its data in a temporary directory
 * (on tmpfs when /dev/shm exists: Redis runs without persistence here, so etcd's fsyncs should
 * not hit a disk either). Under `setpriv --pdeathsig KILL` when available: it dies with us.
 */
export async function startEtcd(binary: string): Promise<EtcdServer> {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'understudy-bench-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name=bench',
    `--data-dir=${dir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=bench=${peerUrl}`,
    `--heartbeat-interval=${ETCD_TIMING.heartbeatMs}`,
    `--election-timeout=${ETCD_TIMING.electionTimeoutMs}`,
    '--logger=zap',
    '--log-level=error',
  ];
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  const child = setpriv
    ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', binary, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  running = { child, dir };
  const stop = async () => {
    if (!exited) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exit;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
    running = undefined;
  };
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline && !exited) {
    try {
      const health = await fetch(`${clientUrl}/health`);
      if (health.ok && ((await health.json()) as { health?: string }).health === 'true') {
        const version = ((await (await fetch(`${clientUrl}/version`)).json()) as { etcdserver?: string }).etcdserver;
        return { clientUrl, version: version ?? 'unknown', dataDir: dir, stop };
      }
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  await stop();
  throw new Error(`etcd did not become healthy within 15 s:\n${stderr.slice(-2000)}`);
}

/** Synchronous last resort on the way out. */
export function killEtcdNow(): void {
  if (!running) return;
  running.child.kill('SIGKILL');
  rmSync(running.dir, { recursive: true, force: true });
  running = undefined;
}
