// Ingestion: verify, then store the raw envelope durably before answering. Requests that
// arrive in the same turn of the event loop share one transaction (group commit): each
// still gets its answer only after that commit.
import type { Logger } from 'pino';
import type { Store, InboxInsert } from '../store/port.js';
import { verifySnsMessage, confirmSubscription, SnsVerificationError, type CertCache, type VerifySnsOptions, type SnsEnvelope } from '../ses/sns.js';
import type { SesConnectorConfig } from '../config/schema.js';
import type { Metrics } from './metrics.js';
import { errorMessage, TajoError } from '../core/errors.js';

type Pending = { row: InboxInsert; resolve: (r: 'inserted' | 'duplicate') => void; reject: (e: unknown) => void };

export class InboxWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(
    private readonly store: Store,
    private readonly maxBatch = 512,
  ) {}

  /** Rows handed to write() whose commit has not finished yet: how far the store lags behind the intake. */
  backlog(): number {
    return this.waiting;
  }

  write(row: InboxInsert): Promise<'inserted' | 'duplicate'> {
    this.waiting++;
    return new Promise<'inserted' | 'duplicate'>((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.flushing = this.flush();
        });
      }
    }).finally(() => {
      this.waiting--;
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const res = await this.store.insertInbox(batch.map((p) => p.row));
        batch.forEach((p, i) => p.resolve(res[i]!));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  }

  /** Resolves once everything queued so far is committed (or failed). */
  async drain(): Promise<void> {
    while (this.scheduled || this.queue.length > 0) {
      await new Promise((r) => setImmediate(r));
      await this.flushing;
    }
    await this.flushing;
  }
}

export interface WebhookAnswer {
  status: number;
  body: { ok: true; outcome: string } | { ok: false; reason: string; message: string };
  /** Response headers beyond the body's (Retry-After). */
  headers?: Record<string, string>;
}

export function verifyOptions(cfg: SesConnectorConfig, certCache: CertCache, overrides: Partial<VerifySnsOptions> = {}): VerifySnsOptions {
  return {
    topicArns: cfg.sns.topic_arns,
    maxMessageAgeMs: cfg.sns.max_message_age,
    signingCertHosts: cfg.sns.signing_cert_hosts,
    allowHttpCertUrls: cfg.sns.allow_http_cert_urls,
    certCache,
    ...overrides,
  };
}

/** Notifications per second over the last quarter second: the engine yields to a burst. */
export class IngestRate {
  private windowStart = 0;
  private windowCount = 0;
  private lastRate = 0;

  perSecond(now = Date.now()): number {
    const age = now - this.windowStart;
    if (age > 500) return 0;
    return age > 250 ? this.lastRate : Math.max(this.lastRate, (this.windowCount * 1000) / Math.max(age, 50));
  }

  /** One notification arrived. */
  count(now: number): void {
    if (now - this.windowStart > 250) {
      this.lastRate = (this.windowCount * 1000) / Math.max(1, now - this.windowStart);
      this.windowStart = now;
      this.windowCount = 0;
    }
    this.windowCount++;
  }
}

/**
 * An SES event record posted as it is, without the SNS envelope around it: what SNS sends to an
 * HTTP(S) subscription whose raw message delivery is on.
 */
export function isBareSesRecord(body: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return false;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const type = typeof o['eventType'] === 'string' || typeof o['notificationType'] === 'string';
  return type && typeof o['mail'] === 'object' && o['mail'] !== null && !('Type' in o) && !('Signature' in o);
}

export interface WebhookIngestOptions {
  writer: InboxWriter;
  cfg: SesConnectorConfig;
  verify: VerifySnsOptions;
  log: Logger;
  metrics: Metrics;
  /** Called after a new envelope is committed (wakes planning). */
  onStored: () => void;
  /** Counts every request (default: a rate of its own). */
  rate?: IngestRate;
  now?: () => number;
}

export class WebhookIngest {
  private readonly now: () => number;
  /** Requests per second, whatever their outcome. */
  readonly rate: IngestRate;

  constructor(private readonly o: WebhookIngestOptions) {
    this.now = o.now ?? Date.now;
    this.rate = o.rate ?? new IngestRate();
  }

  private reject(reason: string, status: number, message: string): WebhookAnswer {
    this.o.metrics.webhookRequests.inc({ outcome: reason });
    return { status, body: { ok: false, reason, message } };
  }

  /**
   * The whole `POST /webhooks/amazon-ses` decision, independent of the HTTP framework. `headers`
   * (lower-case names) only improve the log line of a refusal.
   */
  async handle(body: string, headers: Record<string, string | string[] | undefined> = {}): Promise<WebhookAnswer> {
    this.rate.count(Date.now());
    let env: SnsEnvelope;
    try {
      env = await verifySnsMessage(body, this.o.verify);
    } catch (err) {
      if (err instanceof SnsVerificationError && err.status === 400 && isBareSesRecord(body)) {
        const subscription = headers['x-amz-sns-subscription-arn'];
        const arn = typeof subscription === 'string' ? subscription : 'SUBSCRIPTION_ARN';
        this.o.log.warn(
          { reason: 'raw_message_delivery_enabled', subscriptionArn: typeof subscription === 'string' ? subscription : undefined },
          `SNS message refused: a bare SES record without its SNS envelope, so raw message delivery is on for this endpoint's subscription and nothing can be verified. Turn it off: aws sns set-subscription-attributes --subscription-arn ${arn} --attribute-name RawMessageDelivery --attribute-value false (or uncheck "Enable raw message delivery" on the subscription in the SNS console)`,
        );
        return this.reject(
          'raw_message_delivery_enabled',
          400,
          'a bare SES record, not an SNS envelope: switch raw message delivery off on the SNS subscription (RawMessageDelivery=false)',
        );
      }
      if (err instanceof SnsVerificationError) {
        this.o.log.warn({ reason: err.code, status: err.status, ...(err.details ?? {}) }, `SNS message refused: ${err.message}`);
        return this.reject(err.code, err.status, err.message);
      }
      this.o.log.error({ err: errorMessage(err) }, 'SNS verification failed unexpectedly');
      return this.reject('internal_error', 500, 'verification failed unexpectedly; see the connector log');
    }

    if (env.Type === 'SubscriptionConfirmation') return this.subscription(env);
    if (env.Type === 'UnsubscribeConfirmation') {
      this.o.log.warn(
        { topicArn: env.TopicArn },
        'SNS says this endpoint was unsubscribed from the topic; events from it will stop. Re-subscribe the HTTPS endpoint in SNS if that was not intended.',
      );
      this.o.metrics.webhookRequests.inc({ outcome: 'unsubscribe_confirmation' });
      return { status: 200, body: { ok: true, outcome: 'unsubscribe_noted' } };
    }
    try {
      const res = await this.o.writer.write({ messageId: env.MessageId, source: 'sns', topicArn: env.TopicArn, receivedAt: this.now(), body });
      this.o.metrics.webhookRequests.inc({ outcome: res === 'inserted' ? 'accepted' : 'duplicate' });
      if (res === 'inserted') this.o.onStored();
      return { status: 200, body: { ok: true, outcome: res === 'inserted' ? 'stored' : 'duplicate' } };
    } catch (err) {
      // 503 makes SNS retry: nothing is acknowledged that is not committed.
      this.o.log.error({ err: errorMessage(err), messageId: env.MessageId }, 'could not commit the SNS message; answered 503 so SNS retries');
      return this.reject('store_unavailable', 503, 'the store could not commit the message; SNS will retry');
    }
  }

  private async subscription(env: SnsEnvelope): Promise<WebhookAnswer> {
    if (!this.o.cfg.sns.auto_confirm_subscriptions) {
      this.o.log.warn(
        { topicArn: env.TopicArn },
        'SNS subscription confirmation received; auto_confirm_subscriptions is false: confirm it in the SNS console (Subscriptions > Confirm) or with `aws sns confirm-subscription --topic-arn TOPIC --token TOKEN` using the Token from this request',
      );
      this.o.metrics.webhookRequests.inc({ outcome: 'subscription_pending' });
      return { status: 200, body: { ok: true, outcome: 'confirmation_logged' } };
    }
    try {
      await confirmSubscription(env, this.o.verify);
      this.o.log.info({ topicArn: env.TopicArn }, 'SNS subscription confirmed');
      this.o.metrics.webhookRequests.inc({ outcome: 'subscription_confirmed' });
      return { status: 200, body: { ok: true, outcome: 'subscription_confirmed' } };
    } catch (err) {
      if (err instanceof SnsVerificationError) {
        this.o.log.warn({ reason: err.code, topicArn: env.TopicArn }, `SNS subscription not confirmed: ${err.message}`);
        return this.reject(err.code, err.status, err.message);
      }
      const retryable = err instanceof TajoError ? err.retryable : true;
      this.o.log.warn({ topicArn: env.TopicArn, err: errorMessage(err) }, 'SNS subscription confirmation failed; SNS will resend it');
      return this.reject('confirmation_failed', retryable ? 503 : 403, `could not confirm the subscription: ${errorMessage(err)}`);
    }
  }
}
