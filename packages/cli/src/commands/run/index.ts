import { joinGroup, type Member } from '@understudy/core';
import { Command, Option } from 'commander';
import { CliError, ExitCode } from '../../exit.js';
import type { Io } from '../../io.js';
import { type MetricsEndpoint, type MetricsOptions, serveMetrics, withMetrics } from '../../metrics.js';
import { type ConnectionOptions, integer, redisSource, withConnection } from '../../options.js';
import { Child, canTieToParent, describeExit, exitCodeOf, runShell } from './child.js';

interface RunOptions extends ConnectionOptions, MetricsOptions {
  group: string;
  weight: number;
  activeGoal: number;
  heartbeat: number;
  preparation: number;
  activation: number;
  stopTimeout?: number;
  prepareCmd?: string;
  memberId?: string;
  quiet?: boolean;
}

export function runCommand(io: Io, exit: (code: number) => void): Command {
  return withMetrics(withConnection(new Command('run')))
    .summary('run a program only while this member is active')
    .description(
      'Run a program as a member of a group: it runs only while this member is active. ' +
        'The program starts on activate (with UNDERSTUDY_EPOCH, UNDERSTUDY_GROUP and ' +
        'UNDERSTUDY_MEMBER_ID in its environment) and is stopped on deactivate: SIGTERM, ' +
        'then SIGKILL after the stop timeout. If it exits by itself while active, the ' +
        'member leaves and `understudy run` exits with its code. SIGTERM or SIGINT leave ' +
        'the group gracefully; a second one stops the program at once. With --metrics-port, it ' +
        'serves this member’s Prometheus metrics (state, renewal latency, lease margin, actions, ' +
        'advisories; see docs/METRICS.md) until it exits.',
    )
    .usage('--group <name> --weight <n> [options] -- <command> [args...]')
    .argument('<command...>', 'the program and its arguments, after --')
    .requiredOption('--group <name>', 'group to join')
    .requiredOption('--weight <n>', 'rank weight, 1-65535 (higher ranks first)', integer(1))
    .option('--active-goal <n>', 'how many members are active at once (N)', integer(1), 1)
    .option('--heartbeat <ms>', 'heartbeat interval H', integer(1), 1000)
    .option('--preparation <ms>', 'preparation interval P (0 = no prepare hints)', integer(0), 0)
    .option('--activation <ms>', 'activation interval A: a silent active is replaced after it', integer(1), 3000)
    .addOption(
      new Option(
        '--stop-timeout <ms>',
        'grace between SIGTERM and SIGKILL (default: half the activation interval)',
      ).argParser(integer(0)),
    )
    .option('--prepare-cmd <command>', 'shell command run on prepare (a hint that activation may follow)')
    .option('--member-id <id>', 'member id (default host:pid:random)')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (argv: string[], options: RunOptions) => {
      exit(await run(argv, options, io));
    });
}

async function run(argv: string[], options: RunOptions, io: Io): Promise<number> {
  const [command, ...args] = argv;
  if (!command) throw new CliError('give the program to run after --', ExitCode.usage);
  const stopTimeout = options.stopTimeout ?? Math.floor(options.activation / 2);
  if (stopTimeout >= options.activation) {
    throw new CliError(
      `--stop-timeout ${stopTimeout} must be below --activation ${options.activation}: the slot is handed ` +
        'over after the activation interval, and the program must be gone by then',
      ExitCode.usage,
    );
  }
  const say = (message: string) => {
    if (!options.quiet) io.stderr(`[understudy] ${message}\n`);
  };
  if (!canTieToParent) {
    say('warning: setpriv is not available; if this wrapper is SIGKILLed, the program keeps running');
  }
  const endpoint = await serveMetrics(options);
  try {
    return await runMember({ command, args, stopTimeout, options, say, endpoint });
  } finally {
    await endpoint?.close();
  }
}

/** What `run` checked and set up before joining. */
interface Launch {
  command: string;
  args: string[];
  stopTimeout: number;
  options: RunOptions;
  say: (message: string) => void;
  endpoint: MetricsEndpoint | undefined;
}

async function runMember({ command, args, stopTimeout, options, say, endpoint }: Launch): Promise<number> {
  let child: Child | undefined;
  let member: Member | undefined;
  let finished = false;
  let resolveExit: (code: number) => void = () => undefined;
  const exitCode = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  const finish = async (code: number) => {
    if (finished) return;
    finished = true;
    await member?.leave();
    resolveExit(code);
  };

  const environment = (epoch?: number): NodeJS.ProcessEnv => ({
    ...process.env,
    UNDERSTUDY_GROUP: options.group,
    UNDERSTUDY_MEMBER_ID: member?.id ?? options.memberId ?? '',
    ...(epoch === undefined ? {} : { UNDERSTUDY_EPOCH: String(epoch) }),
  });

  member = await joinGroup({
    redis: redisSource(options),
    prefix: options.prefix,
    group: options.group,
    weight: options.weight,
    activeGoal: options.activeGoal,
    heartbeatInterval: options.heartbeat,
    preparationInterval: options.preparation,
    activationInterval: options.activation,
    ...(options.memberId ? { memberId: options.memberId } : {}),
    onPrepare: async () => {
      if (!options.prepareCmd) return;
      say(`preparing: ${options.prepareCmd}`);
      const result = await runShell(options.prepareCmd, environment());
      if (result.code !== 0) say(`the prepare command ended with ${describeExit(result)}`);
    },
    onActivate: async ({ epoch, reason }) => {
      say(`active (epoch ${epoch}, ${reason}): starting ${command}`);
      let started: Child;
      try {
        started = await Child.start(command, args, environment(epoch));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code === 'ENOENT' ? ExitCode.notFound : ExitCode.cannotExecute;
        say(`cannot start ${command}: ${(error as Error).message}`);
        void finish(code);
        throw error;
      }
      child = started;
      void started.exited.then((result) => {
        if (started.stopping) return;
        if (child === started) child = undefined;
        say(`${command} ended with ${describeExit(result)} while active; leaving the group`);
        void finish(exitCodeOf(result));
      });
    },
    onDeactivate: async ({ reason }) => {
      const running = child;
      if (!running) return;
      say(`deactivating (${reason}): stopping ${command}`);
      // `child` stays set while it stops, so a second SIGTERM / SIGINT can still kill it.
      const result = await running.stop(stopTimeout);
      if (child === running) child = undefined;
      say(`${command} stopped (${describeExit(result)})`);
    },
  });
  endpoint?.metrics.instrumentMember(member);
  if (endpoint) say(`serving metrics at ${endpoint.url}`);
  member.on('advisory', (advisory) => say(`${advisory.code}: ${advisory.message}`));
  member.on('state', ({ to }) => {
    if (to === 'standby') say('standing by');
  });
  say(`joined group ${options.group} as ${member.id} (weight ${options.weight})`);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      say(`${signal}: leaving the group`);
      void finish(ExitCode.ok);
    } else {
      say(`${signal} again: stopping ${command} now`);
      child?.kill();
      resolveExit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await exitCode;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
