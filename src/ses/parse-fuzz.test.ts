// Fuzzing parseSesNotification from valid SES payloads (src/sim/ses-events), mutated in
// structure (fields set to hostile values, removed, retyped, numbers as strings, unicode,
// deep nesting, `__proto__` keys) and in text (cut short, characters dropped or inserted),
// and with values no JSON document holds. Whatever comes in, the parser returns records or
// throws its coded error (TajoError malformed_ses_payload): never a TypeError or RangeError,
// which the processor would treat as a bug, not as a bad payload.
// Seeded: FUZZ_SEED and FUZZ_RUNS (see test/fuzz.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TajoError } from '../core/errors.js';
import { SES_EVENT_TYPES } from '../core/types.js';
import { sesEvent, sesNotification, type SesPayload } from '../sim/ses-events/index.js';
import { fuzzSettings, hostileString, mutateJson, mutateText, mutations, textMutation } from '../../test/fuzz.js';
import { parseSesNotification } from './parse.js';

const settings = fuzzSettings('parse-fuzz', 1500);

const RECIPIENTS = ['one@fuzz.example', '"Two, Dr." <TWO@fuzz.example>', ' three@fuzz.example '];
const VALID: SesPayload[] = [
  ...SES_EVENT_TYPES.map((type) => sesEvent(type, { recipients: RECIPIENTS, feedbackId: 'fb-1', link: 'https://example.com/x', linkTags: { a: ['1', '2'] } })),
  ...(['Bounce', 'Complaint', 'Delivery'] as const).map((type) => sesNotification(type, { recipients: RECIPIENTS })),
];

/** What the parser may do with any input: records and unknowns, or its own coded error. */
function expectRecordsOrCodedError(input: unknown): 'records' | 'unknown' | 'refused' {
  let parsed: ReturnType<typeof parseSesNotification>;
  try {
    parsed = parseSesNotification(input);
  } catch (err) {
    // A TypeError or RangeError here is a crash the fuzzer found: it names the input shape.
    expect(err, String((err as Error)?.stack)).toBeInstanceOf(TajoError);
    expect((err as TajoError).code).toBe('malformed_ses_payload');
    return 'refused';
  }
  expect(Array.isArray(parsed.records)).toBe(true);
  expect(Array.isArray(parsed.unknown)).toBe(true);
  for (const r of parsed.records) {
    expect(typeof r.key).toBe('string');
    expect(r.email).toBe(r.email.trim().toLowerCase());
    expect(Number.isNaN(Date.parse(r.timestamp))).toBe(false);
  }
  return parsed.records.length > 0 ? 'records' : 'unknown';
}

describe('parseSesNotification fuzz', () => {
  it('every valid sim payload parses to records (the fuzzer starts from these)', () => {
    for (const p of VALID) expect(expectRecordsOrCodedError(p)).toBe('records');
  });

  it('structurally mutated payloads, as objects and as text: records or malformed_ses_payload', () => {
    const outcomes = { records: 0, unknown: 0, refused: 0 };
    fc.assert(
      fc.property(fc.constantFrom(...VALID), mutations(), fc.boolean(), (valid, ops, asText) => {
        const doc = mutateJson(valid, ops);
        outcomes[expectRecordsOrCodedError(asText ? JSON.stringify(doc) : doc)]++;
      }),
      settings,
    );
    // Guards the generator: mutations that always break the payload, or never do, prove little.
    expect(outcomes.records).toBeGreaterThan(settings.numRuns / 10);
    expect(outcomes.unknown).toBeGreaterThan(settings.numRuns / 20);
  });

  it('damaged JSON text: records or malformed_ses_payload', () => {
    const outcomes = { records: 0, unknown: 0, refused: 0 };
    fc.assert(
      fc.property(fc.constantFrom(...VALID), fc.array(textMutation, { minLength: 1, maxLength: 3 }), (valid, ms) => {
        const text = ms.reduce((s, m) => mutateText(s, m), JSON.stringify(valid));
        outcomes[expectRecordsOrCodedError(text)]++;
      }),
      settings,
    );
    expect(outcomes.refused).toBeGreaterThan(settings.numRuns / 10);
  });

  it('values no JSON document holds (null prototypes, boxed values, Map, Date, BigInt, sparse arrays) and arbitrary text', () => {
    const anything = fc.anything({
      maxDepth: 4,
      withNullPrototype: true,
      withBoxedValues: true,
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withSparseArray: true,
      withObjectString: true,
    });
    fc.assert(
      fc.property(
        fc.oneof(
          anything,
          hostileString,
          // A valid payload with one field replaced by such a value, so the parser gets past its first checks.
          fc
            .tuple(fc.constantFrom(...VALID), fc.constantFrom('mail', 'bounce', 'delivery', 'click', 'subscription', 'eventType'), anything)
            .map(([v, k, x]) => ({
              ...structuredClone(v),
              [k]: x,
            })),
          fc
            .tuple(fc.constantFrom(...VALID), fc.constantFrom('destination', 'timestamp', 'messageId', 'commonHeaders', 'tags'), anything)
            .map(([v, k, x]) => ({ ...structuredClone(v), mail: { ...(v.mail as object), [k]: x } })),
          // ... and anywhere deeper (a recipient's emailAddress, a tag list).
          fc.tuple(fc.constantFrom(...VALID), mutations(3, anything)).map(([v, ops]) => mutateJson(v, ops)),
        ),
        (input) => {
          expectRecordsOrCodedError(input);
        },
      ),
      settings,
    );
  });

  it('deep nesting and huge inputs: records or malformed_ses_payload', () => {
    const deepArray = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const deepObject = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const unclosed = '['.repeat(1_000_000);
    for (const text of [deepArray, deepObject, unclosed, `{"eventType":"Send","mail":${deepObject}}`, 'x'.repeat(5_000_000)]) {
      expectRecordsOrCodedError(text);
    }
  });
});
