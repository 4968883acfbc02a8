import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { redisServerBinary } from './binary.js';
import { freePort } from './ports.js';
import { PID_FILE, type Stoppable, testkitRoot, track, untrack } from './registry.js';
import { rawCommand } from './resp.js';
import { generateTlsFiles, type TlsFiles } from './tls.js';
import type { RedisServer, RestartOptions, StartRedisOptions } from './types.js';

const TERMINATING = new Set<NodeJS.Signals>(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGABRT']);
const ADMIN_USER = 'understudy-testkit';
const PORT_ATTEMPTS = 5;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A `redis-server` child process in its own temporary directory. */
export class RedisProcess implements RedisServer, Stoppable {
  readonly kind = 'process';
  readonly host = '127.0.0.1';
  readonly dir: string;
  readonly tls: TlsFiles | undefined;
  #port = 0;
  #child: ChildProcess | undefined;
  #exited: Promise<Exit> | undefined;
  #running = false;
  #paused = false;
  #stopped = false;
  readonly #options: StartRedisOptions;
  readonly #adminAuth: readonly string[] | undefined;

  private constructor(options: StartRedisOptions) {
    this.#options = options;
    this.dir = mkdtempSync(join(testkitRoot(), 'redis-'));
    this.tls = options.tls ? generateTlsFiles(this.dir) : undefined;
    if (options.acl) {
      const adminPassword = randomBytes(12).toString('hex');
      this.#adminAuth = [ADMIN_USER, adminPassword];
      const lines = [...options.acl, `user ${ADMIN_USER} on >${adminPassword} ~* &* +@all`];
      writeFileSync(join(this.dir, 'users.acl'), `${lines.join('\n')}\n`);
    } else if (options.password) {
      this.#adminAuth = [options.password];
    }
  }

  static async start(options: StartRedisOptions = {}): Promise<RedisProcess> {
    redisServerBinary(); // fail with the install hint before making a directory
    const server = new RedisProcess(options);
    track(server);
    try {
      for (let attempt = 1; ; attempt++) {
        server.#port = await freePort();
        try {
          await server.#launch();
          return server;
        } catch (error) {
          if (!(error instanceof PortTakenError) || attempt === PORT_ATTEMPTS) throw error;
        }
      }
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    const auth = this.#options.password ? `:${encodeURIComponent(this.#options.password)}@` : '';
    return `${this.tls ? 'rediss' : 'redis'}://${auth}${this.host}:${this.#port}`;
  }

  get pid(): number | undefined {
    return this.#running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#running;
  }

  get paused(): boolean {
    return this.#paused;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.#signal(signal)) return;
    if (TERMINATING.has(signal)) await this.#exited;
  }

  pause(): Promise<void> {
    return this.kill('SIGSTOP');
  }

  resume(): Promise<void> {
    return this.kill('SIGCONT');
  }

  async restart({ keepData = true }: RestartOptions = {}): Promise<void> {
    if (this.#stopped) throw new Error(`redis-server on port ${this.#port} was stopped; start a new one`);
    if (this.#running) {
      if (keepData) {
        if (this.#paused) await this.resume();
        await this.admin('SAVE');
        await this.#terminate();
      } else {
        await this.kill('SIGKILL');
      }
    }
    if (!keepData) {
      rmSync(join(this.dir, 'dump.rdb'), { force: true });
      rmSync(join(this.dir, 'appendonlydir'), { recursive: true, force: true });
    }
    await this.#launch();
  }

  admin(...args: string[]): Promise<string> {
    return rawCommand(this.#port, args, {
      ...(this.#adminAuth ? { auth: this.#adminAuth } : {}),
      ...(this.tls ? { tls: this.tls } : {}),
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#running) await this.#terminate();
    rmSync(this.dir, { recursive: true, force: true });
    untrack(this);
  }

  killNow(): void {
    this.#signal('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Sends a signal to a running server; false if there was none to signal. */
  #signal(signal: NodeJS.Signals): boolean {
    const pid = this.#child?.pid;
    if (!this.#running || !pid) return false;
    if (signal === 'SIGKILL' || signal === 'SIGCONT') this.#paused = false;
    if (signal === 'SIGSTOP') this.#paused = true;
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false; // exited a moment ago; the exit handler catches up
    }
  }

  /** SIGTERM (after SIGCONT if paused), then SIGKILL if it has not exited within 5 s. */
  async #terminate(): Promise<void> {
    if (this.#paused) this.#signal('SIGCONT');
    this.#signal('SIGTERM');
    const timer = setTimeout(() => this.#signal('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  #arguments(): string[] {
    const o = this.#options;
    const basic: Record<string, string | readonly string[]> = {
      port: String(this.#port),
      bind: this.host,
      dir: this.dir,
      logfile: join(this.dir, 'redis.log'),
      daemonize: 'no',
    };
    const flags = (config: Record<string, string | readonly string[]>) =>
      Object.entries(config).flatMap(([key, value]) => [`--${key}`, ...(typeof value === 'string' ? [value] : value)]);
    if (o.sentinel) {
      const file = join(this.dir, 'sentinel.conf');
      // Sentinel rewrites this file as it learns; a restart keeps what it learned.
      if (!existsSync(file)) writeFileSync(file, `${o.sentinel.join('\n')}\n`);
      return [file, '--sentinel', ...flags({ ...basic, ...o.config })];
    }
    return flags({
      ...basic,
      ...this.#tlsConfig(),
      save: '',
      appendonly: o.appendOnly ? 'yes' : 'no',
      ...(o.appendOnly ? { appendfsync: o.appendOnly } : {}),
      ...(o.acl ? { aclfile: join(this.dir, 'users.acl') } : {}),
      ...(o.password ? { requirepass: o.password } : {}),
      ...(o.enableDebugCommand ? { 'enable-debug-command': 'local' } : {}),
      ...o.config,
    });
  }

  /** TLS only: the plain port is closed, the TLS port is the server's port. */
  #tlsConfig(): Record<string, string> {
    const tls = this.tls;
    if (!tls) return {};
    const authClients = typeof this.#options.tls === 'object' && this.#options.tls.authClients === true;
    return {
      port: '0',
      'tls-port': String(this.#port),
      'tls-cert-file': tls.serverCert,
      'tls-key-file': tls.serverKey,
      'tls-ca-cert-file': tls.ca,
      'tls-auth-clients': authClients ? 'yes' : 'no',
    };
  }

  async #launch(): Promise<void> {
    const child = spawn(redisServerBinary(), this.#arguments(), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    this.#child = child;
    this.#running = true;
    this.#paused = false;
    this.#exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#running = false;
        this.#paused = false;
        resolve({ code, signal });
      });
      child.once('error', () => {
        this.#running = false;
        resolve({ code: null, signal: null });
      });
    });
    if (child.pid) writeFileSync(join(this.dir, PID_FILE), String(child.pid));
    let exit: Exit | undefined;
    void this.#exited.then((e) => {
      exit = e;
    });
    const deadline = performance.now() + (this.#options.startTimeoutMs ?? 10_000);
    while (performance.now() < deadline) {
      if (exit) {
        const log = `${this.#logTail()}${stderr}`;
        if (log.includes('Address already in use')) throw new PortTakenError(this.#port);
        throw new Error(
          `redis-server on port ${this.#port} exited during start-up (code ${exit.code}, signal ${exit.signal}):\n${log}`,
        );
      }
      const reply = await rawCommand(this.#port, ['PING'], {
        timeoutMs: 500,
        ...(this.tls ? { tls: this.tls } : {}),
      }).catch(() => undefined);
      if (reply !== undefined && !reply.startsWith('-LOADING')) return;
      await sleep(10);
    }
    await this.kill('SIGKILL');
    throw new Error(`redis-server on port ${this.#port} did not answer within its start timeout:\n${this.#logTail()}`);
  }

  #logTail(): string {
    const path = join(this.dir, 'redis.log');
    if (!existsSync(path)) return '';
    return readFileSync(path, 'utf8').split('\n').slice(-15).join('\n');
  }
}

class PortTakenError extends Error {
  constructor(port: number) {
    super(`port ${port} was taken before redis-server could bind it`);
  }
}
