import {
  ConfigError,
  CorruptStateError,
  MemberExistsError,
  ParamMismatchError,
  PermissionError,
  RedisUnavailableError,
  ScriptError,
  UnderstudyError,
} from './errors.js';

/**
 * The one place where failures from outside the library (ioredis, Redis's replies, Node's
 * sockets) become the library's errors. Use sites test the class, `retryable` or `timedOut`,
 * never a message.
 */

/** Where a failure happened: what it names in its message, and whose rules a refusal asks for. */
export interface FailureContext {
  /** What was being done, as words that follow "may not": `join group orders`. */
  readonly operation: string;
  /** The Redis user the connection logged in as (`redisUser`): a refusal names it. */
  readonly user: string;
  /** The group concerned, if any. */
  readonly group?: string;
  /** The queue concerned, if any (not with a group). */
  readonly queue?: string;
  /** Who was doing it, if not the caller itself: `member m1` ("member m1 could not …"). */
  readonly actor?: string;
  /** The script that replied: its own error replies are read too. */
  readonly script?: string;
  /** The key the command worked on and the type understudy keeps there: WRONGTYPE is corrupt state. */
  readonly key?: { readonly name: string; readonly type: string };
}

/** The library's error for `error`; the library's own errors are returned as they are. */
export function classify(error: unknown, context: FailureContext): UnderstudyError {
  if (error instanceof UnderstudyError) return error;
  const reply = permissionDenied(error);
  if (reply !== undefined) {
    return new PermissionError(context.user, context.operation, reply, context.group, { cause: error });
  }
  // A queue's corrupt state is named as `group queue <name>` (CorruptStateError's message).
  const owner = context.group ?? (context.queue === undefined ? undefined : `queue ${context.queue}`);
  if (owner !== undefined) {
    const corrupt = corruptState(owner, error) ?? wrongType(owner, context.key, error);
    if (corrupt) return corrupt;
  }
  // A script refused by a server that may not take writes wrote nothing: that is Redis
  // unavailable for the group (retryable once the master is back), not a broken script.
  if (context.script !== undefined && owner !== undefined && error instanceof Error && !isNotTheMaster(error)) {
    const refused = scriptReply(context.script, owner, context.queue, error);
    if (refused) return refused;
  }
  const what = context.actor ? `${context.actor} could not ${context.operation}` : context.operation;
  return new RedisUnavailableError(`${what}: ${describe(error)}`, { cause: error, timedOut: isCommandTimeout(error) });
}

/** An error's message, or the thrown value as text. */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A Redis URL without its credentials (`redis://***@host:port`), for messages and logs. */
export function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/**
 * ioredis 6 rejects a command that got no reply within `commandTimeout` with a plain Error of
 * this message (Command.js, `setTimeout`); it has no class or code of its own.
 */
function isCommandTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}

/**
 * Replies that say the server is no longer a master that may take the group's writes: one
 * demoted to a replica (READONLY), one cut off from its replicas under `min-replicas-to-write`
 * (NOREPLICAS), a replica that lost its master (MASTERDOWN).
 */
export function isNotTheMaster(error: Error): boolean {
  return /^(READONLY|NOREPLICAS|MASTERDOWN)\b/.test(error.message);
}

/** Redis's reply when ACL refused a command, key or channel (also from inside a script). */
function permissionDenied(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if (!/^NOPERM |The user executing the script can't/.test(error.message)) return undefined;
  return withoutScriptSuffix(error.message);
}

/** The CorruptStateError for a script's `CORRUPT <key> <problem>` reply, else undefined. */
export function corruptState(group: string, error: unknown): CorruptStateError | undefined {
  if (!(error instanceof Error)) return undefined;
  const match = /^CORRUPT (\S+) ([\s\S]*)$/.exec(withoutScriptSuffix(error.message));
  if (!match) return undefined;
  return new CorruptStateError(group, match[1] as string, match[2] as string, { cause: error });
}

/** The CorruptStateError for a WRONGTYPE reply on `key`, else undefined. */
function wrongType(group: string, key: FailureContext['key'], error: unknown): CorruptStateError | undefined {
  if (!key || !(error instanceof Error) || !error.message.startsWith('WRONGTYPE')) return undefined;
  return new CorruptStateError(group, key.name, `is not a ${key.type} (WRONGTYPE); understudy did not write it`, {
    cause: error,
  });
}

/** The error for a script's own refusal (see the scripts' headers), or for a script that failed. */
function scriptReply(
  script: string,
  group: string,
  queue: string | undefined,
  error: Error,
): UnderstudyError | undefined {
  const taken = /^WORKER_EXISTS (.*)$/.exec(error.message);
  if (taken && queue !== undefined) {
    return new ConfigError('workerId', taken[1], `a live worker of queue ${queue} already uses this id`);
  }
  const mismatch = /^PARAM_MISMATCH (activeGoal|activationInterval|quorum) (\d+) (\d+)/.exec(error.message);
  if (mismatch) {
    const [, field, requested, current] = mismatch as unknown as [string, 'activeGoal', string, string];
    return new ParamMismatchError(group, field, Number(requested), Number(current));
  }
  const exists = /^MEMBER_EXISTS (.*)$/.exec(error.message);
  if (exists) return new MemberExistsError(group, exists[1] ?? '');
  if (error.message.startsWith('GROUP_NOT_EMPTY')) {
    const live = error.message.split(' ')[1];
    return new ScriptError(script, `group ${group} still has ${live} live members`, { cause: error });
  }
  if (error.message.startsWith('NO_GROUP')) {
    return new ScriptError(script, `group ${group} has no members`, { cause: error });
  }
  if (/^ERR |^NOSCRIPT|user_script|user_function/.test(error.message))
    return new ScriptError(script, error.message, { cause: error });
  return undefined;
}

/**
 * Drops the ` script: <sha>, on @user_script:<line>.` Redis adds to errors raised in scripts
 * (` script: <function>, on @user_function:<line>.` in functions).
 */
function withoutScriptSuffix(message: string): string {
  return message.replace(/( script: [0-9a-f]{40}, on @user_script:\d+\.| script: \w+, on @user_function:\d+\.)+$/, '');
}

/** The advisory for a failed renewal: a refusal by ACL, or state someone else wrote, is not an outage. */
export function renewalFailure(error: unknown): 'NO_PERMISSION' | 'CORRUPT_STATE' | 'REDIS_UNAVAILABLE' {
  if (error instanceof PermissionError) return 'NO_PERMISSION';
  if (error instanceof CorruptStateError) return 'CORRUPT_STATE';
  return 'REDIS_UNAVAILABLE';
}
