// When two threads share one SQLite file (`serve` with its engine thread), only one can
// write at a time. The thread that acknowledges webhooks goes first: while it is writing or
// waiting to write, the engine thread starts no new transaction, so an acknowledgement waits
// at most for the end of the engine's current one. The state is one shared counter.

export type GateRole = 'ingest' | 'engine';

export class WriteGate {
  private readonly cell: Int32Array;

  constructor(
    readonly role: GateRole,
    readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4),
    /** The engine's longest wait before it writes anyway (a steady burst must not starve it). */
    private readonly maxWaitMs = 20,
  ) {
    this.cell = new Int32Array(buffer);
  }

  /** Ingest side: a write is wanted from now until `leave`. */
  enter(): void {
    Atomics.add(this.cell, 0, 1);
  }

  leave(): void {
    Atomics.sub(this.cell, 0, 1);
    Atomics.notify(this.cell, 0);
  }

  /** Engine side: blocks this thread while the ingest side wants to write (at most `maxWaitMs`). */
  yieldToIngest(): void {
    const deadline = performance.now() + this.maxWaitMs;
    for (;;) {
      const v = Atomics.load(this.cell, 0);
      const left = deadline - performance.now();
      if (v === 0 || left <= 0) return;
      Atomics.wait(this.cell, 0, v, left);
    }
  }
}
