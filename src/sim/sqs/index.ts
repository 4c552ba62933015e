// Amazon SQS simulator for tests, the demo and benchmarks. It speaks the AWS JSON 1.0 protocol
// (`X-Amz-Target: AmazonSQS.<Operation>`) that @aws-sdk/client-sqs uses, for the operations the
// connector needs: long-polled ReceiveMessage, visibility timeouts and their changes, deletes
// (one or in batches), SendMessage, GetQueueAttributes and a redrive policy to a dead-letter
// queue. Receipt handles change on every receive; deleting with a stale one succeeds and deletes
// nothing, as on SQS.

import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOn } from '../listen.js';

const ACCOUNT = '123456789012';
const MAX_BODY = 256 * 1024;

export interface SqsSimQueueOptions {
  /** Default 30 s, as SQS. */
  visibilityTimeoutSeconds?: number;
  /** After this many receives, the next receive moves the message to `deadLetterQueue`. */
  redrive?: { deadLetterQueue: string; maxReceiveCount: number };
}

export interface SqsSimMessage {
  messageId: string;
  body: string;
  receiveCount: number;
  sentAt: number;
  firstReceivedAt: number | undefined;
  /** Epoch ms from which a receive may return it. */
  visibleAt: number;
  receipt: string | undefined;
}

export interface SqsSimOptions {
  port?: number;
  host?: string;
  region?: string;
  /** Queues that exist from the start. */
  queues?: Record<string, SqsSimQueueOptions>;
  now?: () => number;
}

export interface SqsSim {
  /** http://127.0.0.1:PORT: the SQS endpoint (also the origin of every queue URL). */
  endpoint: string;
  region: string;
  /** Creates a queue (or changes its settings) and returns its URL. */
  createQueue(name: string, opts?: SqsSimQueueOptions): string;
  queueUrl(name: string): string;
  queueArn(name: string): string;
  /** Puts a message on a queue as SendMessage would; returns its MessageId. */
  send(name: string, body: string): string;
  /** The messages a queue holds (in flight or not), oldest first. */
  messages(name: string): SqsSimMessage[];
  /** Calls per operation name. */
  calls(): Record<string, number>;
  /** While on, DeleteMessage(Batch) calls are counted but never answered (to stop a client between its commit and its delete). */
  holdDeletes(on: boolean): void;
  close(): Promise<void>;
}

interface Queue {
  name: string;
  visibilityTimeoutS: number;
  redrive: { deadLetterQueue: string; maxReceiveCount: number } | undefined;
  messages: SqsSimMessage[];
  createdAt: number;
}

class SqsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
    readonly queryCode?: string,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');

function int(v: unknown, name: string, min: number, max: number, def: number): number {
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new SqsError('InvalidParameterValue', `Value ${String(v)} for parameter ${name} is invalid. Reason: must be between ${min} and ${max}.`);
  }
  return v;
}

export async function startSqsSim(opts: SqsSimOptions = {}): Promise<SqsSim> {
  const region = opts.region ?? 'us-east-1';
  const now = opts.now ?? Date.now;
  const queues = new Map<string, Queue>();
  const calls: Record<string, number> = {};
  let origin = '';
  let closing = false;
  let holding = false;

  const queueUrl = (name: string) => `${origin}/${ACCOUNT}/${name}`;
  const queueArn = (name: string) => `arn:aws:sqs:${region}:${ACCOUNT}:${name}`;

  function createQueue(name: string, q: SqsSimQueueOptions = {}): string {
    const existing = queues.get(name);
    const queue: Queue = existing ?? { name, visibilityTimeoutS: 30, redrive: undefined, messages: [], createdAt: now() };
    if (q.visibilityTimeoutSeconds !== undefined) queue.visibilityTimeoutS = q.visibilityTimeoutSeconds;
    if (q.redrive !== undefined) queue.redrive = q.redrive;
    queues.set(name, queue);
    return queueUrl(name);
  }

  function queueOf(body: Json): Queue {
    const url = body['QueueUrl'];
    if (typeof url !== 'string') throw new SqsError('MissingParameter', 'The request must contain the parameter QueueUrl.');
    const name = url.split('/').pop() ?? '';
    const q = queues.get(name);
    if (!q) throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.', 400, 'AWS.SimpleQueueService.NonExistentQueue');
    return q;
  }

  function put(q: Queue, body: string, delayS = 0): SqsSimMessage {
    const m: SqsSimMessage = {
      messageId: randomUUID(),
      body,
      receiveCount: 0,
      sentAt: now(),
      firstReceivedAt: undefined,
      visibleAt: now() + delayS * 1000,
      receipt: undefined,
    };
    q.messages.push(m);
    return m;
  }

  /** Visible messages, after moving those over maxReceiveCount to the dead-letter queue. */
  function takeVisible(q: Queue, max: number, visibilityS: number): SqsSimMessage[] {
    const t = now();
    const out: SqsSimMessage[] = [];
    for (const m of [...q.messages]) {
      if (out.length >= max) break;
      if (m.visibleAt > t) continue;
      const dlq = q.redrive ? queues.get(q.redrive.deadLetterQueue) : undefined;
      if (q.redrive && dlq && m.receiveCount >= q.redrive.maxReceiveCount) {
        q.messages.splice(q.messages.indexOf(m), 1);
        // The message keeps its id and counts, as SQS moves it.
        m.visibleAt = t;
        m.receipt = undefined;
        dlq.messages.push(m);
        continue;
      }
      m.receiveCount++;
      m.firstReceivedAt ??= t;
      m.visibleAt = t + visibilityS * 1000;
      m.receipt = `${m.messageId}#${randomUUID()}`;
      out.push(m);
    }
    return out;
  }

  function findByReceipt(q: Queue, receipt: unknown): { m: SqsSimMessage | undefined; stale: boolean } {
    if (typeof receipt !== 'string' || !receipt.includes('#'))
      throw new SqsError('ReceiptHandleIsInvalid', `The input receipt handle "${String(receipt)}" is not a valid receipt handle.`);
    const id = receipt.slice(0, receipt.indexOf('#'));
    const m = q.messages.find((x) => x.messageId === id);
    return { m: m?.receipt === receipt ? m : undefined, stale: m !== undefined && m.receipt !== receipt };
  }

  function deleteOne(q: Queue, receipt: unknown): void {
    const { m } = findByReceipt(q, receipt);
    if (m) q.messages.splice(q.messages.indexOf(m), 1);
  }

  function changeVisibility(q: Queue, receipt: unknown, timeout: unknown): void {
    const s = int(timeout, 'VisibilityTimeout', 0, 43_200, -1);
    if (s < 0) throw new SqsError('MissingParameter', 'The request must contain the parameter VisibilityTimeout.');
    const { m } = findByReceipt(q, receipt);
    if (!m || m.visibleAt <= now())
      throw new SqsError('MessageNotInflight', 'The message referred to is not in flight.', 400, 'AWS.SimpleQueueService.MessageNotInflight');
    m.visibleAt = now() + s * 1000;
  }

  function batch(q: Queue, body: Json, one: (entry: Json) => void): Json {
    const entries = body['Entries'];
    if (!Array.isArray(entries) || entries.length === 0) throw new SqsError('EmptyBatchRequest', 'There should be at least one entry in the request.');
    if (entries.length > 10) throw new SqsError('TooManyEntriesInBatchRequest', 'Maximum number of entries per request are 10.');
    const Successful: Json[] = [];
    const Failed: Json[] = [];
    for (const e of entries as Json[]) {
      try {
        one(e);
        Successful.push({ Id: e['Id'] });
      } catch (err) {
        const se = err instanceof SqsError ? err : new SqsError('InternalError', String(err), 500);
        Failed.push({ Id: e['Id'], SenderFault: se.status < 500, Code: se.type, Message: se.message });
      }
    }
    void q;
    return { Successful, Failed };
  }

  function attributes(q: Queue, names: unknown): Json {
    const t = now();
    const all: Record<string, string> = {
      QueueArn: queueArn(q.name),
      VisibilityTimeout: String(q.visibilityTimeoutS),
      ApproximateNumberOfMessages: String(q.messages.filter((m) => m.visibleAt <= t).length),
      ApproximateNumberOfMessagesNotVisible: String(q.messages.filter((m) => m.visibleAt > t && m.receipt !== undefined).length),
      ApproximateNumberOfMessagesDelayed: String(q.messages.filter((m) => m.visibleAt > t && m.receipt === undefined).length),
      CreatedTimestamp: String(Math.floor(q.createdAt / 1000)),
      MaximumMessageSize: String(MAX_BODY),
      MessageRetentionPeriod: '345600',
      ReceiveMessageWaitTimeSeconds: '0',
      DelaySeconds: '0',
    };
    if (q.redrive)
      all['RedrivePolicy'] = JSON.stringify({ deadLetterTargetArn: queueArn(q.redrive.deadLetterQueue), maxReceiveCount: q.redrive.maxReceiveCount });
    const wanted = Array.isArray(names) ? (names as string[]) : [];
    if (wanted.includes('All')) return { Attributes: all };
    return { Attributes: Object.fromEntries(Object.entries(all).filter(([k]) => wanted.includes(k))) };
  }

  function messageView(m: SqsSimMessage, names: string[]): Json {
    const attrs: Record<string, string> = {
      ApproximateReceiveCount: String(m.receiveCount),
      SentTimestamp: String(m.sentAt),
      ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt ?? m.sentAt),
      SenderId: 'AIDASIMULATOR',
    };
    const all = names.includes('All');
    const picked = Object.entries(attrs).filter(([k]) => all || names.includes(k));
    return {
      MessageId: m.messageId,
      ReceiptHandle: m.receipt,
      MD5OfBody: md5(m.body),
      Body: m.body,
      ...(picked.length > 0 ? { Attributes: Object.fromEntries(picked) } : {}),
    };
  }

  async function receive(body: Json): Promise<Json> {
    const q = queueOf(body);
    const max = int(body['MaxNumberOfMessages'], 'MaxNumberOfMessages', 1, 10, 1);
    const wait = int(body['WaitTimeSeconds'], 'WaitTimeSeconds', 0, 20, 0);
    const visibility = int(body['VisibilityTimeout'], 'VisibilityTimeout', 0, 43_200, q.visibilityTimeoutS);
    const names = [body['AttributeNames'], body['MessageSystemAttributeNames']].flatMap((v) => (Array.isArray(v) ? (v as string[]) : []));
    const deadline = Date.now() + wait * 1000;
    for (;;) {
      const got = takeVisible(q, max, visibility);
      if (got.length > 0 || Date.now() >= deadline || closing) return got.length > 0 ? { Messages: got.map((m) => messageView(m, names)) } : {};
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const handlers: Record<string, (body: Json) => Json | Promise<Json>> = {
    ReceiveMessage: receive,
    SendMessage: (body) => {
      const q = queueOf(body);
      const text = body['MessageBody'];
      if (typeof text !== 'string' || text === '') throw new SqsError('MissingParameter', 'The request must contain the parameter MessageBody.');
      if (Buffer.byteLength(text) > MAX_BODY)
        throw new SqsError('InvalidParameterValue', 'One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.');
      const m = put(q, text, int(body['DelaySeconds'], 'DelaySeconds', 0, 900, 0));
      return { MessageId: m.messageId, MD5OfMessageBody: md5(text) };
    },
    DeleteMessage: (body) => {
      deleteOne(queueOf(body), body['ReceiptHandle']);
      return {};
    },
    DeleteMessageBatch: (body) => {
      const q = queueOf(body);
      return batch(q, body, (e) => deleteOne(q, e['ReceiptHandle']));
    },
    ChangeMessageVisibility: (body) => {
      changeVisibility(queueOf(body), body['ReceiptHandle'], body['VisibilityTimeout']);
      return {};
    },
    ChangeMessageVisibilityBatch: (body) => {
      const q = queueOf(body);
      return batch(q, body, (e) => changeVisibility(q, e['ReceiptHandle'], e['VisibilityTimeout']));
    },
    GetQueueAttributes: (body) => attributes(queueOf(body), body['AttributeNames']),
    GetQueueUrl: (body) => {
      const name = body['QueueName'];
      if (typeof name !== 'string' || !queues.has(name))
        throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.', 400, 'AWS.SimpleQueueService.NonExistentQueue');
      return { QueueUrl: queueUrl(name) };
    },
  };

  function reply(res: ServerResponse, status: number, json: Json, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(json);
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': randomUUID(),
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const op = target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : '';
    try {
      const handler = handlers[op];
      if (req.method !== 'POST' || !handler) throw new SqsError('UnsupportedOperation', `The simulator does not support ${JSON.stringify(target)}.`);
      calls[op] = (calls[op] ?? 0) + 1;
      if (holding && op.startsWith('DeleteMessage')) return; // never answered; the socket closes with the client or the simulator
      let body: Json;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Json;
      } catch {
        throw new SqsError('InvalidParameterValue', 'The request body is not JSON.');
      }
      reply(res, 200, await handler(body));
    } catch (err) {
      const se = err instanceof SqsError ? err : new SqsError('InternalError', String(err), 500);
      reply(
        res,
        se.status,
        { __type: `com.amazonaws.sqs#${se.type}`, message: se.message },
        se.queryCode ? { 'x-amzn-query-error': `${se.queryCode};Sender` } : {},
      );
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const listening = await listenOn(server, { port: opts.port, host: opts.host });
  origin = listening.origin;
  for (const [name, q] of Object.entries(opts.queues ?? {})) createQueue(name, q);

  return {
    endpoint: origin,
    region,
    createQueue,
    queueUrl,
    queueArn,
    send(name, body) {
      const q = queues.get(name);
      if (!q) throw new Error(`sqs sim: no queue ${name}`);
      return put(q, body).messageId;
    },
    messages: (name) => [...(queues.get(name)?.messages ?? [])],
    calls: () => ({ ...calls }),
    holdDeletes(on) {
      holding = on;
    },
    async close() {
      closing = true;
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
