import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { BrevoError } from '../brevo/client.js';
import { openStore } from '../store/index.js';
import { BrevoHealth, loadBrevoHealth } from './brevo-health.js';
import { createMetrics } from './metrics.js';
import { attemptCall } from './outcome.js';

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function harness() {
  const lines: Line[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
  const metrics = createMetrics();
  const health = new BrevoHealth({ log, metrics, now: () => clock.t });
  const gauge = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value;
  const at = (level: number) => lines.filter((l) => l.level === level);
  return { lines, clock, metrics, health, gauge, warn: () => at(40), info: () => at(30), ctx: { metrics, health } };
}

const fail503 = () => Promise.reject(new BrevoError('server_error', 'POST /events: 503 Service Unavailable', 503, 'events', true));

describe('BrevoHealth', () => {
  it('logs one warn line when a streak starts, nothing per call during it, one info line when it ends', async () => {
    const h = harness();
    expect((await attemptCall(h.ctx, 'events', () => Promise.resolve())).kind).toBe('done');
    const first = await attemptCall(h.ctx, 'events', fail503);
    expect(first).toMatchObject({ kind: 'retry', streakStart: true });
    h.health.announce({ attempts: 1, nextAt: h.clock.t + 2000 });
    for (let i = 0; i < 5; i++) {
      h.clock.t += 1000;
      const o = await attemptCall(h.ctx, 'events', fail503);
      expect(o).toEqual({ kind: 'retry', err: expect.any(BrevoError) });
      h.health.announce({ attempts: i + 2, nextAt: h.clock.t + 2000 }); // a second announce of one streak says nothing
    }
    expect(h.warn()).toHaveLength(1);
    expect(h.warn()[0]).toMatchObject({ code: 'server_error', status: 503, endpoint: 'events', attempts: 1, nextAt: '2026-01-01T00:00:02.000Z' });
    expect(h.info()).toHaveLength(0);
    expect(await h.gauge('tajo_ses_brevo_failure_streak')).toBe(6);
    expect(await h.gauge('tajo_ses_brevo_failure_streak_seconds')).toBe(5);
    h.clock.t += 4000; // no call: the streak's age still grows
    expect(await h.gauge('tajo_ses_brevo_failure_streak_seconds')).toBe(9);

    await attemptCall(h.ctx, 'events', () => Promise.resolve());
    expect(h.warn()).toHaveLength(1);
    expect(h.info()).toHaveLength(1);
    expect(h.info()[0]).toMatchObject({ seconds: 9, failedCalls: 6 });
    expect(await h.gauge('tajo_ses_brevo_failure_streak')).toBe(0);
    expect(await h.gauge('tajo_ses_brevo_failure_streak_seconds')).toBe(0);
    expect(await h.gauge('tajo_ses_brevo_last_success_timestamp_seconds')).toBe(h.clock.t / 1000);
    // Each failed call is there at debug level.
    expect(h.lines.filter((l) => l.level === 20 && l.msg === 'Brevo call failed')).toHaveLength(6);
  });

  it('a refusal or a 429 is not an outage', async () => {
    const h = harness();
    await attemptCall(h.ctx, 'events', () => Promise.reject(new BrevoError('invalid_parameter', 'bad', 400, 'events', false)));
    await attemptCall(h.ctx, 'events', () => Promise.reject(new BrevoError('too_many_requests', 'slow down', 429, 'events', true)));
    expect(h.health.snapshot().streak).toBeNull();
    expect(h.warn()).toHaveLength(0);
  });

  it('saves the snapshot where `tajo-ses status` reads it, at once when a streak starts and ends', async () => {
    const store = await openStore('sqlite::memory:');
    await store.migrate();
    try {
      const h = harness();
      const health = new BrevoHealth({ log: pino({ level: 'silent' }), metrics: h.metrics, store, now: () => h.clock.t });
      // Not flush(): a streak change must be saved without waiting for the next periodic save.
      const written = () => new Promise((r) => setTimeout(r, 20));
      health.success();
      await written();
      expect(await loadBrevoHealth(store)).toMatchObject({ streak: null, lastSuccessAt: h.clock.t });
      h.clock.t += 1000;
      health.failure('contacts', new Error('socket hang up'));
      await written();
      expect(await loadBrevoHealth(store)).toMatchObject({
        streak: { since: h.clock.t, calls: 1 },
        lastError: { code: 'error', endpoint: 'contacts', message: 'socket hang up' },
      });
      h.clock.t += 1000;
      health.failure('contacts', new Error('socket hang up')); // within the streak: saved later
      await written();
      expect(await loadBrevoHealth(store)).toMatchObject({ streak: { calls: 1 } });
      h.clock.t += 1000;
      health.success();
      await written();
      expect(await loadBrevoHealth(store)).toMatchObject({ streak: null, lastSuccessAt: h.clock.t });
    } finally {
      await store.close();
    }
  });
});
