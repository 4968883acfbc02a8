import type { Socket } from 'node:net';

/** The faults of one proxy, read by each of its links at every chunk. */
export interface LinkFaults {
  delayMs: number;
  jitterMs: number;
  blackhole: boolean;
}

/**
 * What travels from one socket to the other: bytes, a FIN (`end`) or an RST (`reset`).
 * FIN and RST travel through the same queue as the bytes so they never overtake them.
 */
type Segment = { kind: 'data'; chunk: Buffer; dueAt: number } | { kind: 'end' | 'reset'; dueAt: number };

/**
 * One direction of a proxied connection (client → Redis or Redis → client). Every segment
 * is held for delay ± jitter, but never released before the one ahead of it, so the byte
 * stream stays in order whatever the jitter. During a blackhole, bytes are lost, like
 * packets on a dead path, while FIN and RST wait until the path heals: over a dead path
 * they would be retransmitted, not lost, and nobody may see the connection close meanwhile.
 */
export class Direction {
  readonly #from: Socket;
  readonly #to: Socket;
  readonly #faults: LinkFaults;
  readonly #queue: Segment[] = [];
  #lastDueAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #waitingForDrain = false;

  constructor(from: Socket, to: Socket, faults: LinkFaults) {
    this.#from = from;
    this.#to = to;
    this.#faults = faults;
    from.on('data', (chunk: Buffer) => {
      if (!this.#faults.blackhole) this.#send({ kind: 'data', chunk });
    });
    from.on('end', () => this.#send({ kind: 'end' }));
    // A close with an error is an RST (or a failed connect): the other side gets one too.
    from.on('close', (hadError) => {
      if (hadError) this.#send({ kind: 'reset' });
    });
  }

  /** Releases what is due now; called by the timer and when a fault is lifted. */
  pump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = performance.now();
    for (let head = this.#queue[0]; head; head = this.#queue[0]) {
      if (head.dueAt > now) {
        this.#timer = setTimeout(() => this.pump(), Math.max(1, Math.ceil(head.dueAt - now)));
        this.#timer.unref();
        return;
      }
      if (head.kind !== 'data' && this.#faults.blackhole) return;
      this.#queue.shift();
      this.#deliver(head);
    }
  }

  /** Forgets everything in flight (the connection is being torn down). */
  discard(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }

  #send(segment: { kind: 'data'; chunk: Buffer } | { kind: 'end' | 'reset' }): void {
    const { delayMs, jitterMs } = this.#faults;
    const hold = Math.max(0, delayMs + (Math.random() * 2 - 1) * jitterMs);
    const now = performance.now();
    const dueAt = Math.max(this.#lastDueAt, now + hold);
    this.#lastDueAt = dueAt;
    if (this.#queue.length === 0 && dueAt <= now && (segment.kind === 'data' || !this.#faults.blackhole)) {
      this.#deliver({ ...segment, dueAt });
      return;
    }
    this.#queue.push({ ...segment, dueAt });
    if (!this.#timer) this.pump();
  }

  #deliver(segment: Segment): void {
    const to = this.#to;
    if (to.destroyed) return;
    if (segment.kind === 'data') {
      if (!this.#faults.blackhole && !to.write(segment.chunk)) this.#holdSourceUntilDrained();
    } else if (segment.kind === 'end') {
      to.end();
    } else {
      to.resetAndDestroy();
    }
  }

  /** Backpressure: a slow reader slows the writer instead of filling the proxy's memory. */
  #holdSourceUntilDrained(): void {
    if (this.#waitingForDrain) return;
    this.#waitingForDrain = true;
    this.#from.pause();
    this.#to.once('drain', () => {
      this.#waitingForDrain = false;
      this.#from.resume();
    });
  }
}
