import { ConfigError } from './errors.js';
import { DEFAULT_PREFIX, groupKeys } from './keys.js';
import { validateGroupName, validatePrefix } from './options.js';
import { queueKeys } from './queue/keys.js';

/**
 * Commands a member sends: its scripts (FCALL of understudy's function library; EVALSHA, and
 * EVAL when the server does not have a script yet, where functions are unavailable or the
 * library is not loaded), the announcements' subscription, WAIT for durability 'replicated', the group
 * feed (publish's XADD; the reader's XREAD, XRANGE, XINFO STREAM and the slots' commits), and
 * the connection handshake (INFO is ioredis's ready check, CLIENT SETNAME names the connection).
 */
const MEMBER_CLIENT_COMMANDS = [
  'fcall',
  'evalsha',
  'eval',
  'ssubscribe',
  'sunsubscribe',
  'wait',
  'xadd',
  'xread',
  'xrange',
  'xinfo|stream',
  'hget',
  'info',
  'client|setname',
];

/**
 * Commands the member scripts run inside Redis, which checks them against the calling user too:
 * every `redis.call` of `lua/*.lua` except the monitor's observe.lua (INFO reads `run_id`).
 */
const MEMBER_SCRIPT_COMMANDS = [
  'time',
  'info',
  'hmget',
  'hget',
  'hgetall',
  'hvals',
  'hset',
  'hdel',
  'hincrby',
  'hexists',
  'hlen',
  'exists',
  'zadd',
  'zrem',
  'zrange',
  'zrangebyscore',
  'zcount',
  'zcard',
  'zscore',
  'zmscore',
  'xadd',
  'xrevrange',
  'xtrim',
  'set',
  // Another member's heartbeat key, when its lease lapsed (`expire_lapsed` in lib.lua).
  'pttl',
  // Which key has the wrong type, once a command failed with WRONGTYPE (`guarded` in guard.lua).
  'type',
  // The epoch floor of quorum mode (quorum_renew.lua).
  'get',
  'del',
  'spublish',
];

/**
 * Commands a monitor sends: the read-only script (FCALL_RO of the loaded library, else
 * EVALSHA_RO, EVAL_RO on NOSCRIPT: plain FCALL or EVALSHA would need write access to its keys),
 * the transition log, the subscription, the handshake.
 */
const MONITOR_CLIENT_COMMANDS = [
  'fcall_ro',
  'evalsha_ro',
  'eval_ro',
  'xrevrange',
  'xrange',
  'ssubscribe',
  'sunsubscribe',
  'info',
  'client|setname',
];

/** Commands observe.lua runs. */
const MONITOR_SCRIPT_COMMANDS = ['time', 'hmget', 'zrange', 'hgetall', 'type'];

const unique = (commands: readonly string[]) => Object.freeze([...new Set(commands)]);

/** Every command a member's user needs, and nothing else. */
export const MEMBER_COMMANDS: readonly string[] = unique([...MEMBER_CLIENT_COMMANDS, ...MEMBER_SCRIPT_COMMANDS]);
/** Every command a monitor's user needs: reads and subscriptions only. */
export const MONITOR_COMMANDS: readonly string[] = unique([...MONITOR_CLIENT_COMMANDS, ...MONITOR_SCRIPT_COMMANDS]);

/** Commands the queue scripts (`lua/queue/*.lua` but observe.lua) run inside Redis. */
const QUEUE_SCRIPT_COMMANDS = [
  'time',
  'info',
  'hget',
  'hmget',
  'hset',
  'hdel',
  'hlen',
  'hgetall',
  'exists',
  'zadd',
  'zrem',
  'zrange',
  'zrangebyscore',
  'zcard',
  'zscore',
  'xadd',
  'xack',
  'xtrim',
  'xrange',
  'xclaim',
  'xpending',
  'xreadgroup',
  'xgroup|create',
  'xgroup|delconsumer',
  'rpush',
  'lpush',
  'ltrim',
  'lpos',
  'del',
  'type',
  'spublish',
];

/** Commands an enqueuer sends (the enqueue script) and runs through it: it dispatches too. */
export const ENQUEUER_COMMANDS: readonly string[] = unique([
  'fcall',
  'evalsha',
  'eval',
  'info',
  'client|setname',
  ...QUEUE_SCRIPT_COMMANDS,
]);
/** Commands a queue worker needs: the enqueuer's, and BLPOP on its inbox. */
export const WORKER_COMMANDS: readonly string[] = unique([...ENQUEUER_COMMANDS, 'blpop']);
/** Commands a queue monitor needs: the read-only observe script and the change announcements. */
export const QUEUE_MONITOR_COMMANDS: readonly string[] = unique([
  'fcall_ro',
  'evalsha_ro',
  'eval_ro',
  'ssubscribe',
  'sunsubscribe',
  'info',
  'client|setname',
  'time',
  'hget',
  'hgetall',
  'hmget',
  'exists',
  'xlen',
  'xinfo|groups',
  'xrange',
  'zcard',
  'zrange',
  'type',
]);

const USER_NAME = /^[A-Za-z0-9._:@-]{1,160}$/;

export interface AclOptions {
  group: string;
  prefix?: string;
  /** Name of the members' Redis user (default `understudy-<group>-member`). */
  memberUser?: string;
  /** Name of the monitors' Redis user (default `understudy-<group>-monitor`). */
  monitorUser?: string;
}

/** One Redis user: its name and its ACL rules, without a password (add `>secret` or `#sha256`). */
export interface AclUser {
  user: string;
  rules: readonly string[];
}

/**
 * Redis ACL rules (Redis 7.0 or later) for one group: a member user that reaches only the
 * group's keys and channel with only the commands the member scripts need, and a monitor user
 * that may only read those keys (`%R~`) and subscribe. Each rule list starts from `reset`, so
 * applying it again replaces whatever the user had; it ends with the user enabled but without
 * a password, so nobody can log in as it until one is added.
 *
 * No user gets FUNCTION LOAD: a user that may load functions may put its own code under the
 * names every group's members call (function names are server-wide, not per key). An operator
 * loads understudy's library (docs/SECURITY.md); until then, these users run the scripts.
 */
export function aclRules(options: AclOptions): { member: AclUser; monitor: AclUser } {
  const group = validateGroupName(options.group);
  const prefix = validatePrefix(options.prefix ?? DEFAULT_PREFIX);
  const keys = groupKeys(group, prefix);
  const keyPattern = `${globEscape(`${prefix}:{${group}}:`)}*`;
  const channel = globEscape(keys.events);
  const common = ['reset', 'resetchannels', 'on'];
  return {
    member: {
      user: validateUser('memberUser', options.memberUser ?? `understudy-${group}-member`),
      rules: [...common, `~${keyPattern}`, `&${channel}`, '-@all', ...MEMBER_COMMANDS.map((c) => `+${c}`)],
    },
    monitor: {
      user: validateUser('monitorUser', options.monitorUser ?? `understudy-${group}-monitor`),
      rules: [...common, `%R~${keyPattern}`, `&${channel}`, '-@all', ...MONITOR_COMMANDS.map((c) => `+${c}`)],
    },
  };
}

/**
 * Escapes Redis glob characters, so that a key or channel pattern matches the name literally.
 * Group names and prefixes have none of them today; the escape keeps a pattern from ever
 * widening to other groups' keys should the name rules be relaxed.
 */
export function globEscape(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function validateUser(field: string, user: string): string {
  if (!USER_NAME.test(user)) {
    throw new ConfigError(field, user, 'a Redis user name is 1-160 characters of A-Z a-z 0-9 . _ : @ -');
  }
  return user;
}

export interface QueueAclOptions {
  queue: string;
  prefix?: string;
  /** Default `understudy-q-<queue>-worker`. */
  workerUser?: string;
  /** Default `understudy-q-<queue>-enqueuer`. */
  enqueuerUser?: string;
  /** Default `understudy-q-<queue>-monitor`. */
  monitorUser?: string;
}

/**
 * Redis ACL rules for one queue, like `aclRules` for a group: a worker user and an enqueuer user
 * that reach only the queue's keys (`<prefix>:{q:<queue>}:*`, the workers' inboxes included) with
 * only the commands the queue scripts run, and a monitor user that may only read them.
 */
export function queueAclRules(options: QueueAclOptions): { worker: AclUser; enqueuer: AclUser; monitor: AclUser } {
  const queue = validateGroupName(options.queue, 'queue');
  const prefix = validatePrefix(options.prefix ?? DEFAULT_PREFIX);
  const keys = queueKeys(queue, prefix);
  const keyPattern = `${globEscape(`${prefix}:{q:${queue}}:`)}*`;
  const channel = globEscape(keys.events);
  const common = ['reset', 'resetchannels', 'on'];
  const writer = (field: string, user: string, commands: readonly string[]): AclUser => ({
    user: validateUser(field, user),
    rules: [...common, `~${keyPattern}`, `&${channel}`, '-@all', ...commands.map((c) => `+${c}`)],
  });
  return {
    worker: writer('workerUser', options.workerUser ?? `understudy-q-${queue}-worker`, WORKER_COMMANDS),
    enqueuer: writer('enqueuerUser', options.enqueuerUser ?? `understudy-q-${queue}-enqueuer`, ENQUEUER_COMMANDS),
    monitor: {
      user: validateUser('monitorUser', options.monitorUser ?? `understudy-q-${queue}-monitor`),
      rules: [...common, `%R~${keyPattern}`, `&${channel}`, '-@all', ...QUEUE_MONITOR_COMMANDS.map((c) => `+${c}`)],
    },
  };
}
