import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  redis: string;
  etcd: string | undefined;
  kernel: string;
  /** /proc/loadavg when the run started. */
  loadAverage: string;
  /** The commit measured, and whether packages/core had uncommitted changes. */
  revision: string;
}

function run(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function readLoadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** The CPU's model name, from /proc/cpuinfo. */
function cpuModel(): string {
  return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
}

function cores(): number {
  return Number(run('nproc', [])) || availableParallelism();
}

/** The CPU as the report names it: its model and how many cores. */
export function cpuLabel(m: Pick<Machine, 'cpuModel' | 'nproc'>): string {
  return `${m.cpuModel}, nproc = ${m.nproc}`;
}

/** This machine's CPU, as `cpuLabel` names it. */
export function describeCpu(): string {
  return cpuLabel({ cpuModel: cpuModel(), nproc: cores() });
}

export function describeMachine(redisBinary: string, etcdBinary: string | undefined): Machine {
  const redisVersion = /v=(\S+)/.exec(run(redisBinary, ['--version']) ?? '')?.[1] ?? 'unknown';
  const etcdVersion = etcdBinary ? /etcd Version:\s*(\S+)/.exec(run(etcdBinary, ['--version']) ?? '')?.[1] : undefined;
  return {
    nproc: cores(),
    cpuModel: cpuModel(),
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    redis: redisVersion,
    etcd: etcdVersion,
    kernel: run('uname', ['-r']) ?? 'unknown',
    loadAverage: readLoadAverage(),
    revision: describeRevision(),
  };
}

export function describeRevision(): string {
  const commit = run('git', ['rev-parse', '--short', 'HEAD']);
  if (!commit) return 'unknown (not a git checkout)';
  const changed = (run('git', ['status', '--porcelain', '--', 'packages/core/src']) ?? '').split('\n').filter(Boolean);
  return changed.length ? `${commit} + uncommitted changes in ${changed.length} file(s) of packages/core/src` : commit;
}
