// Dead letters under the DEFAULT delivery.max_attempts: a write Brevo refuses (4xx) is final
// at its first attempt, while the other writes of the same SES message still arrive. Only
// Brevo's own faults are retried (test/faults.itest.ts); test/admin.itest.ts shows the dead
// letters to an operator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesEvent } from '../src/sim/ses-events/index.js';
import type { OpRow } from '../src/store/port.js';
import { eventsOf, startStack, type Stack } from './helpers.js';

// SES delivers to addresses without a dot in the domain; Brevo (and its simulator) refuses them.
const REFUSED = 'reader@intranet';
const GOOD = ['ann@example.com', 'bob@example.com', 'cid@example.com'];

/**
 * On: POST /events/batch carrying the refused address is answered 400 for the whole batch,
 * nothing applied (the simulator itself answers 207 and applies the others, as current Brevo
 * does; a 400 is what Brevo answers when it refuses a batch outright).
 */
let refuseWholeBatch = false;
/** Batches refused that way (they never reach the simulator). */
let wholeBatchRefusals = 0;
const brevoFetch: typeof fetch = async (input, init) => {
  if (refuseWholeBatch && String(input).endsWith('/events/batch') && typeof init?.body === 'string' && init.body.includes(REFUSED)) {
    wholeBatchRefusals++;
    return Response.json({ code: 'invalid_parameter', message: `identifiers.email_id ${REFUSED} is not a valid email address` }, { status: 400 });
  }
  return fetch(input, init);
};

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ plan: 'unlimited', connector: { fetchImpl: brevoFetch } });
  // The point of this file: nothing here may lower max_attempts, or a retried refusal would look final.
  expect(stack.connector.config.delivery.max_attempts).toBe(12);
});
afterAll(async () => {
  await stack?.stop();
});

/** Brevo calls on one route so far (keyed as the simulator counts them). */
const calls = (route: 'POST /v3/contacts' | 'POST /v3/events' | 'POST /v3/events/batch') => stack.brevo.stats().byRoute[route] ?? 0;

async function deadLetters(): Promise<OpRow[]> {
  return stack.connector.store.listFailures({ limit: 100 });
}

async function publishAndDrain(type: 'Open' | 'Click', messageId: string, recipients: string[]): Promise<void> {
  const payload = sesEvent(type, { messageId, recipients, timestamp: '2026-04-01T10:00:00.000Z' });
  expect((await stack.publish(stack.sns.notification(stack.topic, payload))).status).toBe(200);
  await stack.connector.waitIdle(60_000);
}

describe('a write Brevo refuses', () => {
  it('a contact write answered 400 is a dead letter after one attempt: Brevo sees it once', async () => {
    const before = { contacts: calls('POST /v3/contacts'), refused: stack.brevo.stats().status['400'] ?? 0 };
    // Open is attributes-only by default: one contact write, no event.
    await publishAndDrain('Open', 'dead-open', [REFUSED]);

    const dead = await deadLetters();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ kind: 'contact', state: 'dead', email: REFUSED, attempts: 1, lastStatus: 400, lastCode: 'invalid_parameter' });
    expect(calls('POST /v3/contacts')).toBe(before.contacts + 1);
    expect(stack.brevo.stats().status['400'] ?? 0).toBe(before.refused + 1);
    expect(stack.brevo.contact(REFUSED)).toBeUndefined();
  });

  it('one refused event in a batch (Brevo answers 207): the others arrive, only it is dead, nothing is sent twice', async () => {
    const before = { batches: calls('POST /v3/events/batch'), singles: calls('POST /v3/events'), dead: (await deadLetters()).length };
    // Click is event and attributes: four events in one batch, four contact writes.
    await publishAndDrain('Click', 'dead-click-207', [GOOD[0]!, REFUSED, GOOD[1]!, GOOD[2]!]);

    const state = stack.brevo.state();
    for (const email of GOOD)
      expect(
        eventsOf(state, email).map((e) => e.event_properties?.event_key),
        email,
      ).toHaveLength(1);
    expect(calls('POST /v3/events/batch')).toBe(before.batches + 1);
    expect(calls('POST /v3/events')).toBe(before.singles);
    const dead = (await deadLetters()).slice(before.dead);
    expect(dead.map((d) => [d.kind, d.email, d.attempts])).toEqual(
      expect.arrayContaining([
        ['event', REFUSED, 1],
        ['contact', REFUSED, 1],
      ]),
    );
    expect(dead).toHaveLength(2);
  });

  it('a batch Brevo refuses whole (400) is sent again one event at a time: the others arrive, only the refused one is dead', async () => {
    refuseWholeBatch = true;
    try {
      const before = { singles: calls('POST /v3/events'), dead: (await deadLetters()).length };
      const recipients = ['dee@example.com', REFUSED, 'eve@example.com', 'fay@example.com'];
      await publishAndDrain('Click', 'dead-click-400', recipients);

      const state = stack.brevo.state();
      for (const email of recipients.filter((r) => r !== REFUSED)) {
        expect(
          eventsOf(state, email).filter((e) => String(e.event_properties?.event_key).startsWith('ses:dead-click-400:')),
          email,
        ).toHaveLength(1);
      }
      // One batch, refused; then each of its four events alone, once.
      expect(wholeBatchRefusals).toBe(1);
      expect(calls('POST /v3/events')).toBe(before.singles + recipients.length);
      const dead = (await deadLetters()).slice(before.dead);
      const deadEvents = dead.filter((d) => d.kind === 'event');
      expect(deadEvents.map((d) => [d.email, d.attempts, d.lastStatus])).toEqual([[REFUSED, 1, 400]]);
      expect(dead.filter((d) => d.kind === 'contact').map((d) => [d.email, d.attempts])).toEqual([[REFUSED, 1]]);
    } finally {
      refuseWholeBatch = false;
    }
  });
});
