import { type ChaosProxy, type LinkDirection, startChaosProxy } from '../chaos/proxy.js';
import type { RedisProcess } from './process.js';
import { startAll } from './topology.js';
import type { StartRedisOptions } from './types.js';

/** The sizes of a quorum the kit starts: DESIGN §9 allows K odd, 3–7; an even K is for tests of its refusal. */
export const QUORUM_SIZES = { min: 3, max: 7 } as const;

export interface StartRedisQuorumOptions {
  /** K, how many independent servers: an integer from 3 to 7. */
  count: number;
  /** Put each server behind a chaos proxy of its own (`links`); `urls` then lead through them. Default false. */
  proxied?: boolean;
  /** Options of every server (`startRedis`'s; TLS and containers aside: these are always processes). */
  redis?: StartRedisOptions;
}

/**
 * K independent Redis servers (no replication between them), as DESIGN §9's regions: each a
 * `redis-server` process on a free port, optionally behind a chaos proxy of its own. Every
 * server and proxy is tracked by the kit like a single server, so a test that fails or times
 * out still stops them (the setup file's `afterAll`). Index `i` is 0-based everywhere.
 */
export class RedisQuorum {
  readonly servers: readonly RedisProcess[];
  /** One chaos proxy per server (same index), when started with `proxied`; empty otherwise. */
  readonly links: readonly ChaosProxy[];

  constructor(servers: readonly RedisProcess[], links: readonly ChaosProxy[]) {
    this.servers = servers;
    this.links = links;
  }

  /** K. */
  get count(): number {
    return this.servers.length;
  }

  /** Q = ⌊K/2⌋ + 1. */
  get majority(): number {
    return Math.floor(this.count / 2) + 1;
  }

  /** Where clients connect: each server's proxy when proxied, else the server itself. */
  get urls(): string[] {
    return this.servers.map((server, i) => this.links[i]?.url(server.url) ?? server.url);
  }

  /** The servers' own URLs, past any proxy (for an administrator's look). */
  get directUrls(): string[] {
    return this.servers.map((server) => server.url);
  }

  server(i: number): RedisProcess {
    const server = this.servers[this.#index(i)];
    if (!server) throw new RangeError(`no server ${i}`);
    return server;
  }

  /** The proxy in front of server `i` (a quorum started with `proxied` only). */
  link(i: number): ChaosProxy {
    const link = this.links[this.#index(i)];
    if (!link) throw new Error('this quorum was started without proxies: pass { proxied: true }');
    return link;
  }

  /** The first Q indexes, or `indexes` checked: what the majority faults act on. */
  majorityIndexes(indexes?: readonly number[]): number[] {
    const chosen = indexes ?? Array.from({ length: this.majority }, (_, i) => i);
    const unique = [...new Set(chosen.map((i) => this.#index(i)))];
    if (unique.length < this.majority) {
      throw new RangeError(
        `a majority of ${this.count} servers is ${this.majority} distinct indexes, got [${chosen.join(', ')}]`,
      );
    }
    return unique;
  }

  /** SIGKILL of server `i`; waits until it is gone. Its port stays free for `restart`. */
  kill(i: number): Promise<void> {
    return this.server(i).kill('SIGKILL');
  }

  /** SIGSTOP of server `i`: its sockets stay open, nothing is answered. */
  pause(i: number): Promise<void> {
    return this.server(i).pause();
  }

  /** SIGCONT of server `i`. */
  resume(i: number): Promise<void> {
    return this.server(i).resume();
  }

  /** Server `i` SIGKILLed (if running) and started again empty on the same port: a region that lost its disk. */
  restartEmpty(i: number): Promise<void> {
    return this.server(i).restart({ keepData: false });
  }

  /**
   * A majority (the first Q, or `indexes`) down at once and back empty on the same ports: every
   * chosen server is SIGKILLed before any comes back. Returns the indexes restarted.
   */
  async restartMajorityEmpty(indexes?: readonly number[]): Promise<number[]> {
    const chosen = this.majorityIndexes(indexes);
    await Promise.all(chosen.map((i) => this.kill(i)));
    await Promise.all(chosen.map((i) => this.restartEmpty(i)));
    return chosen;
  }

  /** The link to server `i` slowed: `delayMs ± jitterMs` per chunk in `direction` (default both). */
  slowLink(i: number, delayMs: number, jitterMs = 0, direction: LinkDirection = 'both'): void {
    this.link(i).setDelay(delayMs, jitterMs, direction);
  }

  /** The link to server `i` blackholed in `direction` (default both): bytes lost, sockets kept open. */
  blackholeLink(i: number, direction: LinkDirection = 'both'): void {
    this.link(i).blackhole(true, direction);
  }

  /**
   * Every fault of the link to server `i` lifted; connections that lost bytes in a blackhole
   * are reset first (a RESP stream with a gap would pair replies with the wrong commands).
   */
  healLink(i: number): void {
    const link = this.link(i);
    if (link.blackholed) link.reset();
    link.heal();
  }

  /** Every link healed, every paused server resumed, every dead server started again empty. */
  async healAll(): Promise<void> {
    for (let i = 0; i < this.links.length; i++) this.healLink(i);
    await Promise.all(
      this.servers.map(async (server) => {
        if (server.paused) await server.resume();
        if (!server.running) await server.restart({ keepData: false });
      }),
    );
  }

  /** Stops every server and proxy; idempotent. */
  async stop(): Promise<void> {
    await Promise.all([...this.servers.map((s) => s.stop()), ...this.links.map((l) => l.close())]);
  }

  #index(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new RangeError(`server index must be an integer from 0 to ${this.count - 1}, got ${i}`);
    }
    return i;
  }
}

/**
 * Starts K independent servers (and their proxies with `proxied`) at once; if any fails to
 * start, those started are stopped and the error is thrown.
 */
export async function startRedisQuorum(options: StartRedisQuorumOptions): Promise<RedisQuorum> {
  const { count } = options;
  if (!Number.isInteger(count) || count < QUORUM_SIZES.min || count > QUORUM_SIZES.max) {
    throw new RangeError(
      `a quorum is ${QUORUM_SIZES.min} to ${QUORUM_SIZES.max} independent servers, got count ${count}`,
    );
  }
  const servers = await startAll(Array.from({ length: count }, () => options.redis ?? {}));
  const links: ChaosProxy[] = [];
  try {
    if (options.proxied) {
      for (const server of servers) links.push(await startChaosProxy({ target: server }));
    }
  } catch (error) {
    await new RedisQuorum(servers, links).stop();
    throw error;
  }
  return new RedisQuorum(servers, links);
}
