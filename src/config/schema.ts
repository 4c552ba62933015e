import { z } from 'zod';
import { parseDuration } from './duration.js';
import { SES_EVENT_TYPES } from '../core/types.js';
import { DEFAULT_SIGNING_CERT_HOST } from '../ses/sns.js';

// One schema for the whole file, parsed once (CONTRACT.md section 1). Defaults live here
// so `config validate` can print the effective configuration.

const duration = (def: string) =>
  z
    .union([z.string(), z.number()])
    .default(def)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected a duration such as 30s, 15m, 24h or 7d` });
        return z.NEVER;
      }
      return ms;
    });

// `${VAR}` always yields text: numbers and booleans are read from it here, where the
// schema knows the key wants one (a numeric API key stays a string).
const toNumber = (v: unknown) => (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v);
const toBool = (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v);
const num = <T extends z.ZodType>(t: T) => z.preprocess(toNumber, t);
const bool = (def: boolean) => z.preprocess(toBool, z.boolean()).default(def);

export const EVENT_POLICIES = ['event', 'attributes', 'both', 'ignore'] as const;
export type EventPolicy = (typeof EVENT_POLICIES)[number];
const policy = (def: EventPolicy) => z.enum(EVENT_POLICIES).default(def);

// Defined next to the verifier that enforces it; re-exported for config readers.
export { DEFAULT_SIGNING_CERT_HOST };

const regex = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected a valid regular expression' },
);

const eventsSchema = z
  .object({
    Send: policy('attributes'),
    Delivery: policy('attributes'),
    Open: policy('attributes'),
    Click: policy('both'),
    Bounce: policy('both'),
    Complaint: policy('both'),
    Reject: policy('event'),
    DeliveryDelay: policy('event'),
    RenderingFailure: policy('event'),
    Subscription: policy('both'),
  })
  .strict()
  .prefault({});

// A timeout of 0 would mean none at all: refused.
const positiveDuration = (def: string) => duration(def).refine((ms) => ms > 0, { message: 'expected a duration above 0, such as 500ms or 20s' });

export const sesConnectorSchema = z
  .object({
    enabled: bool(true),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region such as us-east-1'),
    credentials: z
      .object({
        profile: z.string().default(''),
        role_arn: z
          .string()
          .default('')
          .refine((s) => s === '' || /^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(s), 'expected an IAM role ARN (arn:aws:iam::123456789012:role/Name) or ""'),
        external_id: z.string().default(''),
      })
      .strict()
      .prefault({}),
    endpoint: z
      .string()
      .default('')
      .refine((s) => s === '' || /^https?:\/\//.test(s), 'expected an http(s) URL or ""'),
    sync: z
      .object({
        events: bool(true),
        suppressions: bool(true),
        contacts: bool(true),
        account: bool(true),
      })
      .strict()
      .prefault({}),
    schedule: z
      .object({ suppressions: duration('15m'), contacts: duration('24h'), account: duration('1h'), reconcile: duration('0') })
      .strict()
      .prefault({}),
    sns: z
      .object({
        topic_arns: z
          .array(z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$/, 'expected an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)'))
          .default([]),
        auto_confirm_subscriptions: bool(true),
        max_message_age: duration('1h'),
        signing_cert_hosts: z.array(regex).min(1).default([DEFAULT_SIGNING_CERT_HOST]),
        allow_http_cert_urls: bool(false),
        /** SNS API endpoint override (simulators), for `check`'s reading of the topic's subscriptions; "": AWS itself. */
        endpoint: z
          .string()
          .default('')
          .refine((s) => s === '' || /^https?:\/\//.test(s), 'expected an http(s) URL or ""'),
      })
      .strict()
      .prefault({}),
    sqs: z
      .object({
        queue_url: z.string().default(''),
        raw_message_delivery: z.preprocess(toBool, z.union([z.literal('auto'), z.boolean()])).default('auto'),
        endpoint: z
          .string()
          .default('')
          .refine((s) => s === '' || /^https?:\/\//.test(s), 'expected an http(s) URL or ""'),
        pollers: num(z.number().int().min(1).max(32)).default(2),
        poison: z.enum(['redrive', 'delete']).default('redrive'),
      })
      .strict()
      .prefault({}),
    eventbridge: z
      .object({
        header_name: z
          .string()
          .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name such as x-api-key')
          .default('x-api-key'),
        secret: z.string().default(''),
        /** EventBridge API endpoint override (simulators), for `check`'s reading of the rule and API destination; "": AWS itself. */
        endpoint: z
          .string()
          .default('')
          .refine((s) => s === '' || /^https?:\/\//.test(s), 'expected an http(s) URL or ""'),
      })
      .strict()
      .prefault({}),
    bounce_policy: z
      .object({
        // Transient bounces of one recipient within the window that blocklist it; 0: never (the default).
        soft_bounce_blocklist_after: num(z.number().int().min(0).max(1000)).default(0),
        soft_bounce_window: positiveDuration('7d'),
      })
      .strict()
      .prefault({}),
    field_mapping: z.record(z.string(), z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'expected a Brevo attribute name in upper case (A-Z, 0-9, _)')).default({}),
    contacts: z
      .object({
        fetch_attributes: bool(false),
      })
      .strict()
      .prefault({}),
    /** Backfill: SES rows read between two saved cursors of a stream (fuller imports; a stopped run reads at most this many again). */
    backfill: z
      .object({
        checkpoint_rows: num(z.number().int().min(0).max(1_000_000)).default(10_000),
      })
      .strict()
      .prefault({}),
    events: eventsSchema,
    lists: z
      .object({ folder: z.string().min(1).default('Amazon SES') })
      .strict()
      .prefault({}),
    ses_rate_limit: num(z.number().positive()).default(1),
  })
  .strict();

const DAY_MS = 86_400_000;

/**
 * Inbox retention (engine/retention.ts): raw bodies of planned envelopes are dropped after
 * `bodies`, their message ids (which dedupe a replay) after `dedupe_keys`. SNS retries a
 * delivery for about an hour at most and EventBridge for up to 24 h, so a day is the floor.
 */
const retentionSchema = z
  .object({
    bodies: positiveDuration('7d'),
    dedupe_keys: positiveDuration('30d'),
    every: positiveDuration('10m'),
  })
  .strict()
  .refine((r) => r.dedupe_keys >= DAY_MS, {
    message: 'must be at least 1d: a message id must outlive every retry of its message (SNS: about an hour; EventBridge: up to 24 h)',
    path: ['dedupe_keys'],
  })
  .refine((r) => r.dedupe_keys >= r.bodies, { message: 'must not be shorter than store.retention.bodies (bodies default to 7d)', path: ['dedupe_keys'] })
  .prefault({});

export const configSchema = z
  .object({
    connectors: z.object({ 'amazon-ses': sesConnectorSchema }).catchall(z.unknown()),
    brevo: z
      .object({
        api_key: z.string().default(''),
        base_url: z.string().url().default('https://api.brevo.com/v3'),
        plan: z.enum(['general', 'advanced', 'extended']).default('general'),
        timeout: duration('30s'),
      })
      .strict()
      .prefault({}),
    store: z
      .object({
        url: z
          .string()
          .default('sqlite:./.tajo/amazon-ses.db')
          .refine((s) => /^(sqlite:|postgres(ql)?:\/\/)/.test(s), 'expected sqlite:PATH or postgres://user@host:5432/db'),
        retention: retentionSchema,
      })
      .strict()
      .prefault({}),
    server: z
      .object({
        port: num(z.number().int().min(0).max(65535)).default(8080),
        host: z.string().default('0.0.0.0'),
        admin_token: z.string().default(''),
        engine_thread: bool(true),
        // SNS gives up on an answer after 15 s: a request still arriving after these is stuck or hostile.
        request_timeout: positiveDuration('20s'),
        headers_timeout: positiveDuration('10s'),
        keep_alive_timeout: positiveDuration('5s'),
        max_connections: num(z.number().int().min(1).max(1_000_000)).default(1024),
      })
      .strict()
      // Node refuses a header timeout longer than the request timeout.
      .refine((s) => s.request_timeout <= 0 || s.headers_timeout <= s.request_timeout, {
        message: 'must not be longer than server.request_timeout (headers_timeout defaults to 10s)',
        path: ['headers_timeout'],
      })
      .prefault({}),
    delivery: z
      .object({
        max_attempts: num(z.number().int().min(1).max(100)).default(12),
        concurrency: num(z.number().int().min(1).max(64)).default(4),
        batch_size: num(z.number().int().min(1).max(200)).default(200),
        backoff_base: duration('1s'),
        backoff_max: duration('15m'),
        /** A partial round waits until its oldest operation has waited this long (deliver.ts, DEFAULT_LINGER_MS). */
        linger: duration('1s').pipe(z.number().max(60_000, 'at most 60s: a longer wait only delays Brevo')),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** `pretty`: one readable line per entry; `json`: one JSON object per line; `auto`: pretty on a terminal, json otherwise. */
        format: z.enum(['auto', 'pretty', 'json']).default('auto'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type TajoConfig = z.output<typeof configSchema>;
export type SesConnectorConfig = TajoConfig['connectors']['amazon-ses'];
export type ConfigInput = z.input<typeof configSchema>;

/** Keys whose values never appear in any output. */
export const SECRET_KEYS = new Set(['api_key', 'admin_token', 'secret_access_key', 'session_token', 'external_id']);

export { SES_EVENT_TYPES };
