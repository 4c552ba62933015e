// Prometheus metrics: one registry per connector (tests run several in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isSesEventType } from '../core/types.js';

/**
 * Label value for an SES type read from a (signed, but sender-chosen) payload: a known type, `none`,
 * or `other`, so that no sender can add series without bound. 'Rendering Failure' is SES's spelling.
 */
export function sesTypeLabel(rawType: string): string {
  if (rawType === '' || rawType === 'none') return 'none';
  const type = rawType.replace(/ /g, '');
  return isSesEventType(type) ? type : 'other';
}

/** A counter by SES type whose every label goes through sesTypeLabel. */
function bySesType(counter: Counter<'type'>) {
  return { inc: (labels: { type: string }, value?: number) => counter.inc({ type: sesTypeLabel(labels.type) }, value) };
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  // Set by BrevoHealth: the streak's age is computed when scraped, also while no call is made.
  const brevoHealthClock: { streakSince: () => number | undefined; now: () => number } = { streakSince: () => undefined, now: Date.now };
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'tajo_ses_' });
  const m = {
    registry,
    webhookRequests: new Counter({
      name: 'tajo_ses_webhook_requests_total',
      help: 'SNS webhook requests by outcome (accepted, duplicate, or the rejection reason code)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    eventbridgeRequests: new Counter({
      name: 'tajo_ses_eventbridge_requests_total',
      help: 'EventBridge intake requests by outcome (accepted, duplicate, or the rejection reason code)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    sqsMessages: new Counter({
      name: 'tajo_ses_sqs_messages_total',
      help: 'SQS intake messages by outcome (accepted, duplicate, retry, or the reason it can never be stored)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    webhookLatency: new Histogram({
      name: 'tajo_ses_webhook_seconds',
      help: 'Webhook handling time until the answer, including the durable commit',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
    records: new Counter({ name: 'tajo_ses_records_total', help: 'Normalized SES records by type', labelNames: ['type'] as const, registers: [registry] }),
    unknownRecords: bySesType(
      new Counter({
        name: 'tajo_ses_unknown_records_total',
        help: 'SES payloads of unknown or incomplete type (stored, not delivered); `other` for a type SES does not publish',
        labelNames: ['type'] as const,
        registers: [registry],
      }),
    ),
    clampedTimestamps: new Counter({
      name: 'tajo_ses_clamped_timestamps_total',
      help: 'Stored envelopes whose SES event time lay more than 5 minutes past their receipt, counted as received then',
      registers: [registry],
    }),
    unparseable: new Counter({ name: 'tajo_ses_unparseable_total', help: 'Stored envelopes whose SES payload could not be parsed', registers: [registry] }),
    brevoCalls: new Counter({
      name: 'tajo_ses_brevo_calls_total',
      help: 'Brevo API calls by endpoint and status',
      labelNames: ['endpoint', 'status'] as const,
      registers: [registry],
    }),
    delivered: new Counter({
      name: 'tajo_ses_delivered_total',
      help: 'Operations Brevo accepted, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    retried: new Counter({
      name: 'tajo_ses_retries_total',
      help: 'Operations scheduled for another attempt, by kind and error code',
      labelNames: ['kind', 'code'] as const,
      registers: [registry],
    }),
    dead: new Counter({
      name: 'tajo_ses_dead_letters_total',
      help: 'Operations moved to dead letters, by kind and Brevo error code',
      labelNames: ['kind', 'code'] as const,
      registers: [registry],
    }),
    queue: new Gauge({
      name: 'tajo_ses_queue_depth',
      help: 'Operations by kind, state and priority class',
      labelNames: ['kind', 'state', 'priority'] as const,
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'tajo_ses_queue_lag_seconds',
      help: 'Age of the oldest open operation by kind and priority class',
      labelNames: ['kind', 'priority'] as const,
      registers: [registry],
    }),
    deadLetters: new Gauge({
      name: 'tajo_ses_dead_letters',
      help: 'Dead letters waiting for an operator (retry or discard), as the store holds them now',
      registers: [registry],
    }),
    syncLastSuccess: new Gauge({
      name: 'tajo_ses_sync_last_success_timestamp_seconds',
      help: 'When the last completed sync run of each stream ended (Unix seconds); absent until one completed',
      labelNames: ['stream'] as const,
      registers: [registry],
    }),
    syncLastDuration: new Gauge({
      name: 'tajo_ses_sync_last_success_duration_seconds',
      help: 'How long the last completed sync run of each stream took',
      labelNames: ['stream'] as const,
      registers: [registry],
    }),
    syncLastFailed: new Gauge({
      name: 'tajo_ses_sync_last_run_failed',
      help: '1 when the newest sync run of each stream failed or was stopped, 0 when it completed',
      labelNames: ['stream'] as const,
      registers: [registry],
    }),
    inbox: new Gauge({ name: 'tajo_ses_inbox', help: 'Stored SNS envelopes by state', labelNames: ['state'] as const, registers: [registry] }),
    rateBudget: new Gauge({
      name: 'tajo_ses_brevo_rate_used',
      help: 'Requests used in the current window per Brevo bucket and window',
      labelNames: ['bucket', 'window'] as const,
      registers: [registry],
    }),
    throttled: new Gauge({
      name: 'tajo_ses_brevo_throttled',
      help: '429 answers received per Brevo bucket since start',
      labelNames: ['bucket'] as const,
      registers: [registry],
    }),
    brevoHealthClock,
    brevoLastSuccess: new Gauge({
      name: 'tajo_ses_brevo_last_success_timestamp_seconds',
      help: 'When Brevo last answered a delivery call (Unix seconds; 0: not since start)',
      registers: [registry],
    }),
    brevoStreak: new Gauge({
      name: 'tajo_ses_brevo_failure_streak',
      help: 'Brevo calls failed in a row (5xx, timeouts, network errors); 0 when the last call succeeded',
      registers: [registry],
    }),
    brevoStreakSeconds: new Gauge({
      name: 'tajo_ses_brevo_failure_streak_seconds',
      help: 'How long the current Brevo failure streak has lasted; 0 when there is none',
      registers: [registry],
      collect() {
        const since = brevoHealthClock.streakSince();
        this.set(since === undefined ? 0 : Math.max(0, (brevoHealthClock.now() - since) / 1000));
      },
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Counters that the engine (processing and delivery) moves. When the engine runs on its own
 * thread, `/metrics` takes these from it and everything else from the answering thread.
 */
export const ENGINE_METRICS = [
  'tajo_ses_records_total',
  'tajo_ses_unknown_records_total',
  'tajo_ses_unparseable_total',
  'tajo_ses_clamped_timestamps_total',
  'tajo_ses_brevo_calls_total',
  'tajo_ses_delivered_total',
  'tajo_ses_retries_total',
  'tajo_ses_dead_letters_total',
  'tajo_ses_brevo_last_success_timestamp_seconds',
  'tajo_ses_brevo_failure_streak',
  'tajo_ses_brevo_failure_streak_seconds',
] as const;
