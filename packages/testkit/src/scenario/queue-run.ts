import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MemberProcess, type ProcessArgs, untilMembers } from './member-process.js';
import { CHILD_START_MS, RunCore } from './run.js';
import type { WorkerArgs, WorkerSpec } from './worker-args.js';

/** How often a worker's handler acts while a task runs (a `task-step`), in ms. */
const WORKER_STEP_MS = 10;

/**
 * `RunCore` with the queue workers of a scenario that has a `queue` (DESIGN §11): worker
 * processes started, stopped, and their histories merged with the members'.
 */
export class QueueRun extends RunCore {
  /** The queue workers of the run (`spawnWorker`), restarted ones included. */
  readonly workers: MemberProcess<WorkerArgs>[] = [];

  /**
   * Starts a queue worker (test/fixtures/queue-worker.ts) on the scenario's queue and waits
   * until it joined: like a member, through a chaos proxy of its own on a single Redis or a
   * replicated pair, else as a Sentinel client. A worker that exits unasked is a criterion not met.
   */
  async spawnWorker(spec: WorkerSpec): Promise<MemberProcess<WorkerArgs>> {
    const { queue } = this.scenario;
    const script = this.options.workerScript;
    if (!queue || !script) throw new Error(`${this.scenario.name} has no queue, or the run no workerScript`);
    if (this.topology.kind === 'cluster')
      throw new Error(
        `${this.scenario.name}: queue workers run on a single Redis, a pair or Sentinel, not on a Cluster`,
      );
    if (this.workers.some((w) => w.id === spec.id)) throw new Error(`worker ${spec.id} was started before`);
    const { links, url, connection } = await this.connect();
    const worker = new MemberProcess<WorkerArgs>(
      script,
      {
        ...queue,
        ...connection,
        url,
        queue: this.queueName,
        id: spec.id,
        weight: spec.weight,
        history: join(this.historyDir, `${spec.id}.jsonl`),
        stepMs: WORKER_STEP_MS,
      },
      join(this.historyDir, `${spec.id}.stderr.log`),
    );
    if (links) this.links.set(worker, links);
    this.workers.push(worker);
    void worker.exited.then((exit) => {
      if (this.gone.has(worker) || this.closed) return;
      this.gone.add(worker);
      this.recorder.record({ type: 'killed', member: worker.id });
      this.unmet(
        `worker ${worker.id} exited on its own (${exit.signal ?? `code ${exit.code}`}):\n${worker.logTail(12)}`,
      );
    });
    await untilMembers(
      [worker],
      () => worker.joined || !worker.running,
      `${spec.id} to join`,
      CHILD_START_MS,
      this.signal,
    );
    if (!worker.running) throw new Error(`${spec.id} exited before it joined:\n${worker.logTail()}`);
    return worker;
  }

  /** The scenario's queue (its workers' and its tasks'). */
  get queueName(): string {
    return `chaos-${this.scenario.name}`;
  }

  /** Workers started and not killed, not left. */
  liveWorkers(): MemberProcess<WorkerArgs>[] {
    return this.workers.filter((w) => w.running && !this.gone.has(w));
  }

  protected override reporters(): MemberProcess<ProcessArgs>[] {
    return [...this.processes, ...this.workers];
  }

  /** @internal */
  override async shutdown(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.workers.map((w) => w.stop()));
    await super.shutdown();
  }

  /** @internal */
  override historyFiles(): string[] {
    return [...super.historyFiles(), ...this.workers.map((w) => w.args.history).filter((path) => existsSync(path))];
  }
}
