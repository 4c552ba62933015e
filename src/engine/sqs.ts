// The SQS intake (SNS -> SQS): pollers long-poll the queue, store each message like the webhook
// stores an SNS delivery, and delete it only after that commit. A message whose commit has not
// happened yet stays invisible (its visibility is extended), so no other poller takes it; one
// that fails for a reason time may fix (store down, certificate unavailable) is simply not
// deleted and comes back after its visibility timeout. One that can never be stored (malformed,
// forged, unknown topic) is counted, logged, recorded once among the refused messages that
// `failures` lists, and left to the queue's redrive policy (or deleted: `sqs.poison: delete`).
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { SesConnectorConfig } from '../config/schema.js';
import { errorMessage } from '../core/errors.js';
import { awsCredentials, type SesClientOptions } from '../ses/client.js';
import { SnsVerificationError, verifySnsMessage, type VerifySnsOptions } from '../ses/sns.js';
import { isBareSesRecord, type InboxWriter } from './ingest.js';
import type { Metrics } from './metrics.js';
import type { Store } from '../store/port.js';

/** SQS keeps a message at most 14 days: an envelope may wait that long in a queue (or its DLQ), so SNS's replay window does not apply. */
const SQS_MAX_AGE_MS = 15 * 24 * 3600 * 1000;
const WAIT_SECONDS = 20;
const MAX_MESSAGES = 10;
const ERROR_PAUSE_MS = 2_000;

/** Inbox id of a raw message (no SNS MessageId): the SQS MessageId, which a redelivery keeps. */
export const SQS_ID_PREFIX = 'sqs:';

/** `poison`: recorded and left for the redrive policy; `poison_deleted`: recorded, and deleted (`sqs.poison: delete`). */
export type SqsOutcome = 'stored' | 'duplicate' | 'retry' | 'poison' | 'poison_deleted' | 'ignored';

export interface SqsIntakeOptions {
  cfg: SesConnectorConfig;
  writer: InboxWriter;
  /** Where poison messages are recorded (`failures`). */
  store: Pick<Store, 'recordRefusedMessage'>;
  /** The webhook's verification options; the replay window is widened to SQS's retention. */
  verify: VerifySnsOptions;
  log: Logger;
  metrics: Metrics;
  onStored: () => void;
  /** Static credentials (simulators); else the SES settings' profile/role, else the SDK default chain. */
  credentials?: SesClientOptions['credentials'];
  client?: SQSClient;
  now?: () => number;
}

export function createSqsClient(cfg: SesConnectorConfig, credentials?: SesClientOptions['credentials']): SQSClient {
  const creds = awsCredentials(cfg, credentials);
  return new SQSClient({
    region: cfg.region,
    ...(cfg.sqs.endpoint ? { endpoint: cfg.sqs.endpoint } : {}),
    ...(creds ? { credentials: creds } : {}),
    maxAttempts: 5,
  });
}

export class SqsIntake {
  private readonly client: SQSClient;
  private readonly queueUrl: string;
  private readonly verify: VerifySnsOptions;
  private readonly now: () => number;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private visibilityS = 30;

  constructor(private readonly o: SqsIntakeOptions) {
    this.client = o.client ?? createSqsClient(o.cfg, o.credentials);
    this.queueUrl = o.cfg.sqs.queue_url;
    this.verify = { ...o.verify, maxMessageAgeMs: Math.max(o.verify.maxMessageAgeMs, SQS_MAX_AGE_MS) };
    this.now = o.now ?? Date.now;
  }

  /** Reads the queue's visibility timeout (which also proves it exists and is readable), then starts the pollers. */
  async start(): Promise<void> {
    // A queue that cannot be read at start must not keep serve (and its webhook) down: the pollers retry.
    const attrs = await this.client
      .send(new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['VisibilityTimeout', 'RedrivePolicy'] }))
      .catch((err: unknown) => {
        this.o.log.error(
          { err: errorMessage(err), queueUrl: this.queueUrl },
          'SQS GetQueueAttributes failed; polling anyway. Check sqs.queue_url and allow sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes (tajo-ses check)',
        );
        return { Attributes: { RedrivePolicy: 'unknown' } as Record<string, string> };
      });
    this.visibilityS = Math.max(1, Number(attrs.Attributes?.VisibilityTimeout ?? 30) || 30);
    const raw = this.o.cfg.sqs.raw_message_delivery;
    if (raw !== false) {
      this.o.log.warn(
        { queueUrl: this.queueUrl, raw_message_delivery: raw },
        'SQS intake accepts raw SES records (raw message delivery): they carry no signature, so the queue policy (who may SendMessage) is their only authentication; set sqs.raw_message_delivery: false to accept signed SNS envelopes only',
      );
    }
    if (!attrs.Attributes?.RedrivePolicy && this.o.cfg.sqs.poison === 'redrive') {
      this.o.log.warn(
        { queueUrl: this.queueUrl },
        'the SQS queue has no redrive policy: a message that can never be stored comes back until it expires; give the queue a dead-letter queue, or set sqs.poison: delete',
      );
    }
    const n = this.o.cfg.sqs.pollers;
    this.loops = Array.from({ length: n }, () => this.poll());
    this.o.log.info({ queueUrl: this.queueUrl, pollers: n, visibilityTimeout: this.visibilityS }, 'SQS intake polling');
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.loops);
    this.client.destroy();
  }

  private async poll(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let messages: Message[];
      try {
        const res = await this.client.send(
          new ReceiveMessageCommand({
            QueueUrl: this.queueUrl,
            MaxNumberOfMessages: MAX_MESSAGES,
            WaitTimeSeconds: WAIT_SECONDS,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
          { abortSignal: signal },
        );
        messages = res.Messages ?? [];
      } catch (err) {
        if (signal.aborted) break;
        this.o.log.warn({ err: errorMessage(err), queueUrl: this.queueUrl }, 'SQS ReceiveMessage failed; polling again shortly');
        await sleep(ERROR_PAUSE_MS).catch(() => undefined);
        continue;
      }
      if (messages.length > 0) await this.handleBatch(messages);
    }
  }

  /** Stores a received batch (visibility extended meanwhile) and deletes what is committed. */
  async handleBatch(messages: Message[]): Promise<SqsOutcome[]> {
    let pending = true;
    const extend = setInterval(
      () => {
        if (pending) void this.extend(messages);
      },
      Math.max(500, (this.visibilityS * 1000) / 2),
    );
    let outcomes: SqsOutcome[];
    try {
      outcomes = await Promise.all(messages.map((m) => this.ingest(m)));
    } finally {
      pending = false;
      clearInterval(extend);
    }
    const deletable: SqsOutcome[] = ['stored', 'duplicate', 'ignored', 'poison_deleted'];
    const done = messages.filter((_m, i) => deletable.includes(outcomes[i] as SqsOutcome));
    if (outcomes.includes('stored')) this.o.onStored();
    if (done.length > 0) {
      try {
        const res = await this.client.send(
          new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })) }),
        );
        for (const f of res.Failed ?? [])
          this.o.log.warn(
            { code: f.Code, message: f.Message },
            'SQS DeleteMessage failed; the stored message will come back once and be dropped as a duplicate',
          );
      } catch (err) {
        this.o.log.warn({ err: errorMessage(err) }, 'SQS DeleteMessageBatch failed; the stored messages will come back and be dropped as duplicates');
      }
    }
    return outcomes;
  }

  private async extend(messages: Message[]): Promise<void> {
    try {
      await this.client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '', VisibilityTimeout: this.visibilityS })),
        }),
      );
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err) }, 'could not extend the visibility of SQS messages still being stored');
    }
  }

  /**
   * A message that can never be stored: recorded once (by its SQS MessageId, else its body's
   * hash) for `failures`, then left for the redrive policy, or deleted when `sqs.poison` says so
   * and the record is committed. A record that cannot be written leaves the message on the queue.
   */
  private async poison(m: Message, reason: string, message: string): Promise<SqsOutcome> {
    this.o.metrics.sqsMessages.inc({ outcome: reason });
    const body = m.Body ?? '';
    const key = m.MessageId ? SQS_ID_PREFIX + m.MessageId : `sqs-body:${createHash('sha256').update(body).digest('hex')}`;
    let recorded: 'inserted' | 'duplicate' | 'failed';
    try {
      recorded = await this.o.store.recordRefusedMessage({ key, source: 'sqs', reason, message, externalId: m.MessageId ?? null, body, at: this.now() });
    } catch (err) {
      this.o.log.error({ err: errorMessage(err), sqsMessageId: m.MessageId }, 'could not record a poison SQS message in failures; it stays on the queue');
      recorded = 'failed';
    }
    const deleting = this.o.cfg.sqs.poison === 'delete' && recorded !== 'failed';
    this.o.log.warn(
      { reason, sqsMessageId: m.MessageId, receiveCount: m.Attributes?.ApproximateReceiveCount, recorded },
      deleting
        ? `SQS message can never be stored (${message}); recorded in failures and deleted (sqs.poison: delete)`
        : `SQS message can never be stored (${message}); ${recorded === 'failed' ? 'not recorded' : 'recorded in failures'} and left on the queue for its redrive policy to move to the dead-letter queue`,
    );
    return deleting ? 'poison_deleted' : 'poison';
  }

  /** One message: verified (an SNS envelope) or accepted as a raw SES record, then committed. */
  async ingest(m: Message): Promise<SqsOutcome> {
    const body = m.Body ?? '';
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return this.poison(m, 'malformed_json', 'the body is not JSON');
    }
    const isEnvelope = typeof parsed === 'object' && parsed !== null && 'Type' in parsed;
    let row: { messageId: string; topicArn?: string };
    if (isEnvelope) {
      try {
        const env = await verifySnsMessage(body, this.verify);
        if (env.Type !== 'Notification') {
          this.o.log.warn({ type: env.Type, topicArn: env.TopicArn }, 'SNS control message on the SQS queue (SNS confirms SQS subscriptions itself); deleted');
          this.o.metrics.sqsMessages.inc({ outcome: 'ignored' });
          return 'ignored';
        }
        row = { messageId: env.MessageId, topicArn: env.TopicArn };
      } catch (err) {
        if (err instanceof SnsVerificationError && !err.retryable) return this.poison(m, err.code, err.message);
        this.o.log.warn(
          { err: errorMessage(err), sqsMessageId: m.MessageId },
          'SNS envelope from SQS not verified yet; it comes back after its visibility timeout',
        );
        this.o.metrics.sqsMessages.inc({ outcome: 'retry' });
        return 'retry';
      }
    } else if (isBareSesRecord(body)) {
      if (this.o.cfg.sqs.raw_message_delivery === false) {
        return this.poison(m, 'raw_message_refused', 'a raw SES record while sqs.raw_message_delivery is false');
      }
      row = { messageId: SQS_ID_PREFIX + (m.MessageId ?? '') };
    } else {
      return this.poison(m, 'malformed_envelope', 'neither an SNS envelope nor an SES record');
    }
    try {
      const res = await this.o.writer.write({ ...row, source: 'sqs', receivedAt: this.now(), body });
      this.o.metrics.sqsMessages.inc({ outcome: res === 'inserted' ? 'accepted' : 'duplicate' });
      return res === 'inserted' ? 'stored' : 'duplicate';
    } catch (err) {
      this.o.log.error({ err: errorMessage(err), sqsMessageId: m.MessageId }, 'could not commit the SQS message; it stays on the queue and comes back');
      this.o.metrics.sqsMessages.inc({ outcome: 'store_unavailable' });
      return 'retry';
    }
  }
}
