import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type AclUser, aclRules } from '@understudy/core';
import { describe } from '@understudy/core/failures';
import { Command, Option } from 'commander';
import { CliError, ExitCode } from '../../exit.js';
import type { Io } from '../../io.js';

interface AclCommandOptions {
  prefix: string;
  memberUser?: string;
  monitorUser?: string;
  memberPasswordFile?: string;
  monitorPasswordFile?: string;
  format: 'commands' | 'aclfile' | 'json';
}

export function aclCommand(io: Io, exit: (code: number) => void): Command {
  return new Command('acl')
    .summary('print Redis ACL rules for a group’s member and monitor users')
    .description(
      'Print Redis ACL rules (Redis 7.0 or later) for two users of one group: a member user that ' +
        'reaches only the group’s keys and announcement channel, with only the commands the ' +
        'member scripts run, and a monitor user that may only read those keys and subscribe. ' +
        'Each rule list starts with `reset`, so applying it again replaces what the user had. ' +
        'Passwords are printed as SHA-256 hashes (#...), never in clear; without a password ' +
        'file, a user has no password and nobody can log in as it until you add one. ' +
        'The scripts run as Redis functions: the member user may FCALL and the monitor user FCALL_RO, ' +
        'but neither may load functions (whoever may would choose the code every group runs), so ' +
        'load them as an operator with `understudy functions load`; until then both run the same ' +
        'scripts with EVALSHA / EVALSHA_RO. Needs no Redis connection.',
    )
    .argument('<group>', 'the group')
    .option('--prefix <prefix>', 'key prefix of the groups', 'understudy')
    .option('--member-user <name>', 'name of the members’ user (default: understudy-<group>-member)')
    .option('--monitor-user <name>', 'name of the monitors’ user (default: understudy-<group>-monitor)')
    .option('--member-password-file <file>', 'file holding the member user’s password (one line)')
    .option('--monitor-password-file <file>', 'file holding the monitor user’s password (one line)')
    .addOption(
      new Option('--format <format>', 'commands: ACL SETUSER lines for redis-cli; aclfile: lines for an ACL file')
        .choices(['commands', 'aclfile', 'json'])
        .default('commands'),
    )
    .addHelpText(
      'after',
      `
Examples:
  # apply now, as an administrator:
  understudy acl orders --member-password-file member.pw --monitor-password-file monitor.pw \\
    | redis-cli -u redis://admin:ADMIN_PASSWORD@redis.internal:6379
  # or keep them in the server's ACL file (aclfile directive), then ACL LOAD:
  understudy acl orders --format aclfile --member-password-file member.pw >> /etc/redis/users.acl
  # load the scripts as functions once per server (and after each upgrade), as an administrator:
  understudy functions load --redis redis://admin:ADMIN_PASSWORD@redis.internal:6379

Then: understudy run --redis redis://understudy-orders-member:PASSWORD@redis.internal:6379 ...
      understudy monitor orders --redis redis://understudy-orders-monitor:PASSWORD@redis.internal:6379
Listing every group (understudy status without a group) needs SCAN, which these users lack:
it would reveal the names of every key on the server. docs/SECURITY.md has the threat model.`,
    )
    .action((group: string, options: AclCommandOptions) => {
      io.stdout(printAcl(group, options, io));
      exit(ExitCode.ok);
    });
}

function printAcl(group: string, options: AclCommandOptions, io: Io): string {
  const { member, monitor } = aclRules({
    group,
    prefix: options.prefix,
    ...(options.memberUser ? { memberUser: options.memberUser } : {}),
    ...(options.monitorUser ? { monitorUser: options.monitorUser } : {}),
  });
  const users = [
    withPassword(member, options.memberPasswordFile, '--member-password-file', io),
    withPassword(monitor, options.monitorPasswordFile, '--monitor-password-file', io),
  ];
  if (users[0]?.user === users[1]?.user) {
    throw new CliError(`the member and monitor users must differ (both are ${users[0]?.user})`, ExitCode.usage);
  }
  switch (options.format) {
    case 'json':
      return `${JSON.stringify({ group, prefix: options.prefix, member: users[0], monitor: users[1] }, null, 2)}\n`;
    case 'aclfile':
      return users.map((u) => `user ${u.user} ${u.rules.join(' ')}\n`).join('');
    default:
      return users.map((u) => `ACL SETUSER ${u.user} ${u.rules.join(' ')}\n`).join('');
  }
}

/** Adds the password's SHA-256 (`#…`) right after `on`, or says on stderr that the user has none. */
function withPassword(user: AclUser, file: string | undefined, flag: string, io: Io): AclUser {
  if (file === undefined) {
    io.stderr(
      `note: ${user.user} gets no password (pass ${flag}); nobody can log in as it until you add one ` +
        `(ACL SETUSER ${user.user} >PASSWORD)\n`,
    );
    return user;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`${flag} ${file}: ${describe(error)}`, ExitCode.usage);
  }
  const password = text.replace(/\r?\n$/, '');
  if (password.length === 0 || /[\r\n]/.test(password)) {
    throw new CliError(`${flag} ${file}: the file must hold one non-empty line, the password`, ExitCode.usage);
  }
  const hash = createHash('sha256').update(password, 'utf8').digest('hex');
  const at = user.rules.indexOf('on') + 1;
  return { user: user.user, rules: [...user.rules.slice(0, at), `#${hash}`, ...user.rules.slice(at)] };
}
