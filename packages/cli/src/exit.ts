import { ConfigError, UnderstudyError } from '@understudy/core';
import { describe } from '@understudy/core/failures';

/** Exit codes of `understudy`; `run` also passes on its command's own code. */
export const ExitCode = Object.freeze({
  ok: 0,
  failure: 1,
  usage: 2,
  redisUnavailable: 3,
  paramMismatch: 4,
  /** Redis's ACL refused the user a command, key or channel of the group (NOPERM). */
  permissionDenied: 5,
  /** `run`: the command could not be executed (no permission). */
  cannotExecute: 126,
  /** `run`: the command was not found. */
  notFound: 127,
  /** `demo`: stopped by SIGINT or SIGTERM (128 + SIGINT's 2, as a shell reports it). */
  interrupted: 130,
});

export const EXIT_CODES_HELP = `Exit codes (see docs/CLI.md):
  0    success
  1    failure; status: no such group, or a group or queue that cannot be read; queue: no such queue
  2    invalid usage or option
  3    Redis cannot be reached
  4    the group runs with another active goal or activation interval
  5    Redis refused the user (ACL NOPERM): see understudy acl
  run: 1 also when a live member of the group already uses --member-id
  run: the command's own exit code when it exits while active (128 + n when killed by signal n),
       126 when it cannot be executed, 127 when it is not found
  demo: 130 when interrupted (SIGINT or SIGTERM)`;

/** An error with a message meant for the user and the exit code that goes with it. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The exit code for an error the library raised. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof UnderstudyError) {
    switch (error.code) {
      case 'CONFIG':
        return ExitCode.usage;
      case 'REDIS_UNAVAILABLE':
        return ExitCode.redisUnavailable;
      case 'PARAM_MISMATCH':
        return ExitCode.paramMismatch;
      case 'NO_PERMISSION':
        return ExitCode.permissionDenied;
      default:
        return ExitCode.failure;
    }
  }
  return ExitCode.failure;
}

/** The library's option names and the flags that set them. */
const FLAGS: Readonly<Record<string, string>> = {
  heartbeatInterval: '--heartbeat',
  activationInterval: '--activation',
  preparationInterval: '--preparation',
  activeGoal: '--active-goal',
  lostInterval: '--lost-interval',
  memberId: '--member-id',
  weight: '--weight',
  prefix: '--prefix',
  history: '--history',
};
/** Library names that only appear in rules as names (not plain words like "weight"). */
const FIELD_IN_RULE =
  /\b(heartbeatInterval|activationInterval|preparationInterval|activeGoal|lostInterval|memberId)\b/g;

/** The message for the user: a library option error names the flag, not the library's field. */
export function messageOf(error: unknown): string {
  if (error instanceof ConfigError && FLAGS[error.field] && error.message.startsWith(`${error.field} = `)) {
    const value = error.message.slice(`${error.field} = `.length, error.message.length - error.rule.length - 2);
    return `${FLAGS[error.field]} ${value}: ${error.rule.replace(FIELD_IN_RULE, (field) => FLAGS[field] ?? field)}`;
  }
  return describe(error);
}
