import type { BoardState } from '../src/commands/dashboard/board.js';
import { Cli, STARTUP_MS, waitFor } from './helpers.js';

/** A running `understudy dashboard` and the address it printed. */
export interface RunningDashboard {
  cli: Cli;
  /** e.g. `http://127.0.0.1:41713/` */
  url: string;
}

/** Starts `understudy dashboard --port 0 ...args` and waits for the address it serves at. */
export async function startDashboard(args: readonly string[]): Promise<RunningDashboard> {
  const cli = new Cli(['dashboard', '--port', '0', ...args]);
  const url = await waitFor(
    () => {
      if (!cli.running) throw new Error(`understudy dashboard exited first:\n${cli.stderr}`);
      return /at (http:\/\/\S+\/)\n/.exec(cli.stdout)?.[1];
    },
    () => `the dashboard to say where it serves; it printed:\n${cli.stdout}${cli.stderr}`,
    STARTUP_MS,
  );
  return { cli, url };
}

/** What `/state` and the first event (`hello`) carry. */
export interface DashboardState extends BoardState {
  connection: string;
  history: number;
  timelineMs: number;
}

export async function readState(url: string): Promise<DashboardState> {
  const response = await fetch(new URL('state', url));
  if (!response.ok) throw new Error(`GET /state: ${response.status}`);
  return (await response.json()) as DashboardState;
}

/** One server-sent event as received. */
export interface ReceivedEvent {
  type: string;
  data: Record<string, unknown>;
}

/** A reader of `/events`, as a browser's EventSource would read it (without reconnecting). */
export class EventStream {
  readonly events: ReceivedEvent[] = [];
  ended = false;
  readonly #abort = new AbortController();

  constructor(url: string) {
    void this.#read(new URL('events', url));
  }

  async #read(url: URL): Promise<void> {
    try {
      const response = await fetch(url, { signal: this.#abort.signal });
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (type && data) this.events.push({ type, data: JSON.parse(data) as Record<string, unknown> });
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // aborted, or the server went away: `ended` says so either way
    }
    this.ended = true;
  }

  /** Waits for an event of `type` matching `match`, received after the first `after` events. */
  next(type: string, match: (data: Record<string, unknown>) => boolean, timeoutMs = 10_000, after = 0) {
    return waitFor(
      () => this.events.slice(after).find((e) => e.type === type && match(e.data)),
      () => `a ${type} event; received: ${this.events.map((e) => e.type).join(', ')}`,
      timeoutMs,
    );
  }

  close(): void {
    this.#abort.abort();
  }
}
