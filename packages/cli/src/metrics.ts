import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMetrics, type UnderstudyMetrics } from '@understudy/core/metrics';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { Registry } from 'prom-client';
import { CliError } from './exit.js';
import { integer } from './options.js';

export interface MetricsOptions {
  metricsPort?: number;
  metricsHost: string;
}

/** A TCP port, 0–65535 (0: any free port). */
export function port(value: string): number {
  const n = integer(0)(value);
  if (n > 65535) throw new InvalidArgumentError(`${n} is above the highest port, 65535.`);
  return n;
}

/** The options of the commands that can serve metrics (`run`, `monitor`). */
export function withMetrics(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--metrics-port <port>',
        'serve Prometheus metrics at http://HOST:PORT/metrics while it runs (0: any free port, printed at start)',
      ).argParser(port),
    )
    .addOption(new Option('--metrics-host <host>', 'address to serve metrics on').default('127.0.0.1'));
}

/** A running `/metrics` endpoint. */
export interface MetricsEndpoint {
  readonly metrics: UnderstudyMetrics;
  /** Where it listens, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  /** Stops listening and drops open connections (scrapers keep them alive). Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts serving metrics when `--metrics-port` was given, before anything else starts, so that a
 * port in use fails the command at once. The metrics live in a registry of their own.
 */
export async function serveMetrics(options: MetricsOptions): Promise<MetricsEndpoint | undefined> {
  if (options.metricsPort === undefined) return undefined;
  const host = options.metricsHost;
  const registry = new Registry();
  const server = createServer((request, response) => void answer(registry, request, response));
  const origin = await listen(server, host, options.metricsPort, { port: '--metrics-port', host: '--metrics-host' });
  let closing: Promise<void> | undefined;
  return {
    metrics: createMetrics({ registry }),
    url: `${origin}/metrics`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function answer(registry: Registry, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (path !== '/metrics') {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('use GET\n');
    return;
  }
  try {
    const body = await registry.metrics();
    response.writeHead(200, { 'content-type': registry.contentType });
    response.end(request.method === 'HEAD' ? undefined : body);
  } catch (error) {
    response.writeHead(500, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
  }
}

/**
 * Listens on `host:port` and returns the origin it serves, e.g. `http://127.0.0.1:9464`. A port
 * in use, a privileged port or a foreign address fails with a message naming the option.
 */
export async function listen(
  server: Server,
  host: string,
  port: number,
  option: { port: string; host: string },
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(listenError(error, host, port, option));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
}

function listenError(
  error: NodeJS.ErrnoException,
  host: string,
  port: number,
  option: { port: string; host: string },
): CliError {
  const where = `${host}:${port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return new CliError(`${option.port} ${port}: ${where} is already in use; choose another port`);
    case 'EACCES':
      return new CliError(
        `${option.port} ${port}: not allowed to listen on ${where} (ports below 1024 need privileges)`,
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new CliError(`${option.host} ${host}: not an address of this machine (${error.code})`);
    default:
      return new CliError(`cannot serve on ${where}: ${error.message}`);
  }
}
