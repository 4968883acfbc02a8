// docker-compose.yml's `sentinel` and `cluster` profiles, checked without Docker: every service's
// command line and health check runs here as written, with the local redis-server and redis-cli,
// on free ports (each literal port of the file is mapped to a free one) and in a directory of
// its own standing in for the container's /data. The command line then connects the way the
// file's comments say.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { joinGroup, type Member } from '@understudy/core';
import { redisServerBinary } from '@understudy/testkit';
import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { understudy, waitFor } from './helpers.js';

interface Service {
  image?: string;
  profiles?: string[];
  network_mode?: string;
  command?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[]; retries?: number };
}

const composeFile = join(import.meta.dirname, '../../../docker-compose.yml');
const compose = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as { services: Record<string, Service> };
const binaries = dirname(redisServerBinary());

function profile(name: string): Record<string, Service> {
  return Object.fromEntries(Object.entries(compose.services).filter(([, s]) => s.profiles?.includes(name)));
}

/** The first port of the kernel's ephemeral range: where client sockets and `listen(0)` get theirs. */
function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * A port for a server and its Cluster bus port (port + 10 000), both free a moment ago, and both
 * below the ephemeral range where there is room: every other test's servers, proxies and client
 * sockets get their ports from that range, and one took a bus port chosen in it between the
 * check and the node's start (CI, 7 December 2026: "bind: Address already in use", port 43129).
 */
async function freePortWithBus(): Promise<number> {
  const bind = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  const below = ephemeralLow() - 10_000 - 2_000;
  const [from, span] = below >= 5_000 ? [2_000, below] : [20_000, 25_000];
  for (;;) {
    const port = from + Math.floor(Math.random() * span);
    if ((await bind(port)) && (await bind(port + 10_000))) return port;
  }
}

/** The file's own ports (`--port N`, `port N`), each mapped to a free one. */
async function portMap(services: Record<string, Service>): Promise<Map<string, string>> {
  const text = JSON.stringify(services);
  const ports = new Set([...text.matchAll(/(?:--port","|'port )(\d+)/g)].map((m) => m[1] as string));
  const map = new Map<string, string>();
  for (const port of ports) map.set(port, String(await freePortWithBus()));
  return map;
}

class Topology {
  readonly processes = new Map<string, ChildProcess>();
  readonly dirs: string[] = [];
  readonly output = new Map<string, string>();

  constructor(
    readonly services: Record<string, Service>,
    readonly ports: Map<string, string>,
  ) {}

  /** The file's text with its ports mapped and /data in `dir`. */
  localize(text: string, dir: string): string {
    return text.replace(/\b\d{4,5}\b/g, (port) => this.ports.get(port) ?? port).replaceAll('/data/', `${dir}/`);
  }

  /** Runs a command of the file: an argv (`redis-server …`) or `sh -c <script>`. */
  run(name: string, argv: readonly string[], dir: string): ChildProcess {
    const [program = '', ...args] = argv.map((a) => this.localize(a, dir));
    const child = spawn(program, args, {
      cwd: dir,
      env: { ...process.env, PATH: `${binaries}:${process.env.PATH ?? ''}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => this.output.set(name, ((this.output.get(name) ?? '') + chunk).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    return child;
  }

  /** Runs the service's health check until it passes, as Docker would (every 100 ms here). */
  async healthy(name: string): Promise<void> {
    const test = this.services[name]?.healthcheck?.test ?? [];
    const [kind, ...rest] = test;
    const argv = kind === 'CMD-SHELL' ? ['sh', '-c', rest.join(' ')] : rest;
    const dir = this.dirs[0] ?? tmpdir();
    await waitFor(
      async () => {
        const service = this.processes.get(name);
        if (service && (service.exitCode !== null || service.signalCode !== null)) {
          throw new Error(
            `${name} exited (${service.exitCode ?? service.signalCode}):\n${this.output.get(name) ?? ''}`,
          );
        }
        const check = this.run(`${name} (health check)`, argv, dir);
        const code = await new Promise<number | null>((resolve) => check.once('exit', resolve));
        return code === 0;
      },
      () => `the health check of ${name} (${test.join(' ')}) to pass; ${name} printed:\n${this.output.get(name) ?? ''}`,
      20_000,
      100,
    );
  }

  /** Starts every service after the services it depends on meet their conditions, like `docker compose up`. */
  async up(): Promise<void> {
    const started = new Map<string, Promise<void>>();
    const start = (name: string): Promise<void> => {
      let done = started.get(name);
      if (done) return done;
      done = (async () => {
        const service = this.services[name];
        if (!service) throw new Error(`docker-compose.yml: no service ${name} in this profile`);
        for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
          await start(dependency);
          if (condition === 'service_healthy') await this.healthy(dependency);
        }
        const dir = mkdtempSync(join(tmpdir(), `compose-${name}-`));
        this.dirs.push(dir);
        const child = this.run(name, service.command ?? [], dir);
        this.processes.set(name, child);
      })();
      started.set(name, done);
      return done;
    };
    await Promise.all(Object.keys(this.services).map(start));
  }

  /** A one-shot service: resolves with its exit code. */
  exited(name: string): Promise<number | null> {
    const child = this.processes.get(name);
    if (!child) throw new Error(`${name} was not started`);
    if (child.exitCode !== null) return Promise.resolve(child.exitCode);
    return new Promise((resolve) => child.once('exit', resolve));
  }

  port(filePort: number): number {
    return Number(this.ports.get(String(filePort)));
  }

  async down(): Promise<void> {
    await Promise.all(
      [...this.processes.values()]
        .filter((child) => child.exitCode === null && child.signalCode === null)
        .map((child) => {
          child.kill('SIGKILL');
          return new Promise((resolve) => child.once('exit', resolve));
        }),
    );
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

const topologies: Topology[] = [];
const members: Member[] = [];
afterEach(async () => {
  await Promise.all(members.splice(0).map((m) => m.leave()));
  await Promise.all(topologies.splice(0).map((t) => t.down()));
});

async function upProfile(name: string): Promise<Topology> {
  const services = profile(name);
  const topology = new Topology(services, await portMap(services));
  topologies.push(topology);
  await topology.up();
  return topology;
}

async function activeMember(redis: Parameters<typeof joinGroup>[0]['redis'], group: string): Promise<Member> {
  const member = await joinGroup({ redis, group, weight: 5, heartbeatInterval: 100, activationInterval: 1000 });
  members.push(member);
  await waitFor(() => member.isActive(), `a member of ${group} to activate`, 10_000, 20);
  return member;
}

describe('docker-compose.yml', () => {
  it('runs its servers on the host network, bound to 127.0.0.1 only', () => {
    for (const [name, service] of Object.entries({ ...profile('sentinel'), ...profile('cluster') })) {
      expect(service.network_mode, name).toBe('host');
      if (name === 'cluster-create') continue;
      expect(JSON.stringify(service.command), name).toMatch(/--bind","127\.0\.0\.1"|'bind 127\.0\.0\.1'/);
    }
  });

  it('profile sentinel: a master, 2 replicas and 3 Sentinels that fail over, reached with --sentinel and --master-name', async () => {
    const set = await upProfile('sentinel');
    for (const name of ['sentinel-1', 'sentinel-2', 'sentinel-3']) await set.healthy(name);
    const sentinels = [26379, 26380, 26381].map((p) => ({ host: '127.0.0.1', port: set.port(p) }));
    await activeMember({ sentinels, name: 'understudy' }, 'compose-sentinel');
    const list = sentinels.map((s) => `${s.host}:${s.port}`).join(',');
    const status = await understudy([
      'status',
      'compose-sentinel',
      '--json',
      '--sentinel',
      list,
      '--master-name',
      'understudy',
    ]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ group: 'compose-sentinel', activeCount: 1 });

    const replicas = [set.port(6381), set.port(6382)];
    const sentinel = new Redis({ port: sentinels[0]?.port, lazyConnect: true });
    try {
      expect(await sentinel.call('SENTINEL', 'CKQUORUM', 'understudy')).toMatch(/^OK 3 usable Sentinels/);
      const known = (await sentinel.call('SENTINEL', 'REPLICAS', 'understudy')) as string[][];
      expect(known.map((fields) => Number(fields[fields.indexOf('port') + 1])).sort()).toEqual([...replicas].sort());
      // down-after 3 s: a replica takes over a few seconds after the master dies, and the group follows.
      set.processes.get('sentinel-master')?.kill('SIGKILL');
      await waitFor(
        async () => {
          const [, port] = (await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'understudy')) as string[];
          return replicas.includes(Number(port));
        },
        'the Sentinels to name a replica as master',
        15_000,
        100,
      );
    } finally {
      sentinel.disconnect();
    }
    await waitFor(() => members[0]?.isActive(), 'the member active again on the new master', 15_000, 20);
  }, 60_000);

  it('profile cluster: six nodes that cluster-create joins into 3 masters with a replica each, reached with --cluster', async () => {
    const cluster = await upProfile('cluster');
    expect(await cluster.exited('cluster-create'), cluster.output.get('cluster-create')).toBe(0);
    const nodes = [7000, 7001, 7002, 7003, 7004, 7005].map((p) => ({ host: '127.0.0.1', port: cluster.port(p) }));
    const client = new Cluster(nodes, { lazyConnect: true });
    const node = new Redis({ port: nodes[0]?.port, lazyConnect: true });
    try {
      // Right after the create, a node that is to be a replica still calls itself master for a moment.
      await waitFor(
        async () => {
          const flags = ((await node.call('CLUSTER', 'NODES')) as string)
            .trim()
            .split('\n')
            .map((line) => line.split(' ')[2] ?? '');
          return (
            flags.filter((f) => f.includes('master')).length === 3 &&
            flags.filter((f) => f.includes('slave')).length === 3
          );
        },
        'CLUSTER NODES to list 3 masters and 3 replicas',
        10_000,
        50,
      );
      await activeMember(client, 'compose-cluster');
      const status = await understudy([
        'status',
        'compose-cluster',
        '--json',
        '--cluster',
        nodes
          .slice(0, 3)
          .map((n) => `${n.host}:${n.port}`)
          .join(','),
      ]);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ group: 'compose-cluster', activeCount: 1 });
    } finally {
      node.disconnect();
      client.disconnect();
    }
  }, 60_000);
});
