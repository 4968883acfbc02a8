import type { TlsFiles } from './tls.js';

export interface StartRedisOptions {
  /** Turn on the append-only file; `always` fsyncs every write, so even SIGKILL loses nothing acknowledged. */
  appendOnly?: false | 'everysec' | 'always';
  /** The lines of an ACL file (`user alice on >pw ~app:* +get`), loaded with `aclfile`. */
  acl?: readonly string[];
  /** `requirepass` for the default user; the URL carries it. */
  password?: string;
  /** `enable-debug-command local`, for `DEBUG SLEEP`, `DEBUG RELOAD` and friends. */
  enableDebugCommand?: boolean;
  /**
   * More configuration directives, e.g. `{ hz: '100', replicaof: ['127.0.0.1', '6380'] }`
   * (a directive with several values takes an array).
   */
  config?: Readonly<Record<string, string | readonly string[]>>;
  /**
   * Run as a Sentinel: these lines (`sentinel monitor …`) go into a config file that Sentinel
   * may rewrite; only the basic server directives are added.
   */
  sentinel?: readonly string[];
  /** How long to wait for the server to answer, in ms (default 10 000). */
  startTimeoutMs?: number;
  /**
   * Serve TLS only (`--port 0 --tls-port`), with a CA, a server and a client certificate
   * the kit generates into the server's directory; `authClients` requires the client
   * certificate (`tls-auth-clients yes`). The URL becomes `rediss://`.
   */
  tls?: boolean | { authClients?: boolean };
}

export interface RestartOptions {
  /**
   * Keep the data (default true). A running server saves an RDB snapshot before it stops;
   * a killed one comes back with whatever its AOF or last snapshot holds.
   * `false` wipes the snapshot and the AOF: the server comes back empty, as after a disk loss.
   */
  keepData?: boolean;
}

/** A Redis server a test owns. Everything that changes its process waits until the change is done. */
export interface RedisServer {
  readonly kind: 'process' | 'container' | 'external';
  readonly host: string;
  readonly port: number;
  /** `redis://[:password@]host:port`, or `rediss://…` for a TLS server. */
  readonly url: string;
  /** For a TLS server: the CA clients trust, the server's certificate and a client certificate. */
  readonly tls?: TlsFiles;
  /** Process id, for fault injection; undefined for containers and external servers. */
  readonly pid: number | undefined;
  /** Whether the server process is running (paused counts as running). */
  readonly running: boolean;
  readonly paused: boolean;
  /** Sends a signal. Terminating signals (KILL, TERM, INT, QUIT, ABRT) wait until the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP: the socket stays open, commands go unanswered. */
  pause(): Promise<void>;
  /** SIGCONT */
  resume(): Promise<void>;
  /** Stops the server (if running) and starts it again on the same port; waits until it answers. */
  restart(options?: RestartOptions): Promise<void>;
  /** Runs one command as an administrator, bypassing the test's ACL rules; returns the first reply line. */
  admin(...args: string[]): Promise<string>;
  /** Stops the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}
