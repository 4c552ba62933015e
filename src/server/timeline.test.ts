import { describe, expect, it } from 'vitest';
import { Timeline, counterSum } from './timeline.js';

const text = (accepted: number, delivered: number, retries: number, dead: number) =>
  [
    '# HELP tajo_ses_webhook_requests_total x',
    `tajo_ses_webhook_requests_total{outcome="accepted"} ${accepted}`,
    'tajo_ses_webhook_requests_total{outcome="duplicate"} 7',
    `tajo_ses_delivered_total{kind="event"} ${delivered}`,
    'tajo_ses_delivered_total{kind="contact"} 1',
    `tajo_ses_retries_total{kind="event",code="brevo_unavailable"} ${retries}`,
    `tajo_ses_dead_letters_total{kind="event",code="invalid_parameter"} ${dead}`,
    'tajo_ses_delivered_total_other 100',
  ].join('\n');

describe('Timeline', () => {
  it('counterSum adds every label set of one counter, optionally only those with a label', () => {
    const t = text(3, 4, 5, 6);
    expect(counterSum(t, 'tajo_ses_delivered_total')).toBe(5);
    expect(counterSum(t, 'tajo_ses_webhook_requests_total', 'outcome="accepted"')).toBe(3);
    expect(counterSum(t, 'tajo_ses_webhook_requests_total')).toBe(10);
  });

  it('adds what moved between reads to the minute it was read in, keeps the largest lag, and forgets old minutes', async () => {
    let now = Date.UTC(2026, 0, 1, 10, 0, 5);
    let metrics = text(10, 10, 0, 0);
    let lag = 3;
    const tl = new Timeline({ metricsText: async () => metrics, lagSeconds: async () => lag }, { now: () => now, minutes: 2 });
    await tl.tick(); // the first read is the baseline
    expect(tl.series()).toEqual([{ t: Date.UTC(2026, 0, 1, 10, 0), received: 0, delivered: 0, failed: 0, lag: 3 }]);
    [now, metrics, lag] = [now + 20_000, text(15, 12, 2, 1), 1];
    await tl.tick();
    expect(tl.series()[0]).toMatchObject({ received: 5, delivered: 2, failed: 3, lag: 3 });
    [now, metrics, lag] = [now + 60_000, text(16, 12, 2, 1), 8];
    await tl.tick();
    expect(tl.series().map((p) => [p.received, p.lag])).toEqual([
      [5, 3],
      [1, 8],
    ]);
    // A counter that restarted from zero counts from zero.
    [now, metrics] = [now + 60_000, text(2, 0, 0, 0)];
    await tl.tick();
    expect(tl.series().map((p) => [p.t, p.received])).toEqual([
      [Date.UTC(2026, 0, 1, 10, 1), 1],
      [Date.UTC(2026, 0, 1, 10, 2), 2],
    ]);
  });
});
