import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BLOCKLIST_LINGER_MS, backoffMs, fillWait, mayBeInBrevo, plannedCall } from './deliver.js';
import { planBrevoOperations, type ContactPayload, type EventPayload } from '../core/plan.js';
import { SES_EVENT_TYPES, type SesEventType } from '../core/types.js';
import { parseSesNotification } from '../ses/parse.js';
import { sesEvent } from '../sim/ses-events/index.js';

describe('fillWait (a realtime round waits until it is worth a call)', () => {
  const now = 10_000;
  const due = (count: number, oldestDueAt: number | null, topPriority: number | null = 2, lastClaimAt: number | null = null) => ({
    count,
    oldestDueAt,
    topPriority,
    lastClaimAt,
  });

  it('nothing due: idle (0); a full claim: at once; a partial one: the rest of the linger of its oldest operation', () => {
    expect(fillWait(due(0, null, null), { full: 200, lingerMs: 1000, now })).toBe(0);
    expect(fillWait(due(200, now, 2), { full: 200, lingerMs: 1000, now })).toBeUndefined();
    expect(fillWait(due(5, now - 300), { full: 200, lingerMs: 1000, now })).toEqual({ holdMs: 700 });
    expect(fillWait(due(5, now - 1000), { full: 200, lingerMs: 1000, now })).toBeUndefined();
    expect(fillWait(due(5, now - 5000), { full: 200, lingerMs: 1000, now })).toBeUndefined();
  });

  it('linger 0 claims whatever is due; a blocklisting waits at most BLOCKLIST_LINGER_MS, however long the linger', () => {
    expect(fillWait(due(1, now), { full: 200, lingerMs: 0, now })).toBeUndefined();
    expect(fillWait(due(3, now - 200, 0), { full: 500, lingerMs: 5000, now })).toEqual({ holdMs: BLOCKLIST_LINGER_MS - 200 });
    expect(fillWait(due(3, now - BLOCKLIST_LINGER_MS, 0), { full: 500, lingerMs: 5000, now })).toBeUndefined();
    // A critical event (priority 1) is not a blocklisting: it waits like the others.
    expect(fillWait(due(3, now - BLOCKLIST_LINGER_MS, 1), { full: 500, lingerMs: 5000, now })).toEqual({ holdMs: 5000 - BLOCKLIST_LINGER_MS });
    // A shorter linger than the blocklisting's cap applies to it too.
    expect(fillWait(due(3, now - 100, 0), { full: 500, lingerMs: 300, now })).toEqual({ holdMs: 200 });
  });

  it("a partial round also waits a linger after the cluster's last round (operations made visible late look long due); a full one does not", () => {
    expect(fillWait(due(7, now - 1500, 2, now - 300), { full: 200, lingerMs: 1000, now })).toEqual({ holdMs: 700 });
    expect(fillWait(due(7, now - 1500, 2, now - 1000), { full: 200, lingerMs: 1000, now })).toBeUndefined();
    expect(fillWait(due(7, now - 200, 2, now - 5000), { full: 200, lingerMs: 1000, now })).toEqual({ holdMs: 800 });
    expect(fillWait(due(200, now - 1500, 2, now - 10), { full: 200, lingerMs: 1000, now })).toBeUndefined();
    expect(fillWait(due(3, now - 1500, 0, now - 100), { full: 500, lingerMs: 5000, now })).toEqual({ holdMs: BLOCKLIST_LINGER_MS - 100 });
  });
});

describe('backoffMs', () => {
  it('stays between half and all of base * 2^(n-1), capped at max (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 1, max: 86_400_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempts, base, max, r) => {
          const step = Math.min(max, base * 2 ** (attempts - 1));
          const ms = backoffMs(attempts, base, max, () => r);
          expect(Number.isInteger(ms)).toBe(true);
          expect(ms).toBeGreaterThanOrEqual(Math.floor(step / 2));
          expect(ms).toBeLessThanOrEqual(Math.ceil(step));
          expect(ms).toBeLessThanOrEqual(Math.max(max, 1));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('doubles per attempt until the cap', () => {
    const lo = () => 0;
    const hi = () => 0.999999;
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, 1000, 60_000, lo))).toEqual([500, 1000, 2000, 4000, 8000]);
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, 1000, 60_000, hi))).toEqual([1000, 2000, 4000, 8000, 16_000]);
    expect(backoffMs(10, 1000, 60_000, lo)).toBe(30_000);
    expect(backoffMs(10, 1000, 60_000, hi)).toBe(60_000);
    expect(backoffMs(100, 1000, 15 * 60_000, hi)).toBe(15 * 60_000);
  });

  it('treats attempt 0 like attempt 1 and uses Math.random by default', () => {
    expect(backoffMs(0, 1000, 60_000, () => 0)).toBe(500);
    for (let i = 0; i < 50; i++) {
      const ms = backoffMs(3, 1000, 60_000);
      expect(ms).toBeGreaterThanOrEqual(2000);
      expect(ms).toBeLessThanOrEqual(4000);
    }
  });

  it('is monotone in the attempt number for a fixed draw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, r) => {
        expect(backoffMs(n + 1, 250, 900_000, () => r)).toBeGreaterThanOrEqual(backoffMs(n, 250, 900_000, () => r));
      }),
    );
  });
});

describe('mayBeInBrevo', () => {
  it('an event tried before may be in Brevo when its last attempt got no readable answer, or its lookup failed', () => {
    expect(mayBeInBrevo({ attempts: 1, lastCode: null })).toBe(false);
    expect(mayBeInBrevo({ attempts: 2, lastCode: null })).toBe(true);
    for (const code of ['network_error', 'timeout', 'bad_response', 'interrupted', 'lookup_server_error', 'lookup_too_many_requests'])
      expect(mayBeInBrevo({ attempts: 3, lastCode: code }), code).toBe(true);
    for (const code of ['too_many_requests', 'server_error', 'internal_error']) expect(mayBeInBrevo({ attempts: 3, lastCode: code }), code).toBe(false);
    expect(mayBeInBrevo({ attempts: 1, lastCode: 'timeout' })).toBe(false);
  });
});

describe('plannedCall', () => {
  const event: EventPayload = {
    event_name: 'ses_email_bounced',
    event_date: '2026-02-03T10:00:00.000Z',
    identifiers: { email_id: 'ann@example.com' },
    event_properties: { event_key: 'ses:m:Bounce:ann@example.com:fb', message_id: 'm' },
  };

  it('an event op is POST /v3/events with the payload as body', () => {
    expect(plannedCall({ kind: 'event', email: 'ann@example.com', payload: event })).toEqual({ method: 'POST', path: '/v3/events', body: event });
  });

  it('a contact op is POST /v3/contacts with email, attribute values, emailBlacklisted true and list ids', () => {
    const payload: ContactPayload = {
      attrs: { SES_LAST_EVENT: { v: 'Bounce', at: 1 }, SES_SUPPRESSED: { v: true, at: 1 }, SES_LAST_BOUNCED_AT: { v: '2026-02-03', at: 1 } },
      blocklist: true,
      listIds: [4, 9],
    };
    expect(plannedCall({ kind: 'contact', email: 'ann@example.com', payload })).toEqual({
      method: 'POST',
      path: '/v3/contacts',
      body: {
        email: 'ann@example.com',
        attributes: { SES_LAST_EVENT: 'Bounce', SES_SUPPRESSED: true, SES_LAST_BOUNCED_AT: '2026-02-03' },
        emailBlacklisted: true,
        listIds: [4, 9],
      },
    });
  });

  it('never carries emailBlacklisted:false, nor empty attributes or list ids', () => {
    const call = plannedCall({
      kind: 'contact',
      email: 'bob@example.com',
      payload: { attrs: { SES_LAST_EVENT: { v: 'Open', at: 1 } }, blocklist: false, listIds: [] } satisfies ContactPayload,
    });
    expect(call.body).toEqual({ email: 'bob@example.com', attributes: { SES_LAST_EVENT: 'Open' } });
    expect(call.body).not.toHaveProperty('emailBlacklisted');
    const bare = plannedCall({ kind: 'contact', email: 'cy@example.com', payload: { attrs: {}, blocklist: true } satisfies ContactPayload });
    expect(bare.body).toEqual({ email: 'cy@example.com', emailBlacklisted: true });
  });

  it('shows the calls for real planned operations of every SES event type', () => {
    const policies = Object.fromEntries(SES_EVENT_TYPES.map((t) => [t, 'both'])) as Record<SesEventType, 'both'>;
    for (const type of SES_EVENT_TYPES) {
      const recs = parseSesNotification(sesEvent(type, { recipients: ['dee@example.com'], unsubscribeAll: type === 'Subscription' })).records;
      for (const op of planBrevoOperations(recs, { events: policies })) {
        const call = plannedCall(op);
        expect(call.method).toBe('POST');
        if (op.kind === 'event') {
          expect(call.path).toBe('/v3/events');
          expect(call.body).toBe(op.payload);
        } else {
          expect(call.path).toBe('/v3/contacts');
          const body = call.body as { email: string; emailBlacklisted?: boolean; attributes?: Record<string, unknown> };
          expect(body.email).toBe('dee@example.com');
          expect(body.emailBlacklisted).toBe(op.payload.blocklist ? true : undefined);
          expect(JSON.stringify(body)).not.toContain('"emailBlacklisted":false');
          expect(body.attributes?.SES_LAST_EVENT).toBe(type);
        }
      }
    }
  });
});
