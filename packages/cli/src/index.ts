import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** Exit codes: documented in `understudy --help` and the README. */
export const ExitCode = Object.freeze({
  ok: 0,
  failure: 1,
  usage: 2,
});

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export function program(io: Io = processIo): Command {
  return new Command('understudy')
    .description('Run redundant copies of a program; Redis keeps the best N active and the rest standing by.')
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .showSuggestionAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .addHelpText(
      'after',
      `
Exit codes: ${ExitCode.ok} success, ${ExitCode.failure} failure, ${ExitCode.usage} invalid usage.`,
    );
}

/** Runs the command line; returns the process exit code instead of exiting. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const cli = program(io).exitOverride();
  if (argv.length === 0) {
    cli.outputHelp();
    return ExitCode.usage;
  }
  try {
    await cli.parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version "errors" are commander's way of finishing early.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    io.stderr(`understudy: ${error instanceof Error ? error.message : String(error)}\n`);
    return ExitCode.failure;
  }
}
