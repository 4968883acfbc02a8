import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { aclCommand } from './commands/acl/index.js';
import { dashboardCommand } from './commands/dashboard/index.js';
import { demoCommand } from './commands/demo/index.js';
import { functionsCommand } from './commands/functions/index.js';
import { groupCommand } from './commands/group/index.js';
import { monitorCommand } from './commands/monitor/index.js';
import { queueCommand } from './commands/queue/index.js';
import { runCommand } from './commands/run/index.js';
import { statusCommand } from './commands/status/index.js';
import { EXIT_CODES_HELP, ExitCode, exitCodeOf, messageOf } from './exit.js';
import { shown } from './format.js';
import { type Io, processIo } from './io.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export { ExitCode } from './exit.js';
export type { Io } from './io.js';

export function program(io: Io, exit: (code: number) => void): Command {
  const cli = new Command('understudy')
    .description('Run redundant copies of a program; Redis keeps the best N active and the rest standing by.')
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .addHelpText(
      'after',
      `
Connection: --redis URL on every command, or REDIS_URL (default redis://127.0.0.1:6379).

${EXIT_CODES_HELP}`,
    );
  for (const command of [
    runCommand(io, exit).passThroughOptions(),
    monitorCommand(io, exit),
    statusCommand(io, exit),
    queueCommand(io, exit),
    dashboardCommand(io, exit),
    groupCommand(io, exit),
    aclCommand(io, exit),
    functionsCommand(io, exit),
    demoCommand(io, exit),
  ]) {
    cli.addCommand(command);
  }
  return cli;
}

/** Runs the command line; returns the process exit code instead of exiting. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let code: number = ExitCode.ok;
  const cli = program(io, (c) => {
    code = c;
  });
  cli.exitOverride();
  for (const command of cli.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  if (argv.length === 0) {
    cli.outputHelp();
    return ExitCode.usage;
  }
  try {
    await cli.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version "errors" are commander's way of finishing early.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    io.stderr(`understudy: ${messageOf(error).split('\n').map(shown).join('\n')}\n`);
    return exitCodeOf(error);
  }
}
