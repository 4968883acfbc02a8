import { connect, createServer, type Server, type Socket } from 'node:net';
import { track, untrack } from '../redis/registry.js';
import { Direction, type LinkFaults } from './direction.js';

/**
 * Which way a fault applies: `to-server` is what the client sends (client → Redis),
 * `to-client` what comes back (Redis → client), `both` the two at once.
 */
export type LinkDirection = 'to-server' | 'to-client' | 'both';

const ONE_WAY = ['to-server', 'to-client'] as const;
type OneWay = (typeof ONE_WAY)[number];

export interface ChaosProxyOptions {
  /** Where the proxy forwards to: usually a Redis server from `startRedis()`. */
  target: { host: string; port: number };
}

/**
 * A TCP proxy for one member ↔ Redis link that breaks the link on demand. It listens on
 * 127.0.0.1; point a client at `url()` instead of at Redis.
 */
export interface ChaosProxy {
  readonly host: string;
  readonly port: number;
  /** Connections currently open through the proxy. */
  readonly connectionCount: number;
  /** `redis://host:port` of the proxy, or `redisUrl` with its host and port replaced (auth, db, scheme kept). */
  url(redisUrl?: string): string;
  /**
   * Holds every chunk going `direction` (default both) for delayMs ± jitterMs, drawn anew for
   * each chunk; order within a direction is kept (a chunk is never released before the one
   * ahead of it). A WAN link of 30 ms round trip: `setDelay(15, 5)`.
   */
  setDelay(delayMs: number, jitterMs?: number, direction?: LinkDirection): void;
  /**
   * While on, bytes going `direction` (default both) are lost and nobody sees the connections
   * close; the other direction, if not blackholed itself, keeps flowing. `blackhole(false)`
   * lifts both directions, `blackhole(false, 'to-server')` only that one.
   */
  blackhole(on: boolean, direction?: LinkDirection): void;
  /** Whether a blackhole is on in either direction. */
  readonly blackholed: boolean;
  /** The faults of one direction now: its delay, jitter and blackhole. */
  faultsOf(direction: 'to-server' | 'to-client'): Readonly<LinkFaults>;
  /** Aborts every open connection with an RST to both the client and Redis. */
  reset(): void;
  /** While on, new connections are reset as soon as they are accepted; open ones are untouched. */
  refuse(on: boolean): void;
  /** Clears every fault: no delay, no blackhole, no refusal. Bytes already in flight keep their schedule. */
  heal(): void;
  /**
   * Points new connections at another server and resets the open ones: a floating address
   * moved to a promoted replica. The target is not a fault; `heal()` keeps it.
   */
  retarget(target: { host: string; port: number }): void;
  /** Where new connections go. */
  readonly target: { readonly host: string; readonly port: number };
  /** Stops listening and destroys every connection. Idempotent. */
  close(): Promise<void>;
}

/** Starts a proxy to `target` on a free port of 127.0.0.1. */
export async function startChaosProxy(options: ChaosProxyOptions): Promise<ChaosProxy> {
  const proxy = new TcpChaosProxy(options.target);
  await proxy.listen();
  return proxy;
}

/** The two sockets and two directions of one proxied connection. */
interface Connection {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly directions: readonly [Direction, Direction];
}

class TcpChaosProxy implements ChaosProxy {
  readonly host = '127.0.0.1';
  #target: { host: string; port: number };
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  readonly #faults: Record<OneWay, LinkFaults> = {
    'to-server': { delayMs: 0, jitterMs: 0, blackhole: false },
    'to-client': { delayMs: 0, jitterMs: 0, blackhole: false },
  };
  #refusing = false;
  #port = 0;
  #closed: Promise<void> | undefined;
  // Registered with the test kit's registry, so the `afterAll` that stops leftover servers closes proxies too.
  readonly #registration = {
    pid: undefined,
    stop: () => this.close(),
    killNow: () => this.#destroyAll(),
  };

  constructor(target: { host: string; port: number }) {
    this.#target = { host: target.host, port: target.port };
    this.#server = createServer({ allowHalfOpen: true }, (client) => this.#accept(client));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      // Port 0: the kernel picks a free port, so there is no race with other listeners.
      this.#server.listen(0, this.host, () => {
        this.#server.off('error', reject);
        const address = this.#server.address();
        if (address && typeof address === 'object') this.#port = address.port;
        track(this.#registration);
        resolve();
      });
    });
  }

  get port(): number {
    return this.#port;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  url(redisUrl?: string): string {
    if (redisUrl === undefined) return `redis://${this.host}:${this.#port}`;
    const url = new URL(redisUrl);
    url.hostname = this.host;
    url.port = String(this.#port);
    return url.toString();
  }

  setDelay(delayMs: number, jitterMs = 0, direction: LinkDirection = 'both'): void {
    requireNonNegative('delayMs', delayMs);
    requireNonNegative('jitterMs', jitterMs);
    for (const way of ways(direction)) {
      this.#faults[way].delayMs = delayMs;
      this.#faults[way].jitterMs = jitterMs;
    }
  }

  get blackholed(): boolean {
    return this.#faults['to-server'].blackhole || this.#faults['to-client'].blackhole;
  }

  faultsOf(direction: 'to-server' | 'to-client'): Readonly<LinkFaults> {
    return { ...this.#faults[ways(direction)[0] as OneWay] };
  }

  blackhole(on: boolean, direction: LinkDirection = 'both'): void {
    for (const way of ways(direction)) this.#faults[way].blackhole = on;
    if (!on) this.#pumpAll();
  }

  reset(): void {
    for (const connection of this.#connections) this.#tearDown(connection, 'reset');
  }

  refuse(on: boolean): void {
    this.#refusing = on;
  }

  heal(): void {
    this.setDelay(0, 0);
    this.refuse(false);
    this.blackhole(false);
  }

  get target(): { host: string; port: number } {
    return { ...this.#target };
  }

  retarget(target: { host: string; port: number }): void {
    this.#target = { host: target.host, port: target.port };
    this.reset();
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#destroyAll();
    }).finally(() => untrack(this.#registration));
    return this.#closed;
  }

  #accept(client: Socket): void {
    client.on('error', ignore);
    if (this.#refusing || this.#closed) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ ...this.#target, allowHalfOpen: true });
    upstream.on('error', ignore);
    // Nagle would add its own delay on top of the one under test.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const connection: Connection = {
      client,
      upstream,
      directions: [
        new Direction(client, upstream, this.#faults['to-server']),
        new Direction(upstream, client, this.#faults['to-client']),
      ],
    };
    this.#connections.add(connection);
    let open = 2;
    const forget = () => {
      open -= 1;
      if (open === 0) this.#connections.delete(connection);
    };
    client.once('close', forget);
    upstream.once('close', forget);
  }

  #pumpAll(): void {
    for (const { directions } of this.#connections) for (const direction of directions) direction.pump();
  }

  #tearDown(connection: Connection, how: 'reset' | 'destroy'): void {
    for (const direction of connection.directions) direction.discard();
    for (const socket of [connection.client, connection.upstream]) {
      if (socket.destroyed) continue;
      if (how === 'reset') socket.resetAndDestroy();
      else socket.destroy();
    }
    this.#connections.delete(connection);
  }

  #destroyAll(): void {
    for (const connection of this.#connections) this.#tearDown(connection, 'destroy');
  }
}

function ways(direction: LinkDirection): readonly OneWay[] {
  if (direction === 'both') return ONE_WAY;
  if (direction === 'to-server' || direction === 'to-client') return [direction];
  throw new RangeError(`a link direction is 'to-server', 'to-client' or 'both', got ${String(direction)}`);
}

function requireNonNegative(field: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${field} must be a finite number of milliseconds ≥ 0, got ${value}`);
  }
}

function ignore(): void {
  // Socket errors surface as 'close' with hadError, which the directions forward as an RST.
}
