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

/** An option is invalid; the message names the field, the value and the rule it breaks. */
export class ConfigError extends UnderstudyError {
  readonly code = 'CONFIG';
  override readonly name = 'ConfigError';
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly rule: string,
  ) {
    super(`${field} = ${shown(value)}: ${rule}`);
  }
}

/** The group already runs with a different active goal or activation interval. */
export class ParamMismatchError extends UnderstudyError {
  readonly code = 'PARAM_MISMATCH';
  override readonly name = 'ParamMismatchError';
  constructor(
    readonly group: string,
    readonly field: 'activeGoal' | 'activationInterval',
    readonly requested: number,
    readonly current: number,
  ) {
    super(
      `group ${group} runs with ${field} = ${current}, this member asked for ${requested}; ` +
        `join with ${field}: ${current}, or change the group's parameters first (understudy group set)`,
    );
  }
}

/** Redis could not be reached or did not answer in time. Retryable. */
export class RedisUnavailableError extends UnderstudyError {
  readonly code = 'REDIS_UNAVAILABLE';
  override readonly name = 'RedisUnavailableError';
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
export class LeftError extends UnderstudyError {
  readonly code = 'LEFT';
  override readonly name = 'LeftError';
}

/** A prepare / activate / deactivate handler threw or timed out. */
export class HandlerError extends UnderstudyError {
  readonly code = 'HANDLER_FAILED';
  override readonly name = 'HandlerError';
  constructor(
    readonly action: 'prepare' | 'activate' | 'deactivate' | 'message',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A live member of the group already uses the id this member asked for. */
export class MemberExistsError extends UnderstudyError {
  readonly code = 'MEMBER_EXISTS';
  override readonly name = 'MemberExistsError';
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
export class PermissionError extends UnderstudyError {
  readonly code = 'NO_PERMISSION';
  override readonly name = 'PermissionError';
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
export class CorruptStateError extends UnderstudyError {
  readonly code = 'CORRUPT_STATE';
  override readonly name = 'CorruptStateError';
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
export class ScriptError extends UnderstudyError {
  readonly code = 'SCRIPT';
  override readonly name = 'ScriptError';
  constructor(
    readonly script: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${script}: ${message}`, options);
  }
}

/** The monitor was used before `monitorGroup()` resolved with it: it has not read the group yet. */
export class MonitorNotStartedError extends UnderstudyError {
  readonly code = 'NOT_STARTED';
  override readonly name = 'MonitorNotStartedError';
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
export class ActivationEndedError extends UnderstudyError {
  readonly code = 'ACTIVATION_ENDED';
  override readonly name = 'ActivationEndedError';
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
export class StaleTaskError extends UnderstudyError {
  readonly code = 'STALE_TASK';
  override readonly name = 'StaleTaskError';
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
export class RoleConflictError extends UnderstudyError {
  readonly code = 'ROLE_CONFLICT';
  override readonly name = 'RoleConflictError';
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
