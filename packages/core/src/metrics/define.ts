import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Defines prom-client metrics on one registry, each name with the metrics' prefix: one place for the options. */
export class MetricDefinitions {
  readonly #registers: Registry[];
  readonly #prefix: string;

  constructor(registry: Registry, prefix: string) {
    this.#registers = [registry];
    this.#prefix = prefix;
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> {
    return new Gauge({ name: this.#prefix + name, help, labelNames, registers: this.#registers });
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return new Counter({ name: this.#prefix + name, help, labelNames, registers: this.#registers });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name: this.#prefix + name, help, labelNames, buckets, registers: this.#registers });
  }
}
