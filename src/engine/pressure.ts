// Is the event loop saturated right now? Measured as event-loop utilization over the last
// quarter second: above the threshold, webhooks are using the whole thread.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export class LoopPressure {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private lastAt = Date.now();
  private value = 0;

  constructor(private readonly threshold = 0.85) {}

  busy(): boolean {
    const now = Date.now();
    if (now - this.lastAt >= 250) {
      const cur = performance.eventLoopUtilization();
      this.value = performance.eventLoopUtilization(cur, this.last).utilization;
      this.last = cur;
      this.lastAt = now;
    }
    return this.value >= this.threshold;
  }
}
