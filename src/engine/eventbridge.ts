// The EventBridge API destination intake: `POST /webhooks/amazon-ses/eventbridge`. EventBridge
// signs nothing; the connection's header (an API key) is the only proof of origin, so it is
// compared in constant time before anything else is read. The event is stored raw, like an SNS
// envelope, and acknowledged only after the commit; EventBridge retries 429 and 5xx for up to
// 24 hours, so back-pressure and store outages are answered with those.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { SesConnectorConfig } from '../config/schema.js';
import { errorMessage } from '../core/errors.js';
import { readEventBridgeEvent } from '../ses/eventbridge.js';
import { IngestRate, type InboxWriter, type WebhookAnswer } from './ingest.js';
import type { Metrics } from './metrics.js';

/** Uncommitted envelopes from which EventBridge is asked to slow down (default). */
export const EVENTBRIDGE_MAX_BACKLOG = 2_000;

/** Prefix of the inbox id of an EventBridge event, so its ids never meet SNS MessageIds. */
export const EVENTBRIDGE_ID_PREFIX = 'eventbridge:';

export interface EventBridgeIngestOptions {
  writer: InboxWriter;
  cfg: SesConnectorConfig;
  log: Logger;
  metrics: Metrics;
  /** Called after a new event is committed (wakes planning). */
  onStored: () => void;
  /** Shared with the SNS webhook, so a burst on either counts. */
  rate?: IngestRate;
  /** Uncommitted writes from which requests are answered 429 (default EVENTBRIDGE_MAX_BACKLOG). */
  maxBacklog?: number;
  now?: () => number;
}

type Headers = Record<string, string | string[] | undefined>;

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Equal strings, in a time that depends on neither (both are hashed to one length first). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export class EventBridgeIngest {
  private readonly now: () => number;
  private readonly rate: IngestRate;
  private readonly headerName: string;
  private readonly expected: string;
  private readonly maxBacklog: number;

  constructor(private readonly o: EventBridgeIngestOptions) {
    this.now = o.now ?? Date.now;
    this.rate = o.rate ?? new IngestRate();
    this.headerName = o.cfg.eventbridge.header_name.toLowerCase();
    this.expected = o.cfg.eventbridge.secret;
    this.maxBacklog = o.maxBacklog ?? EVENTBRIDGE_MAX_BACKLOG;
  }

  /** Whether the route is switched on (a secret is configured). */
  get enabled(): boolean {
    return this.expected !== '';
  }

  private answer(outcome: string, status: number, message: string, headers?: Record<string, string>): WebhookAnswer {
    this.o.metrics.eventbridgeRequests.inc({ outcome });
    return { status, body: { ok: false, reason: outcome, message }, ...(headers ? { headers } : {}) };
  }

  /** The whole `POST /webhooks/amazon-ses/eventbridge` decision, independent of the HTTP framework. */
  async handle(headers: Headers, body: string): Promise<WebhookAnswer> {
    if (!this.enabled) {
      return this.answer('not_enabled', 404, 'the EventBridge intake is off: set connectors.amazon-ses.eventbridge.secret to switch it on');
    }
    this.rate.count(Date.now());
    const given = headers[this.headerName];
    if (typeof given !== 'string' || !sameSecret(given, this.expected)) {
      this.o.log.warn(
        { header: this.headerName, present: given !== undefined },
        `EventBridge request refused: the ${this.headerName} header does not carry eventbridge.secret (check the API destination's connection)`,
      );
      return this.answer('unauthorized', 401, `missing or wrong ${this.headerName} header`);
    }
    const read = readEventBridgeEvent(body);
    if ('problem' in read) {
      this.o.log.warn({ reason: 'malformed_event' }, `EventBridge request refused: ${read.problem}`);
      return this.answer('malformed_event', 400, read.problem);
    }
    const { event } = read;
    if (this.o.writer.backlog() >= this.maxBacklog) {
      // EventBridge retries a 429 later (with back-off, for up to 24 hours): nothing is lost.
      return this.answer('throttled', 429, 'the store is behind; retry later', { 'retry-after': '1' });
    }
    try {
      const res = await this.o.writer.write({ messageId: EVENTBRIDGE_ID_PREFIX + event.id, source: 'eventbridge', receivedAt: this.now(), body });
      this.o.metrics.eventbridgeRequests.inc({ outcome: res === 'inserted' ? 'accepted' : 'duplicate' });
      if (res === 'inserted') this.o.onStored();
      return { status: 200, body: { ok: true, outcome: res === 'inserted' ? 'stored' : 'duplicate' } };
    } catch (err) {
      this.o.log.error({ err: errorMessage(err), id: event.id }, 'could not commit the EventBridge event; answered 503 so EventBridge retries');
      return this.answer('store_unavailable', 503, 'the store could not commit the event; EventBridge will retry');
    }
  }
}
