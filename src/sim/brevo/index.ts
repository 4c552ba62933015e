// Brevo API v3 simulator on loopback, for tests, the `demo` command and benchmarks.
//
// It is deliberately as strict as real Brevo so that connector mistakes surface in tests:
// - attribute values with an unknown name or the wrong type are dropped silently (the
//   request succeeds) and recorded in state().dropped;
// - `emailBlacklisted: false` unblocks the contact, and every such request is recorded in
//   state().unblocks (the connector must never send it);
// - rate limits per bucket (contacts / events / other) with x-sib-ratelimit-* headers on
//   every /v3 answer, 429 when over budget;
// - imports run asynchronously behind a processId;
// - adding contacts already in a list fails with 400, as Brevo does.
// See routes.ts for the Brevo facts each rule rests on and which ones are assumed.

export { startBrevoSim } from './server.js';
export { RATE_LIMITS, bucketFor } from './rate-limit.js';
export { MAX_BATCH_EVENTS } from './routes.js';
export type {
  BrevoFaults,
  BrevoPlan,
  BrevoSim,
  BrevoSimOptions,
  BrevoSimState,
  BrevoSimStats,
  BrevoSimSummary,
  RateLimitBucket,
  SimContact,
  SimDroppedValue,
  SimEvent,
  SimProcess,
  SimUnblock,
} from './types.js';
