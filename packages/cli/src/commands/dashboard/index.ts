import { Command, Option } from 'commander';
import { ExitCode } from '../../exit.js';
import { interruption } from '../../interrupt.js';
import type { Io } from '../../io.js';
import { port } from '../../metrics.js';
import {
  type ConnectionOptions,
  describeConnection,
  integer,
  redisSource,
  withConnectionOptions,
} from '../../options.js';
import { Board } from './board.js';
import { serveDashboard } from './server.js';

interface DashboardOptions extends ConnectionOptions {
  port: number;
  host: string;
  history: number;
  scanInterval: number;
}

export function dashboardCommand(io: Io, exit: (code: number) => void): Command {
  return withConnectionOptions(new Command('dashboard'))
    .summary('serve a live web page of every group')
    .description(
      'Serve a live web page of every group (or of the groups named): active count against the ' +
        'goal, members with rank, weight, state, epoch and lease, the latest transitions and a ' +
        'timeline of the active count, updated as they change. One monitor per group feeds every ' +
        'open page (server-sent events). Read-only: without group names it lists groups with SCAN ' +
        'and needs a user that may run it; with names, the monitor user of each group is enough ' +
        '(see understudy acl). Stop with Ctrl-C.',
    )
    .argument('[groups...]', 'groups to show (default: every group under --prefix, found by SCAN)')
    .addOption(
      new Option('--port <port>', 'port to serve the page on (0: any free port)').argParser(port).default(8080),
    )
    .option('--host <host>', 'address to serve on (0.0.0.0: every interface; the page has no login)', '127.0.0.1')
    .option('--history <n>', 'latest transitions to show per group', integer(1), 10)
    .option(
      '--scan-interval <ms>',
      'without group names: look for new and forgotten groups this often',
      integer(100),
      5000,
    )
    .addHelpText(
      'after',
      `
Examples:
  understudy dashboard                       # every group, at http://127.0.0.1:8080/
  understudy dashboard orders billing --port 9000 \\
    --redis redis://dashboard:PASSWORD@redis.internal:6379
The page is also JSON at /state and a stream of server-sent events at /events.
docs/DASHBOARD.md describes the page and the Redis user it needs.`,
    )
    .action(async (groups: string[], options: DashboardOptions) => {
      // A name given twice is one group, watched once.
      exit(await dashboard([...new Set(groups)], options, io));
    });
}

async function dashboard(groups: string[], options: DashboardOptions, io: Io): Promise<number> {
  const connection = describeConnection(options);
  const board = new Board({
    redis: redisSource(options),
    prefix: options.prefix,
    ...(groups.length > 0 ? { groups } : {}),
    scanInterval: options.scanInterval,
    history: options.history,
    warn: (message) => io.stderr(`understudy dashboard: ${message}\n`),
  });
  const server = await serveDashboard(board, {
    host: options.host,
    port: options.port,
    connection,
    history: options.history,
  });
  try {
    await board.start();
  } catch (error) {
    await server.close();
    throw error;
  }
  const what =
    groups.length > 0
      ? `group${groups.length === 1 ? '' : 's'} ${groups.join(', ')}`
      : `every group under prefix ${options.prefix}`;
  io.stdout(`serving a live, read-only dashboard of ${what} on ${connection} at ${server.url}\n`);
  io.stdout('stop with Ctrl-C\n');

  const stop = interruption();
  await stop.interrupted;
  stop.dispose();
  await server.close();
  await board.close();
  io.stdout('dashboard stopped\n');
  return ExitCode.ok;
}
