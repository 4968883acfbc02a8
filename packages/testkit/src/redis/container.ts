import type { StartedTestContainer } from 'testcontainers';
import { type Stoppable, track, untrack } from './registry.js';
import type { RedisServer, RestartOptions, StartRedisOptions } from './types.js';

const IMAGE = 'redis:7.2';
const ADMIN_USER = 'understudy-testkit';
const ADMIN_PASSWORD = 'understudy-testkit-admin';

/**
 * A Redis server in a Docker container (`UNDERSTUDY_TEST_REDIS=container`), with the same
 * faults as a local process: SIGSTOP becomes `docker pause`, signals go through `docker kill`.
 * The host port can change across a restart, since Docker re-maps published ports.
 */
export class RedisContainerServer implements RedisServer, Stoppable {
  readonly kind = 'container';
  readonly pid = undefined;
  #container: StartedTestContainer;
  readonly #options: StartRedisOptions;
  #running = true;
  #paused = false;
  #stopped = false;

  private constructor(container: StartedTestContainer, options: StartRedisOptions) {
    this.#container = container;
    this.#options = options;
  }

  /** Starts a container, or returns undefined when no Docker engine answers. */
  static async start(options: StartRedisOptions): Promise<RedisContainerServer | undefined> {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const { RedisContainer } = await import('@testcontainers/redis');
    try {
      await getContainerRuntimeClient();
    } catch {
      return undefined;
    }
    const args = ['redis-server', '--save', '', '--appendonly', options.appendOnly ? 'yes' : 'no'];
    if (options.appendOnly) args.push('--appendfsync', options.appendOnly);
    if (options.enableDebugCommand) args.push('--enable-debug-command', 'yes');
    for (const [key, value] of Object.entries(options.config ?? {})) {
      args.push(`--${key}`, ...(typeof value === 'string' ? [value] : value));
    }
    if (options.sentinel) throw new Error('Sentinel topologies run from redis-server processes only');
    let container = new RedisContainer(IMAGE);
    if (options.password) container = container.withPassword(options.password);
    if (options.acl) {
      const lines = [...options.acl, `user ${ADMIN_USER} on >${ADMIN_PASSWORD} ~* &* +@all`];
      container = container.withCopyContentToContainer([
        { content: `${lines.join('\n')}\n`, target: '/data/users.acl' },
      ]);
      args.push('--aclfile', '/data/users.acl');
    }
    const server = new RedisContainerServer(await container.withCommand(args).start(), options);
    track(server);
    return server;
  }

  get host(): string {
    return this.#container.getHost();
  }

  get port(): number {
    return this.#container.getMappedPort(6379);
  }

  get url(): string {
    const auth = this.#options.password ? `:${encodeURIComponent(this.#options.password)}@` : '';
    return `redis://${auth}${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.#running;
  }

  get paused(): boolean {
    return this.#paused;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGSTOP') return this.pause();
    if (signal === 'SIGCONT') return this.resume();
    await (await this.#docker()).kill({ signal });
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') {
      await (await this.#docker()).wait();
      this.#running = false;
      this.#paused = false;
    }
  }

  async pause(): Promise<void> {
    await (await this.#docker()).pause();
    this.#paused = true;
  }

  async resume(): Promise<void> {
    await (await this.#docker()).unpause();
    this.#paused = false;
  }

  async restart({ keepData = true }: RestartOptions = {}): Promise<void> {
    if (this.#paused) await this.resume();
    if (this.#running && keepData) await this.admin('SAVE');
    if (this.#running && !keepData)
      await this.#container.exec(['sh', '-c', 'rm -rf /data/dump.rdb /data/appendonlydir']);
    await this.#container.restart();
    this.#running = true;
  }

  async admin(...args: string[]): Promise<string> {
    const auth = this.#options.acl
      ? ['--user', ADMIN_USER, '--pass', ADMIN_PASSWORD]
      : this.#options.password
        ? ['-a', this.#options.password]
        : [];
    const result = await this.#container.exec(['redis-cli', '--no-auth-warning', ...auth, ...args]);
    return result.output.trim();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#paused) await this.resume().catch(() => undefined);
    await this.#container.stop({ timeout: 1000 });
    untrack(this);
  }

  killNow(): void {
    // Testcontainers' reaper (Ryuk) removes the container when this process exits.
  }

  async #docker() {
    const { getContainerRuntimeClient } = await import('testcontainers');
    return (await getContainerRuntimeClient()).container.getById(this.#container.getId());
  }
}
