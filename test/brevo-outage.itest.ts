// Issue 12: a Brevo outage is visible: one log line when it starts and one when it ends,
// Brevo's health in status and /metrics, and nothing lost once Brevo answers again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { sesEvent } from '../src/sim/ses-events/index.js';
import type { StatusReport } from '../src/engine/status.js';
import { ALL_EVENTS_BOTH, eventsByKey, metricValue, startStack, until, type Stack } from './helpers.js';

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

const STREAK_START = /^Brevo call failing/;
const STREAK_END = /^Brevo answers again/;

describe('a Brevo outage', () => {
  let stack: Stack;
  const lines: LogLine[] = [];

  beforeAll(async () => {
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
    stack = await startStack({ events: ALL_EVENTS_BOTH, logger, delivery: { max_attempts: 100 } });
  });
  afterAll(() => stack?.stop());

  let n = 0;
  const publish = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const env = stack.sns.notification(stack.topic, sesEvent('Delivery', { messageId: `outage-${++n}`, recipients: [`outage${n}@example.com`] }));
      expect((await stack.publish(env)).status).toBe(200);
    }
  };
  const delivered = () => [...eventsByKey(stack.brevo.state()).keys()].filter((k) => k !== '').length;

  it('is logged once at its start and once at its end, shown by status and /metrics while it lasts, and loses nothing', async () => {
    await publish(3);
    await until(() => delivered() >= 3, 'the first events in Brevo');

    stack.brevo.setFaults({ errorRate: 1 });
    const downAt = Date.now();
    await publish(10);
    const during = await until(async (): Promise<StatusReport | null> => {
      const s = await stack.connector.status();
      return s.brevo?.streak ? s : null;
    }, 'status to show the failure streak');
    expect(during?.brevo?.lastError).toMatchObject({ status: expect.any(Number) });
    expect(during?.brevo?.lastError?.status).toBeGreaterThanOrEqual(500);
    // A call already in flight when the faults began may still succeed: the last success
    // comes before the streak, which starts after the outage did.
    expect(during?.brevo?.lastSuccessAt).toBeLessThanOrEqual(during!.brevo!.streak!.since);
    expect(during!.brevo!.streak!.since).toBeGreaterThanOrEqual(downAt);
    await until(async () => (await stack.connector.status()).waitingErrors.count > 0, 'waiting work to carry the error');

    await new Promise((r) => setTimeout(r, Math.max(0, 5000 - (Date.now() - downAt))));
    const metrics = (await stack.get('/metrics')).text;
    expect(metricValue(metrics, 'tajo_ses_brevo_failure_streak')).toBeGreaterThan(1);
    expect(metricValue(metrics, 'tajo_ses_brevo_failure_streak_seconds')).toBeGreaterThan(3);
    expect(lines.filter((l) => STREAK_START.test(l.msg))).toHaveLength(1);

    stack.brevo.setFaults({ errorRate: 0 });
    await until(() => delivered() >= 13, 'every event in Brevo after the outage', 30_000);
    const after = await until(async (): Promise<StatusReport | null> => {
      const s = await stack.connector.status();
      return s.brevo && !s.brevo.streak ? s : null;
    }, 'status to show the streak over');
    expect(after?.brevo?.lastSuccessAt).toBeGreaterThan(downAt);
    expect(after?.deadLetters).toBe(0);
    expect(delivered()).toBe(13);

    const start = lines.filter((l) => STREAK_START.test(l.msg));
    const end = lines.filter((l) => STREAK_END.test(l.msg));
    expect(start).toHaveLength(1);
    expect(start[0]).toMatchObject({ level: 40, status: expect.any(Number), endpoint: expect.any(String), attempts: 1, nextAt: expect.any(String) });
    expect(end).toHaveLength(1);
    expect(end[0]).toMatchObject({ level: 30, seconds: expect.any(Number), failedCalls: expect.any(Number) });
    expect(end[0]!.seconds as number).toBeGreaterThan(4);
    expect(metricValue((await stack.get('/metrics')).text, 'tajo_ses_brevo_failure_streak')).toBe(0);
  });
});
