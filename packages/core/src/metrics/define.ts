import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** One metric of a table: made on a registry, its name after the metrics' prefix. */
export interface MetricSpec<M> {
  make(registers: Registry[], prefix: string): M;
}

export function gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): MetricSpec<Gauge<L>> {
  return { make: (registers, prefix) => new Gauge({ name: prefix + name, help, labelNames, registers }) };
}

export function counter<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[],
): MetricSpec<Counter<L>> {
  return { make: (registers, prefix) => new Counter({ name: prefix + name, help, labelNames, registers }) };
}

export function histogram<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[],
  buckets: number[],
): MetricSpec<Histogram<L>> {
  return { make: (registers, prefix) => new Histogram({ name: prefix + name, help, labelNames, buckets, registers }) };
}

/** The metrics a table declares, by the table's keys. */
export type Defined<T> = { readonly [K in keyof T]: T[K] extends MetricSpec<infer M> ? M : never };

/** Metrics by the names the code uses for them. */
export type MetricTable = Record<string, MetricSpec<unknown>>;

/** Registers every metric of a table on one registry, each name with the metrics' prefix. */
export function define<T extends MetricTable>(table: T, registry: Registry, prefix: string): Defined<T> {
  const registers = [registry];
  return Object.fromEntries(
    Object.entries(table).map(([key, spec]) => [key, spec.make(registers, prefix)]),
  ) as Defined<T>;
}

/** Adds each listener to the emitter; the function returned removes them all again. */
export function listen<T extends Record<keyof T, unknown[]>>(
  emitter: EventEmitter<T>,
  listeners: NoInfer<{ [E in keyof T]?: (...args: T[E]) => void }>,
): () => void {
  // The map is typed per event; Node's untyped view of the emitter adds and removes them alike.
  const untyped = emitter as unknown as EventEmitter;
  const entries = Object.entries(listeners) as [string, (...args: unknown[]) => void][];
  for (const [event, listener] of entries) untyped.on(event, listener);
  return () => {
    for (const [event, listener] of entries) untyped.off(event, listener);
  };
}
