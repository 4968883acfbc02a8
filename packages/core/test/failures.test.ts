import { createServer, type Socket } from 'node:net';
import {
  ConfigError,
  CorruptStateError,
  MemberExistsError,
  MonitorNotStartedError,
  ParamMismatchError,
  PermissionError,
  RedisUnavailableError,
  ScriptError,
} from '@understudy/core';
import { classify, describe as describeFailure, isNotTheMaster, redact } from '@understudy/core/failures';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

const SUFFIX = ' script: 0123456789abcdef0123456789abcdef01234567, on @user_script:12.';
const context = { operation: 'join group orders', user: 'alice', group: 'orders' };
const inScript = { ...context, operation: 'run the renew script on group orders', script: 'renew' };

/** The error ioredis rejects a command with when it got no reply within `commandTimeout`. */
async function commandTimeout(): Promise<unknown> {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket)); // accepts, never answers
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as { port: number };
  const redis = new Redis({
    port,
    host: '127.0.0.1',
    commandTimeout: 50,
    // Nothing sent before the command: no HELLO, CLIENT SETINFO or INFO for the silent server to ignore.
    protocol: 2,
    disableClientInfo: true,
    enableReadyCheck: false,
    lazyConnect: true,
  });
  try {
    await redis.connect();
    return await redis.ping().then(
      () => undefined,
      (error: unknown) => error,
    );
  } finally {
    redis.disconnect();
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
}

describe('classify', () => {
  it('marks ioredis 6 command timeouts as timed out and retryable', async () => {
    const error = classify(await commandTimeout(), context);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error).toMatchObject({ retryable: true, timedOut: true, code: 'REDIS_UNAVAILABLE' });
  });

  it('makes other connection failures unavailable, retryable, not timed out, naming who and what', () => {
    const cause = new Error('Connection is closed.');
    const error = classify(cause, { ...context, actor: 'member m1' });
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error).toMatchObject({ retryable: true, timedOut: false, cause });
    expect(error.message).toBe('member m1 could not join group orders: Connection is closed.');
    expect(classify('down', context).message).toBe('join group orders: down');
  });

  it('turns an ACL refusal into a PermissionError naming the user, without the script suffix', () => {
    const error = classify(new Error(`NOPERM No permissions to access a key${SUFFIX}`), inScript);
    expect(error).toBeInstanceOf(PermissionError);
    expect(error).toMatchObject({ user: 'alice', group: 'orders', reply: 'NOPERM No permissions to access a key' });
    expect(error.retryable).toBe(false);
    const inside = classify(new Error("The user executing the script can't run this command or subcommand"), context);
    expect(inside).toBeInstanceOf(PermissionError);
  });

  it("reads the scripts' own replies only for a script", () => {
    const corrupt = classify(new Error(`CORRUPT {orders}:members is not a hash${SUFFIX}`), context);
    expect(corrupt).toBeInstanceOf(CorruptStateError);
    expect(corrupt).toMatchObject({ key: '{orders}:members', problem: 'is not a hash' });
    const mismatch = classify(new Error('PARAM_MISMATCH activeGoal 2 3'), inScript);
    expect(mismatch).toBeInstanceOf(ParamMismatchError);
    expect(mismatch).toMatchObject({ field: 'activeGoal', requested: 2, current: 3 });
    expect(classify(new Error('MEMBER_EXISTS m1'), inScript)).toBeInstanceOf(MemberExistsError);
    expect(classify(new Error('GROUP_NOT_EMPTY 2'), inScript).message).toBe(
      'renew: group orders still has 2 live members',
    );
    expect(classify(new Error('NO_GROUP'), inScript)).toBeInstanceOf(ScriptError);
    expect(classify(new Error(`ERR bad${SUFFIX}`), inScript)).toBeInstanceOf(ScriptError);
    expect(classify(new Error('MEMBER_EXISTS m1'), context)).toBeInstanceOf(RedisUnavailableError);
  });

  it('makes WRONGTYPE on the key the command worked on corrupt state, naming the key and the type', () => {
    const wrong = new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
    const error = classify(wrong, { ...context, key: { name: '{orders}:feed', type: 'stream' } });
    expect(error).toBeInstanceOf(CorruptStateError);
    expect(error).toMatchObject({
      key: '{orders}:feed',
      problem: 'is not a stream (WRONGTYPE); understudy did not write it',
    });
    expect(classify(wrong, context)).toBeInstanceOf(RedisUnavailableError);
  });

  it('makes a script refused by a server that may not take writes unavailable and retryable, not a ScriptError', () => {
    for (const reply of [
      'NOREPLICAS Not enough good replicas to write.',
      "READONLY You can't write against a read only replica.",
    ]) {
      const error = classify(new Error(`${reply}${SUFFIX}`), inScript);
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(error.retryable).toBe(true);
    }
  });

  it("returns the library's own errors as they are", () => {
    const own = new ConfigError('weight', -1, 'must be positive');
    expect(classify(own, context)).toBe(own);
    expect(own.retryable).toBe(false);
  });
});

describe('failure helpers', () => {
  it('describe gives the message, or the thrown value as text', () => {
    expect(describeFailure(new Error('boom'))).toBe('boom');
    expect(describeFailure(42)).toBe('42');
  });

  it('redact hides credentials in a Redis URL, and only them', () => {
    expect(redact('redis://alice:secret@host:6380/2')).toBe('redis://***@host:6380/2');
    expect(redact('rediss://:secret@host')).toBe('rediss://***@host');
    expect(redact('redis://host:6379')).toBe('redis://host:6379');
  });

  it('isNotTheMaster knows the replies of a server that may not take writes', () => {
    for (const reply of ['READONLY You cannot write', 'NOREPLICAS Not enough good replicas', 'MASTERDOWN Link down']) {
      expect(isNotTheMaster(new Error(reply))).toBe(true);
    }
    expect(isNotTheMaster(new Error('ERR READONLY'))).toBe(false);
  });

  it('a monitor used before it started says so with a stable code', () => {
    const error = new MonitorNotStartedError('orders');
    expect(error).toMatchObject({ code: 'NOT_STARTED', name: 'MonitorNotStartedError', retryable: false });
    expect(error.message).toContain('group orders');
  });
});
