// A contender in a process of its own: an understudy member or one of its peers. Prints every
// event as one JSON line with an hrtime stamp (ms, comparable across processes). Commands on
// stdin, one a line: `join <id> <weight>`, `leave`. Exits when stdin closes (its parent died).
import { createInterface } from 'node:readline';
import { hrNow } from './clock.js';
import type { Candidate, ContenderConfig, Emit, StartCandidate } from './contenders/types.js';

/** Loads only the library under test: a process starts faster, and carries nothing else. */
const STARTERS: Record<ContenderConfig['kind'], () => Promise<StartCandidate>> = {
  understudy: async () => (await import('./contenders/understudy.js')).startUnderstudy,
  redlock: async () => (await import('./contenders/redlock.js')).startRedlock,
  mutex: async () => (await import('./contenders/semaphore.js')).startSemaphore,
  semaphore: async () => (await import('./contenders/semaphore.js')).startSemaphore,
  etcd: async () => (await import('./contenders/etcd.js')).startEtcd,
};

const config = JSON.parse(process.argv[2] ?? '{}') as ContenderConfig;
const start = await STARTERS[config.kind]();
const emit: Emit = (event, fields = {}) =>
  process.stdout.write(`${JSON.stringify({ t: hrNow(), event, ...fields })}\n`);
// A client library that loses its Redis (a failover) may leave a rejected promise unhandled;
// the contender reports it and competes on, rather than dying with its belief.
process.on('unhandledRejection', (reason) =>
  emit('error', { message: `unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}` }),
);
let candidate: Candidate | undefined;
let work = Promise.resolve();

async function run(line: string): Promise<void> {
  const [command, id = '', weight = '100'] = line.trim().split(/\s+/);
  try {
    if (command === 'join' && !candidate) {
      emit('joining', { member: id });
      candidate = await start(config, { id, weight: Number(weight) }, emit);
      emit('joined', { member: id });
    } else if (command === 'leave' && candidate) {
      const leaving = candidate;
      candidate = undefined;
      emit('leaving');
      await leaving.leave();
      emit('left');
    }
  } catch (error) {
    emit('error', { message: error instanceof Error ? error.message : String(error) });
  }
}

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  work = work.then(() => run(line));
});
input.on('close', () => process.exit(0));
emit('ready', { pid: process.pid });
