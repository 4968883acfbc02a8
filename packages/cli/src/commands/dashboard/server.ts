import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { listen } from '../../metrics.js';
import { type Board, type BoardEvent, TIMELINE_MS } from './board.js';

/** The page: plain files, served as they are (no build step). */
const PAGE_FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
  '/favicon.svg': ['favicon.svg', 'image/svg+xml'],
} as const;

/** A comment line this often keeps idle event streams open through proxies. */
const KEEPALIVE_MS = 15_000;

/**
 * Everything the page loads comes from this server; nothing from Redis can run as script
 * (the page only ever sets text), and the CSP says so a second time.
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface DashboardServer {
  /** Where it listens, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  /** Ends every event stream and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** Listens first (a port in use fails at once), then serves the page, `/state` and `/events`. */
export async function serveDashboard(
  board: Board,
  options: { host: string; port: number; connection: string; history: number },
): Promise<DashboardServer> {
  const page = new Map(
    Object.entries(PAGE_FILES).map(([path, [file, type]]) => [
      path,
      { body: readFileSync(new URL(`./page/${file}`, import.meta.url)), type },
    ]),
  );
  const streams = new Set<ServerResponse>();
  let allowedHosts: Set<string> | undefined;

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (allowedHosts && !allowedHosts.has((request.headers.host ?? '').toLowerCase())) {
      // A page of another site reaching this loopback port through a rebound DNS name.
      plain(response, 421, 'this dashboard answers only to its own address\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      plain(response, 405, 'read-only: use GET\n');
      return;
    }
    const file = page.get(path);
    if (file) {
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': file.type });
      response.end(request.method === 'HEAD' ? undefined : file.body);
    } else if (path === '/state') {
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
      response.end(request.method === 'HEAD' ? undefined : JSON.stringify(hello(board, options)));
    } else if (path === '/events') {
      stream(request, response);
    } else {
      plain(response, 404, 'not found: the dashboard is at /\n');
    }
  });

  function stream(request: IncomingMessage, response: ServerResponse): void {
    response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    streams.add(response);
    // The browser reconnects a second after a dropped stream, and gets `hello` again.
    response.write('retry: 1000\n\n');
    send(response, 'hello', hello(board, options));
    const onEvent = (event: BoardEvent) => send(response, event.type, event);
    board.on('event', onEvent);
    let keepalive: NodeJS.Timeout;
    const arm = () => {
      keepalive = setTimeout(() => {
        response.write(': keepalive\n\n');
        arm();
      }, KEEPALIVE_MS).unref();
    };
    arm();
    response.once('close', () => {
      clearTimeout(keepalive);
      board.off('event', onEvent);
      streams.delete(response);
    });
  }

  const origin = await listen(server, options.host, options.port, { port: '--port', host: '--host' });
  if (isLoopback(options.host)) {
    const port = new URL(origin).port;
    allowedHosts = new Set(['127.0.0.1', 'localhost', '[::1]', options.host].map((h) => `${h}:${port}`));
  }
  let closing: Promise<void> | undefined;
  return {
    url: `${origin}/`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const response of streams) response.end();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** The whole state, first on every event stream: what the page needs to draw itself. */
function hello(board: Board, options: { connection: string; history: number }) {
  return { connection: options.connection, history: options.history, timelineMs: TIMELINE_MS, ...board.state() };
}

function send(response: ServerResponse, event: string, data: unknown): void {
  // JSON.stringify never emits a raw line break, so one data line carries the whole event.
  response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function plain(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end(text);
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
