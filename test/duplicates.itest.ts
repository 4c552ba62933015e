// At-least-once delivery (CONTRACT.md section 5): SNS replays an envelope (same MessageId), and
// SES may publish the same event in several envelopes (new MessageIds). Brevo must end up with
// exactly one custom event per SES record key either way. Counted on the Brevo simulator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { eventsByKey, eventsOf, inboxTotal, metricValue, startStack, type HttpAnswer, type Stack } from './helpers.js';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ plan: 'unlimited' });
});
afterAll(async () => {
  await stack?.stop();
});

/** Brevo events whose event_key starts with `ses:<messageId>:`, counted per key. */
function countsFor(messageId: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, evs] of eventsByKey(stack.brevo.state())) if (k.startsWith(`ses:${messageId}:`)) out[k] = evs.length;
  return out;
}

function outcomes(res: HttpAnswer[]): string[] {
  return res.map((r) => String(r.json?.outcome)).sort();
}

describe('the same SNS envelope delivered several times', () => {
  it('posted 5 times in a row: stored once, one Brevo event per SES record', async () => {
    const payload = sesEvent('Bounce', {
      messageId: 'dup-seq',
      recipients: ['Seq.One@Example.com', ' seq.two@example.com', 'SEQ.THREE@example.com '],
      bounceType: 'Permanent',
      feedbackId: 'dup-seq-fb',
      timestamp: '2026-03-01T10:00:00.000Z',
    });
    const env = stack.sns.notification(stack.topic, payload, { signatureVersion: '2' });
    const answers: HttpAnswer[] = [];
    for (let i = 0; i < 5; i++) answers.push(await stack.publish(env));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(outcomes(answers)).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate', 'stored']);
    await stack.connector.waitIdle(60_000);
    // And once more after it was delivered: still acknowledged, still dropped.
    expect((await stack.publish(env)).json?.outcome).toBe('duplicate');
    await stack.connector.waitIdle(60_000);

    expect(countsFor('dup-seq')).toEqual({
      'ses:dup-seq:Bounce:seq.one@example.com:dup-seq-fb': 1,
      'ses:dup-seq:Bounce:seq.two@example.com:dup-seq-fb': 1,
      'ses:dup-seq:Bounce:seq.three@example.com:dup-seq-fb': 1,
    });
    for (const e of ['seq.one@example.com', 'seq.two@example.com', 'seq.three@example.com']) {
      expect(stack.brevo.contact(e)?.emailBlacklisted).toBe(true);
      expect(eventsOf(stack.brevo.state(), e).map((x) => x.event_name)).toEqual(['ses_email_bounced']);
    }
    const m = await stack.get('/metrics');
    expect(metricValue(m.text, 'tajo_ses_webhook_requests_total', { outcome: 'duplicate' })).toBeGreaterThanOrEqual(5);
  });

  it('posted 5 times concurrently: exactly one is stored, the others are acknowledged as duplicates', async () => {
    const payload = sesEvent('Click', {
      messageId: 'dup-conc',
      recipients: ['Conc.One@Example.com', ' conc.two@example.com'],
      link: 'https://example.com/a',
      timestamp: '2026-03-02T10:00:00.000Z',
    });
    const env = stack.sns.notification(stack.topic, payload, { signatureVersion: '1' });
    const inboxBefore = await inboxTotal(stack.connector);
    const answers = await Promise.all(Array.from({ length: 5 }, () => stack.publish(env)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(outcomes(answers)).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate', 'stored']);
    expect(await inboxTotal(stack.connector)).toBe(inboxBefore + 1);
    await stack.connector.waitIdle(60_000);
    expect(countsFor('dup-conc')).toEqual({
      'ses:dup-conc:Click:conc.one@example.com:2026-03-02T10:00:00.000Z:https://example.com/a': 1,
      'ses:dup-conc:Click:conc.two@example.com:2026-03-02T10:00:00.000Z:https://example.com/a': 1,
    });
  });

  it('the same body posted concurrently over raw HTTP (also with other content types) is stored once', async () => {
    const payload = sesEvent('Complaint', {
      messageId: 'dup-raw',
      recipients: ['raw.one@example.com', 'Raw.Two@Example.com'],
      feedbackId: 'dup-raw-fb',
      timestamp: '2026-03-03T10:00:00.000Z',
    });
    const body = JSON.stringify(stack.sns.notification(stack.topic, payload));
    const types = ['text/plain; charset=UTF-8', 'application/json', 'text/plain', 'application/octet-stream', 'text/plain; charset=UTF-8'];
    const answers = await Promise.all(types.map((ct) => stack.post(body, { 'content-type': ct })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(outcomes(answers)).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate', 'stored']);
    await stack.connector.waitIdle(60_000);
    expect(countsFor('dup-raw')).toEqual({
      'ses:dup-raw:Complaint:raw.one@example.com:dup-raw-fb': 1,
      'ses:dup-raw:Complaint:raw.two@example.com:dup-raw-fb': 1,
    });
  });
});

describe('the same SES payload in different envelopes (new MessageIds)', () => {
  it('3 envelopes, sequential and concurrent: every envelope stored, one Brevo event per record key', async () => {
    const payload = sesEvent('DeliveryDelay', {
      messageId: 'dup-ses',
      recipients: ['Delay.One@Example.com', ' delay.two@example.com', 'DELAY.THREE@example.com'],
      timestamp: '2026-03-04T10:00:00.000Z',
    });
    const envs = [1, 2, 3].map((i) => stack.sns.notification(stack.topic, payload, { signatureVersion: i % 2 === 0 ? '1' : '2' }));
    expect(new Set(envs.map((e) => e.MessageId)).size).toBe(3);
    const inboxBefore = await inboxTotal(stack.connector);
    const first = await stack.publish(envs[0]!);
    expect(first.json?.outcome).toBe('stored');
    await stack.connector.waitIdle(60_000);
    const rest = await Promise.all(envs.slice(1).map((e) => stack.publish(e)));
    expect(outcomes(rest)).toEqual(['stored', 'stored']);
    expect(await inboxTotal(stack.connector)).toBe(inboxBefore + 3);
    await stack.connector.waitIdle(60_000);
    const ts = '2026-03-04T10:00:00.000Z';
    expect(countsFor('dup-ses')).toEqual({
      [`ses:dup-ses:DeliveryDelay:delay.one@example.com:${ts}`]: 1,
      [`ses:dup-ses:DeliveryDelay:delay.two@example.com:${ts}`]: 1,
      [`ses:dup-ses:DeliveryDelay:delay.three@example.com:${ts}`]: 1,
    });
  });

  it('a permanent bounce in 3 envelopes at once: one event per recipient, blocklisted, never unblocked', async () => {
    const payload = sesEvent('Bounce', {
      messageId: 'dup-ses-bounce',
      recipients: ['Twice.One@Example.com', 'twice.two@example.com'],
      bounceType: 'Permanent',
      feedbackId: 'dup-ses-bounce-fb',
      timestamp: '2026-03-05T10:00:00.000Z',
    });
    const envs = [1, 2, 3].map(() => stack.sns.notification(stack.topic, payload));
    const answers = await Promise.all(envs.map((e) => stack.publish(e)));
    expect(outcomes(answers)).toEqual(['stored', 'stored', 'stored']);
    await stack.connector.waitIdle(60_000);
    expect(countsFor('dup-ses-bounce')).toEqual({
      'ses:dup-ses-bounce:Bounce:twice.one@example.com:dup-ses-bounce-fb': 1,
      'ses:dup-ses-bounce:Bounce:twice.two@example.com:dup-ses-bounce-fb': 1,
    });
    const s = stack.brevo.state();
    expect(s.contacts['twice.one@example.com']?.emailBlacklisted).toBe(true);
    expect(s.contacts['twice.one@example.com']?.attributes).toMatchObject({ SES_BOUNCE_TYPE: 'Permanent', SES_SUPPRESSED: true });
  });

  it('one recipient listed twice in one payload (different case and spaces) gets one event', async () => {
    const payload = sesEvent('Click', {
      messageId: 'dup-in-payload',
      recipients: ['Twin@Example.com', ' twin@example.com ', 'TWIN@EXAMPLE.COM'],
      link: 'https://example.com/t',
      timestamp: '2026-03-06T10:00:00.000Z',
    });
    expect((await stack.publish(stack.sns.notification(stack.topic, payload))).status).toBe(200);
    await stack.connector.waitIdle(60_000);
    expect(countsFor('dup-in-payload')).toEqual({ 'ses:dup-in-payload:Click:twin@example.com:2026-03-06T10:00:00.000Z:https://example.com/t': 1 });
  });

  it('whole-suite check: no event key twice in Brevo, nothing dropped, nothing unblocked', () => {
    const s = stack.brevo.state();
    const dups = [...eventsByKey(s)].filter(([, evs]) => evs.length > 1).map(([k]) => k);
    expect(dups).toEqual([]);
    expect(s.events.every((e) => typeof e.event_properties?.event_key === 'string')).toBe(true);
    expect(s.dropped).toEqual([]);
    expect(s.unblocks).toEqual([]);
  });
});
