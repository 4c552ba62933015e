// Fuzzing POST /webhooks/amazon-ses over real HTTP, from valid signed envelopes of the SNS
// simulator carrying valid SES payloads of src/sim/ses-events, mutated (fields set to hostile
// values, removed, retyped, numbers as strings, unicode, nesting, damaged text), plus random
// bodies. Whatever arrives:
//   - no 500, no unhandled rejection, and the server keeps answering (and processing);
//   - no 200 for an envelope whose signature does not verify, by an oracle written here
//     from the SNS documentation, independent of src/ses/sns.ts;
//   - no Brevo write from a forged payload: forged Messages name recipients @forged.example,
//     and the Brevo simulator must never hear of one.
// Payloads that are mutated and then signed again (as SNS would sign anything SES publishes)
// must be acknowledged, and feed the processor hostile but authentic input.
// Seeded: FUZZ_SEED and FUZZ_RUNS (see test/fuzz.ts).
import { X509Certificate, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SnsEnvelope } from '../src/ses/sns.js';
import { sesEvent, sesNotification } from '../src/sim/ses-events/index.js';
import { SES_EVENT_TYPES } from '../src/core/types.js';
import { ALL_EVENTS_BOTH, startStack, until, type Stack } from './helpers.js';
import { fuzzSettings, hostileString, mutateJson, mutateText, mutations, textMutation, type TextOp } from './fuzz.js';

const settings = fuzzSettings('fuzz-webhook', 800);
const MAX_BODY = 256 * 1024;

let stack: Stack;
let simKey: KeyObject;
/** Valid signed envelopes: a Notification per SES type and format, and the two confirmations. */
let originals: SnsEnvelope[];
let notifications: SnsEnvelope[];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
let certFetches = 0;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  stack = await startStack({
    plan: 'unlimited',
    events: ALL_EVENTS_BOTH,
    delivery: { max_attempts: 2 },
    connector: {
      verify: {
        // Only the simulator's certificate URL serves a certificate; mutated URLs that pass the
        // URL rules fail here at once, instead of waiting on whatever listens on that port.
        fetchCertificate: async (url: string) => {
          certFetches++;
          if (url === stack.sns.certUrl) return stack.sns.certPem;
          throw new Error('404 (fuzz hook)');
        },
      },
    },
  });
  simKey = new X509Certificate(stack.sns.certPem).publicKey;
  const recipients = (tag: string) => [`${tag}-1@fuzz.example`, `"${tag}, Two" <${tag.toUpperCase()}-2@FUZZ.example>`];
  notifications = [
    ...SES_EVENT_TYPES.map((type, i) =>
      stack.sns.notification(stack.topic, sesEvent(type, { recipients: recipients(type.toLowerCase()), link: 'https://example.com/?a=1' }), {
        subject: 'Amazon SES Email Event Notification',
        signatureVersion: i % 2 === 0 ? '1' : '2',
      }),
    ),
    ...(['Bounce', 'Complaint', 'Delivery'] as const).map((type) =>
      stack.sns.notification(stack.topic, sesNotification(type, { recipients: recipients(`n${type.toLowerCase()}`) })),
    ),
  ];
  originals = [...notifications, stack.sns.subscriptionConfirmation(stack.topic), stack.sns.unsubscribeConfirmation(stack.topic)];
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await stack?.stop();
});

// ---------------------------------------------------------------------------------------
// The oracle: does this body carry a valid SNS signature by the simulator's key?

const SIGNED_FIELDS = {
  Notification: (o: Record<string, unknown>) => [
    'Message',
    'MessageId',
    ...(typeof o.Subject === 'string' ? ['Subject'] : []),
    'Timestamp',
    'TopicArn',
    'Type',
  ],
  SubscriptionConfirmation: () => ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
  UnsubscribeConfirmation: () => ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
} as const;

function signatureHolds(body: string): boolean {
  let o: unknown;
  try {
    o = JSON.parse(body);
  } catch {
    return false;
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return false;
  const env = o as Record<string, unknown>;
  const fieldsOf = Object.hasOwn(SIGNED_FIELDS, String(env.Type)) ? SIGNED_FIELDS[env.Type as keyof typeof SIGNED_FIELDS] : undefined;
  const alg = env.SignatureVersion === '1' ? 'sha1' : env.SignatureVersion === '2' ? 'sha256' : undefined;
  if (!fieldsOf || !alg || typeof env.Signature !== 'string' || typeof env.SigningCertURL !== 'string') return false;
  try {
    if (new URL(env.SigningCertURL).href !== stack.sns.certUrl) return false;
  } catch {
    return false;
  }
  let text = '';
  for (const f of fieldsOf(env)) {
    if (typeof env[f] !== 'string') return false;
    text += `${f}\n${env[f]}\n`;
  }
  return cryptoVerify(alg, Buffer.from(text, 'utf8'), simKey, Buffer.from(env.Signature, 'base64'));
}

// ---------------------------------------------------------------------------------------
// Cases

type Case =
  /** An original envelope, mutated (signed fields or not), its text maybe damaged. */
  | { kind: 'envelope'; base: number; ops: Parameters<typeof mutateJson>[1]; text: TextOp[] }
  /** A Notification whose SES payload was changed without signing it again. */
  | { kind: 'forged'; base: number; payloadOps: Parameters<typeof mutateJson>[1]; ops: Parameters<typeof mutateJson>[1] }
  /** A Notification whose SES payload was changed and signed again: authentic, hostile content. */
  | { kind: 'resigned'; base: number; payloadOps: Parameters<typeof mutateJson>[1] }
  /** Anything at all. */
  | { kind: 'random'; body: string | Uint8Array };

const RANDOM_BODIES: Array<string | Uint8Array> = [
  '',
  'null',
  '"Notification"',
  '[]',
  '{}',
  '{"Type":"Notification"}',
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`,
  '{"Type":"Notification","MessageId":1e400}',
  '\ufeff{"Type":"Notification"}',
  Uint8Array.from([0xff, 0xfe, 0x7b, 0x00, 0xc3, 0x28]),
];

const caseArb = (): fc.Arbitrary<Case> =>
  fc.oneof(
    {
      arbitrary: fc.record({ kind: fc.constant('envelope' as const), base: fc.nat(), ops: mutations(), text: fc.array(textMutation, { maxLength: 1 }) }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('forged' as const),
        base: fc.nat(),
        payloadOps: mutations(3),
        ops: fc.array(mutations(2), { maxLength: 1 }).map((a) => a.flat()),
      }),
      weight: 3,
    },
    { arbitrary: fc.record({ kind: fc.constant('resigned' as const), base: fc.nat(), payloadOps: mutations(3) }), weight: 2 },
    {
      arbitrary: fc.record({
        kind: fc.constant('random' as const),
        body: fc.oneof(
          hostileString,
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.uint8Array({ maxLength: 512 }),
          fc.constantFrom(...RANDOM_BODIES),
        ),
      }),
      weight: 1,
    },
  );

let resignedIds = 0;

function unsignedOf(env: SnsEnvelope): Omit<SnsEnvelope, 'Signature'> {
  const { Signature: _s, ...rest } = env;
  return rest;
}

/** The body to post for a case, and what must not happen to it. */
function build(c: Case): { body: string | Uint8Array; forged: boolean; resigned: boolean } {
  switch (c.kind) {
    case 'envelope': {
      const doc = mutateJson(originals[c.base % originals.length], c.ops);
      return { body: c.text.reduce((s, m) => mutateText(s, m), JSON.stringify(doc) ?? ''), forged: false, resigned: false };
    }
    case 'forged':
    case 'resigned': {
      const base = notifications[c.base % notifications.length]!;
      const payload = mutateJson(JSON.parse(base.Message), c.payloadOps);
      const domain = c.kind === 'forged' ? '@forged.example' : '@signed.example';
      const message = (JSON.stringify(payload) ?? 'undefined').replace(/@fuzz\.example/gi, domain);
      if (c.kind === 'resigned') {
        const env = stack.sns.sign({ ...unsignedOf(base), Message: message, MessageId: `fuzz-resigned-${++resignedIds}` });
        return { body: JSON.stringify(env), forged: false, resigned: true };
      }
      expect(message).not.toBe(base.Message);
      return { body: JSON.stringify(mutateJson({ ...base, Message: message }, c.ops)) ?? '', forged: true, resigned: false };
    }
    case 'random':
      return { body: c.body, forged: false, resigned: false };
  }
}

const ANSWERS = new Set([200, 400, 403, 413, 503]);
const RETRYABLE_REASONS = new Set(['cert_unavailable', 'store_unavailable', 'subscription_confirm_failed']);

describe('webhook fuzz', () => {
  it('never crashes, never acknowledges what it cannot verify, never writes a forged payload to Brevo', async () => {
    const warn = vi.spyOn(stack.connector.log, 'warn');
    const tally = { sent: 0, acknowledged: 0, forged: 0, resignedAcknowledged: 0, byStatus: {} as Record<number, number> };
    await fc.assert(
      fc.asyncProperty(caseArb(), async (c) => {
        const { body, forged, resigned } = build(c);
        const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
        const res = await stack.post(typeof body === 'string' ? body : Buffer.from(body));
        tally.sent++;
        tally.byStatus[res.status] = (tally.byStatus[res.status] ?? 0) + 1;
        expect(ANSWERS.has(res.status), `${res.status} ${res.text}`).toBe(true);
        expect(res.json?.ok, res.text).toBe(res.status === 200);
        if (res.status === 503) expect(RETRYABLE_REASONS.has(String(res.json?.reason)), res.text).toBe(true);
        if (res.status === 200) {
          tally.acknowledged++;
          expect(signatureHolds(text), `acknowledged without a valid signature: ${text.slice(0, 300)}`).toBe(true);
        }
        if (forged) {
          tally.forged++;
          expect(res.status, res.text).not.toBe(200);
        }
        if (resigned) {
          expect(res.status, res.text).toBe(Buffer.byteLength(text) > MAX_BODY ? 413 : 200);
          if (res.status === 200) tally.resignedAcknowledged++;
        }
      }),
      settings,
    );
    console.info(`fuzz-webhook: ${JSON.stringify({ ...tally, certFetches })}`);

    // The server still answers, and the processor and delivery still run: a genuine event
    // sent now reaches Brevo.
    expect((await stack.get('/healthz')).status).toBe(200);
    const control = stack.sns.notification(stack.topic, sesEvent('Delivery', { recipients: ['control@after-fuzz.example'] }));
    expect((await stack.publish(control)).status).toBe(200);
    await until(() => stack.brevo.contact('control@after-fuzz.example'), 'the control event in Brevo', 30_000);
    await stack.connector.waitIdle(30_000);

    const state = stack.brevo.state();
    const emails = [...Object.keys(state.contacts), ...state.events.map((e) => String(e.identifiers.email_id ?? ''))];
    expect(emails.filter((e) => e.toLowerCase().includes('@forged.example'))).toEqual([]);
    // Guards the generator: the run must have tried forgeries, and authentic mutated payloads
    // must have reached Brevo, or "no forged write" would prove nothing.
    expect(tally.forged).toBeGreaterThan(settings.numRuns / 10);
    expect(tally.resignedAcknowledged).toBeGreaterThan(settings.numRuns / 20);
    expect(emails.some((e) => e.endsWith('@signed.example'))).toBe(true);

    // Planning must cope with any authentic payload; the processor would otherwise log this and plan one by one.
    expect(warn.mock.calls.map((call) => call[1]).filter((m) => typeof m === 'string' && m.startsWith('planning a batch failed'))).toEqual([]);
    warn.mockRestore();
    expect(unhandled).toEqual([]);
  }, 120_000);
});
