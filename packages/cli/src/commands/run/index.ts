import { MEMBER_DEFAULTS } from '@understudy/core';
import { Command, Option } from 'commander';
import { CliError, ExitCode } from '../../exit.js';
import type { Io } from '../../io.js';
import { serveMetrics, withMetrics } from '../../metrics.js';
import { integer, withConnectionOptions } from '../../options.js';
import { canTieToParent } from '../../tie-to-parent.js';
import { whyNotExecutable } from './child.js';
import { KILL_MARGIN_MS, type RunOptions, Wrapper } from './wrapper.js';

export function runCommand(io: Io, exit: (code: number) => void): Command {
  return withMetrics(withConnectionOptions(new Command('run'), { quorum: true }))
    .summary('run a program only while this member is active')
    .description(
      'Run a program as a member of a group: it runs only while this member is active. ' +
        'The program starts on activate (with UNDERSTUDY_EPOCH, UNDERSTUDY_GROUP and ' +
        'UNDERSTUDY_MEMBER_ID in its environment) in a process group of its own, and is ' +
        'stopped on deactivate: SIGTERM to the process group, then SIGKILL after the stop ' +
        'timeout; the wrapper waits until every process of the group is gone. Cut off from ' +
        'Redis, it begins stopping the program early enough that it is gone before the lease ' +
        'can lapse. If the program exits by itself while active, what is left of its process ' +
        'group is stopped, the member leaves and `understudy run` exits with its code. ' +
        'SIGTERM, SIGINT or SIGHUP leave the group gracefully; a second one stops the program ' +
        'at once. Ctrl-Z (SIGTSTP) is refused. With --metrics-port, it serves this member’s ' +
        'Prometheus metrics (state, renewal latency, lease margin, actions, advisories; see ' +
        'docs/METRICS.md) until it exits.',
    )
    .usage('--group <name> --weight <n> [options] -- <command> [args...]')
    .argument('<command...>', 'the program and its arguments, after --')
    .requiredOption('--group <name>', 'group to join')
    .requiredOption('--weight <n>', 'rank weight, 1-65535 (higher ranks first)', integer(1))
    .option(
      '--active-goal <n>',
      'how many members are active at once (N); default: the group’s current goal, or 1 for a new group',
      integer(1),
    )
    .option('--heartbeat <ms>', 'heartbeat interval H', integer(1), 1000)
    .option('--preparation <ms>', 'preparation interval P (0 = no prepare hints)', integer(0), 0)
    .option('--activation <ms>', 'activation interval A: a silent active is replaced after it', integer(1), 3000)
    .addOption(
      new Option(
        '--stop-timeout <ms>',
        'grace between SIGTERM and SIGKILL; at most A·(1−ρ) − 2·H − 100 (default: half of A, or that bound if lower)',
      ).argParser(integer(0)),
    )
    .option(
      '--prepare-cmd <command>',
      'shell command run on prepare (a hint that activation may follow); killed with its process group after --preparation ms',
    )
    .option('--member-id <id>', 'member id (default host:pid:random)')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (argv: string[], options: RunOptions) => {
      exit(await run(argv, options, io));
    });
}

/**
 * The stop budget: the grace between SIGTERM and SIGKILL. The wrapper begins stopping the
 * program at the lease deadline − grace − KILL_MARGIN_MS when no renewal came, so the lease
 * must leave room for the grace after a missed heartbeat: grace ≤ A·(1−ρ) − 2·H − margin.
 */
export function stopBudget(options: Pick<RunOptions, 'activation' | 'heartbeat' | 'stopTimeout'>): number {
  const { activation: a, heartbeat: h } = options;
  const max = Math.floor(a * (1 - MEMBER_DEFAULTS.clockDrift)) - 2 * h - KILL_MARGIN_MS;
  const rule =
    `the program must be gone (SIGKILL included) ${KILL_MARGIN_MS} ms before the lease can lapse, ` +
    `and a lease must outlast a missed heartbeat: --stop-timeout ≤ --activation × ${1 - MEMBER_DEFAULTS.clockDrift} − ` +
    `2 × --heartbeat − ${KILL_MARGIN_MS}`;
  if (max < 0) {
    throw new CliError(
      `--activation ${a} with --heartbeat ${h} leaves no time to stop the program: ${rule}. ` +
        'Raise --activation or lower --heartbeat',
      ExitCode.usage,
    );
  }
  if (options.stopTimeout === undefined) return Math.min(Math.floor(a / 2), max);
  if (options.stopTimeout > max) {
    throw new CliError(
      `--stop-timeout ${options.stopTimeout} is too long for --activation ${a} and --heartbeat ${h} ` +
        `(at most ${max} here): ${rule}. Lower --stop-timeout, or raise --activation`,
      ExitCode.usage,
    );
  }
  return options.stopTimeout;
}

async function run(argv: string[], options: RunOptions, io: Io): Promise<number> {
  const [command, ...args] = argv;
  if (!command) throw new CliError('give the program to run after --', ExitCode.usage);
  const stopTimeout = stopBudget(options);
  // A misspelled program must fail now, not on a standby at failover time.
  const unusable = whyNotExecutable(command, process.env);
  if (unusable) throw new CliError(`cannot run ${unusable.message}`, unusable.code);
  const say = (message: string) => {
    if (!options.quiet) io.stderr(`[understudy] ${message}\n`);
  };
  if (!canTieToParent) {
    say('warning: setpriv is not available; if this wrapper is SIGKILLed, the program keeps running');
  }
  const endpoint = await serveMetrics(options);
  try {
    return await new Wrapper({ command, args, stopTimeout, options, say, endpoint }).run();
  } finally {
    await endpoint?.close();
  }
}
