import type { DeactivateReason } from './member/reasons.js';

/** Stable codes of every error the library raises; match on `error.code`, never on messages. */
export type UnderstudyErrorCode =
  | 'CONFIG'
  | 'PARAM_MISMATCH'
  | 'REDIS_UNAVAILABLE'
  | 'LEFT'
  | 'HANDLER_FAILED'
  | 'MEMBER_EXISTS'
  | 'NO_PERMISSION'
  | 'CORRUPT_STATE'
  | 'SCRIPT'
  | 'NOT_STARTED'
  | 'ACTIVATION_ENDED'
  | 'STALE_TASK'
  | 'ROLE_CONFLICT';

export abstract class UnderstudyError extends Error {
  abstract readonly code: UnderstudyErrorCode;
  /** Whether trying the same thing again may succeed (Redis unreachable or slow); false for a refusal or bad input. */
  readonly retryable: boolean = false;
}

/** The base class of one kind of error: an {@link UnderstudyError} with its own `code` and `name`. */
type ErrorKind<C extends UnderstudyErrorCode, N extends string> = abstract new (
  message?: string,
  options?: ErrorOptions,
) => UnderstudyError & { readonly code: C; readonly name: N };

/**
 * The base of one kind of error, stating its stable `code` and its `name` (the class's own
 * name, written out so that a bundler renaming classes cannot change it) once.
 */
function kind<const C extends UnderstudyErrorCode, const N extends string>(code: C, name: N): ErrorKind<C, N> {
  abstract class Kind extends UnderstudyError {
    readonly code = code;
    override readonly name = name;
  }
  return Kind;
}

/** An option is invalid; the message names the field, the value and the rule it breaks. */
export class ConfigError extends kind('CONFIG', 'ConfigError') {
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly rule: string,
  ) {
    super(`${field} = ${shown(value)}: ${rule}`);
  }
}

/**
 * The group already runs with a different active goal or activation interval, or in the other
 * mode (`quorum`: 1 for quorum mode over K servers, DESIGN §9, 0 for one Redis deployment).
 */
export class ParamMismatchError extends kind('PARAM_MISMATCH', 'ParamMismatchError') {
  constructor(
    readonly group: string,
    readonly field: 'activeGoal' | 'activationInterval' | 'quorum',
    readonly requested: number,
    readonly current: number,
  ) {
    super(
      field === 'quorum'
        ? `group ${group} runs in ${modeName(current)} on this server, this member joins in ${modeName(requested)}; ` +
            (current === 1
              ? 'join with redis: [all K servers of the group] (CLI: --redis given K times)'
              : 'join with the one Redis deployment of the group (CLI: --redis once), or let the group empty first')
        : `group ${group} runs with ${field} = ${current}, this member asked for ${requested}; ` +
            `join with ${field}: ${current}, or change the group's parameters first (understudy group set)`,
    );
  }
}

function modeName(quorum: number): string {
  return quorum === 1 ? 'quorum mode (one group over K independent Redis servers)' : 'single-server mode';
}

/** Redis could not be reached or did not answer in time. Retryable. */
export class RedisUnavailableError extends kind('REDIS_UNAVAILABLE', 'RedisUnavailableError') {
  override readonly retryable = true;
  /**
   * A command got no reply within the command timeout. Its connection may still deliver that
   * reply later, paired with the wrong request: reset the connection before using it again.
   */
  readonly timedOut: boolean;
  constructor(message: string, options?: { cause?: unknown; timedOut?: boolean }) {
    super(message, options);
    this.timedOut = options?.timedOut ?? false;
  }
}

/** The member has left; it cannot be used any more. */
export class LeftError extends kind('LEFT', 'LeftError') {}

/** A prepare / activate / deactivate handler threw or timed out. */
export class HandlerError extends kind('HANDLER_FAILED', 'HandlerError') {
  constructor(
    readonly action: 'prepare' | 'activate' | 'deactivate' | 'message',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A live member of the group already uses the id this member asked for. */
export class MemberExistsError extends kind('MEMBER_EXISTS', 'MemberExistsError') {
  constructor(
    readonly group: string,
    readonly memberId: string,
  ) {
    super(`a live member of group ${group} already uses the id ${memberId}; choose another memberId`);
  }
}

/**
 * Redis refused the user a command, key or channel (ACL, `NOPERM`): the user lacks the group's
 * rules. Not retried: asking again gets the same answer.
 */
export class PermissionError extends kind('NO_PERMISSION', 'PermissionError') {
  constructor(
    /** The Redis user the connection logged in as. */
    readonly user: string,
    /** What was refused, e.g. `join group orders`. */
    readonly operation: string,
    /** Redis's reply. */
    readonly reply: string,
    /** The group, when the operation concerns one. */
    readonly group?: string,
    options?: { cause?: unknown },
  ) {
    const hint = group
      ? `give it the rules that \`understudy acl ${group}\` prints`
      : 'see docs/SECURITY.md for the rules a user needs';
    super(`Redis user ${user} may not ${operation}: ${reply}; ${hint}`, options);
  }
}

/**
 * A key of the group holds what understudy never writes there (another type, garbage in a
 * field): someone else wrote it. The scripts refuse to decide anything on top of it, so the
 * group stands still, with nobody active once leases run out, until the key is repaired or
 * deleted.
 */
export class CorruptStateError extends kind('CORRUPT_STATE', 'CorruptStateError') {
  constructor(
    readonly group: string,
    /** The Redis key that holds the bad value. */
    readonly key: string,
    /** What is wrong with it. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(
      `group ${group} has corrupt state: ${key} ${problem}; repair or delete that key ` +
        `(understudy group forget ${group} deletes the group once no member is live)`,
      options,
    );
  }
}

/** A Lua script replied with an error the library did not expect. */
export class ScriptError extends kind('SCRIPT', 'ScriptError') {
  constructor(
    readonly script: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${script}: ${message}`, options);
  }
}

/** The monitor was used before `monitorGroup()` resolved with it: it has not read the group yet. */
export class MonitorNotStartedError extends kind('NOT_STARTED', 'MonitorNotStartedError') {
  constructor(readonly group: string) {
    super(
      `the monitor of group ${group} has not read the group yet; use the monitor that monitorGroup() resolves with`,
    );
  }
}

/** A value for a ConfigError's message. */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * The reason of an activation's `signal` (onActivate's info) once that activation ended: it
 * names the epoch and the deactivate reason (lease lost, preempted, leave, quarantine…).
 */
export class ActivationEndedError extends kind('ACTIVATION_ENDED', 'ActivationEndedError') {
  constructor(
    readonly epoch: number,
    readonly reason: DeactivateReason,
  ) {
    super(`activation ${epoch} ended: ${reason}`);
  }
}

/**
 * A queue refused a worker's completion: the task was delivered again since (its completeTime
 * passed, or the worker's lease lapsed), or it is gone. The result is dropped.
 */
export class StaleTaskError extends kind('STALE_TASK', 'StaleTaskError') {
  constructor(
    readonly queue: string,
    readonly taskId: string,
    /** The token of the delivery this worker completed. */
    readonly token: number,
  ) {
    super(
      `queue ${queue} refused the completion of task ${taskId} (token ${token}): it was delivered again or is gone`,
    );
  }
}

export type ProcessRole = 'group' | 'queue';

/** DESIGN §7: a process is a group member or a queue worker, never both. */
export class RoleConflictError extends kind('ROLE_CONFLICT', 'RoleConflictError') {
  constructor(
    readonly requested: { role: ProcessRole; name: string },
    readonly held: { role: ProcessRole; name: string },
  ) {
    super(
      `this process has joined ${held.role} ${held.name}, so it cannot join ${requested.role} ${requested.name}: ` +
        'a process is a group member or a queue worker, never both (it may join several groups, or several queues)',
    );
  }
}
