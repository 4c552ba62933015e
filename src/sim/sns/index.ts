// An SNS publisher simulator: signs envelopes with its own certificate (served over
// loopback HTTP like SNS serves SigningCertURL), posts them to an endpoint the way SNS
// does, and answers SubscribeURL visits. Used by `demo`, integration tests and benches.
//
// Subscriptions (subscribe + publishToTopic) model what SNS does with a published message:
// to an SQS queue (of the SQS simulator) it is sent wrapped in a signed envelope, or raw with
// raw message delivery; to an HTTP/S endpoint it is POSTed, and a failed delivery (a 5xx, a 429,
// no connection, no answer) is retried per the subscription's delivery policy (SNS's default:
// 3 retries, 20 s apart) and then moved to the subscription's dead-letter queue, or discarded
// when it has none. Another 4xx is a client-side error: no retry, straight to the DLQ.
//
// It also answers the SNS API as @aws-sdk/client-sns speaks it (the AWS Query protocol: a
// form-encoded POST / with Action=..., XML answers) for the calls `tajo-ses check` makes:
// ListSubscriptionsByTopic, GetSubscriptionAttributes and SetSubscriptionAttributes (a
// DeliveryPolicy, RedrivePolicy or RawMessageDelivery set there changes how publishToTopic
// delivers). `deny` answers chosen actions with AuthorizationError, as IAM would.
//
// Its cert URL is http://127.0.0.1:<port>/..., so a verifier talking to it needs
// allowHttpCertUrls: true and signingCertHosts: ['^127\\.0\\.0\\.1$'].

import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import http from 'node:http';
import https from 'node:https';
import type { SnsEnvelope } from '../../ses/sns.js';
import { loadSigningMaterial, signEnvelope, type SigningMaterial, type UnsignedSnsEnvelope } from './signer.js';
import { listenOn } from '../listen.js';

export { loadSigningMaterial, signEnvelope, type SigningMaterial, type UnsignedSnsEnvelope } from './signer.js';
export { createSelfSignedCertificate, toPem } from './x509.js';

/** Misbehaving URLs on the simulator, for testing how clients cope. */
export type SnsSimFault = 'redirect' | 'oversize' | 'slow' | 'not-pem' | 'error500';

export interface SnsSimMessageOptions {
  messageId?: string;
  timestamp?: string;
  signatureVersion?: '1' | '2';
}

export interface SnsSim {
  /** http://127.0.0.1:PORT/SimpleNotificationService-<hex>.pem, served by this simulator. */
  certUrl: string;
  /** Base URL of the simulator (http://127.0.0.1:PORT). */
  url: string;
  region: string;
  /** The certificate served at certUrl, for verifiers that take the PEM directly. */
  certPem: string;
  /** arn:aws:sns:<region>:123456789012:<name> */
  topicArn(name: string): string;
  /** Fills SigningCertURL (default certUrl), SignatureVersion (default the simulator's) and Signature. */
  sign(env: UnsignedSnsEnvelope): SnsEnvelope;
  notification(
    topicArn: string,
    message: string | object,
    opts?: SnsSimMessageOptions & { subject?: string; messageAttributes?: Record<string, unknown> },
  ): SnsEnvelope;
  /** SubscribeURL points to this simulator's /confirm?Token=..., which records the confirmation. */
  subscriptionConfirmation(topicArn: string, opts?: SnsSimMessageOptions & { token?: string }): SnsEnvelope;
  unsubscribeConfirmation(topicArn: string, opts?: SnsSimMessageOptions & { token?: string }): SnsEnvelope;
  /** Tokens confirmed through SubscribeURL GETs, in order. */
  confirmations(): string[];
  /** POSTs like SNS: text/plain; charset=UTF-8 and the x-amz-sns-* headers. */
  publish(endpointUrl: string, env: SnsEnvelope, opts?: { keepAliveAgent?: unknown; timeoutMs?: number }): Promise<{ status: number; body: string }>;
  /** Subscribes an SQS queue or an HTTP/S endpoint to a topic (already confirmed). */
  subscribe(topicArn: string, spec: SnsSubscriptionSpec): SnsSimSubscription;
  /**
   * Publishes like sns:Publish: one envelope (one MessageId) delivered to every subscription of
   * the topic. Resolves, per subscription in subscription order, once it settled: delivered,
   * moved to its DLQ, or discarded (after the whole delivery policy).
   */
  publishToTopic(topicArn: string, message: string | object, opts?: SnsSimMessageOptions & { subject?: string }): Promise<SnsDeliveryOutcome[]>;
  /** Makes a topic exist for the API (subscribe does too); ListSubscriptionsByTopic on another answers NotFound. */
  createTopic(topicArn: string): void;
  /** API actions answered 403 AuthorizationError from now on ('*': every one); [] allows all again. */
  deny(actions: string[]): void;
  /** API calls per action. */
  apiCalls(): Record<string, number>;
  /** How many times the certificate was downloaded (to test caching). */
  certFetches(): number;
  /** A URL on this simulator that misbehaves; `target` is where 'redirect' points (default certUrl). */
  faultUrl(kind: SnsSimFault, target?: string): string;
  close(): Promise<void>;
}

/** An HTTP/S subscription's retry policy, linear: `numRetries` retries `delayMs` apart after the first attempt. */
export interface SnsHttpDeliveryPolicy {
  numRetries: number;
  delayMs: number;
}

/** SNS's default for HTTP/S: up to three retries, 20 seconds apart; then the message is dropped unless a DLQ is attached. */
export const SNS_DEFAULT_HTTP_DELIVERY_POLICY: SnsHttpDeliveryPolicy = { numRetries: 3, delayMs: 20_000 };

/** A queue of the SQS simulator (anything with its `send`). */
export interface SnsSqsTarget {
  /** `queueArn` names the queue in the API's answers (default arn:aws:sqs:<region>:123456789012:<queue>). */
  sqs: { send(name: string, body: string): string; queueArn?(name: string): string };
  queue: string;
}

export type SnsSubscriptionSpec =
  | {
      protocol: 'http';
      endpoint: string;
      /** Default SNS_DEFAULT_HTTP_DELIVERY_POLICY. */
      deliveryPolicy?: SnsHttpDeliveryPolicy;
      /** Where an undeliverable message goes (the signed envelope, or the raw message when raw); absent: discarded. */
      deadLetterQueue?: SnsSqsTarget;
      rawMessageDelivery?: boolean;
      /** Per attempt; default 15 s as SNS. */
      timeoutMs?: number;
    }
  | { protocol: 'sqs'; queue: SnsSqsTarget; rawMessageDelivery?: boolean };

export type SnsDeliveryOutcome = 'delivered' | 'dead_lettered' | 'discarded';

export interface SnsSubscriptionStats {
  /** Messages delivered to the endpoint or queue. */
  delivered: number;
  /** Delivery attempts that failed (each retry follows one). */
  failedAttempts: number;
  deadLettered: number;
  discarded: number;
}

export interface SnsSimSubscription {
  arn: string;
  topicArn: string;
  stats(): SnsSubscriptionStats;
  unsubscribe(): void;
}

const ACCOUNT_ID = '123456789012';
const OVERSIZE_BYTES = 256 * 1024;

export interface SnsSimOptions {
  region?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** Address to listen on. Default 127.0.0.1; the certificate and SubscribeURL links name it. */
  host?: string;
  signatureVersion?: '1' | '2';
  /** Where a RedrivePolicy set through the API (deadLetterTargetArn ...:<queue>) delivers: a queue of this SQS simulator. */
  sqs?: SnsSqsTarget['sqs'];
}

/** SNS's effective delivery policy of an HTTP/S subscription that sets none (3 retries, 20 s apart). */
export const SNS_DEFAULT_EFFECTIVE_DELIVERY_POLICY = {
  healthyRetryPolicy: {
    minDelayTarget: 20,
    maxDelayTarget: 20,
    numRetries: 3,
    numMaxDelayRetries: 0,
    numNoDelayRetries: 0,
    numMinDelayRetries: 0,
    backoffFunction: 'linear',
  },
  sicklyRetryPolicy: null,
  throttlePolicy: null,
  guaranteed: false,
};

export async function startSnsSim(opts: SnsSimOptions = {}): Promise<SnsSim> {
  const region = opts.region ?? 'us-east-1';
  const material: SigningMaterial = await loadSigningMaterial();
  const certPath = `/SimpleNotificationService-${material.certId}.pem`;
  const issuedTokens = new Set<string>();
  const confirmed: string[] = [];
  let certFetchCount = 0;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    if (req.method === 'POST' && url.pathname === '/') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => api(new URLSearchParams(Buffer.concat(chunks).toString('utf8')), res));
      req.on('error', () => res.destroy());
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (url.pathname === certPath) {
      certFetchCount++;
      res.writeHead(200, { 'content-type': 'application/x-pem-file', 'content-length': Buffer.byteLength(material.certPem) }).end(material.certPem);
      return;
    }
    if (url.pathname === '/confirm') {
      const token = url.searchParams.get('Token') ?? '';
      if (!issuedTokens.has(token)) {
        res
          .writeHead(404, { 'content-type': 'text/xml' })
          .end('<ErrorResponse><Error><Code>NotFound</Code><Message>Unknown token</Message></Error></ErrorResponse>');
        return;
      }
      confirmed.push(token);
      const arn = `${url.searchParams.get('TopicArn') ?? ''}:${randomUUID()}`;
      res
        .writeHead(200, { 'content-type': 'text/xml' })
        .end(
          `<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>${escapeXml(arn)}</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>`,
        );
      return;
    }
    if (url.pathname === '/unsubscribe') {
      res.writeHead(200, { 'content-type': 'text/xml' }).end('<UnsubscribeResponse/>');
      return;
    }
    if (url.pathname.startsWith('/fault/')) {
      const kind = url.pathname.slice('/fault/'.length).replace(/\.pem$/, '');
      switch (kind) {
        case 'redirect':
          res.writeHead(302, { location: url.searchParams.get('to') ?? certUrl }).end();
          return;
        case 'oversize': {
          // Chunked, without content-length, so that only a limit enforced while reading stops it.
          res.writeHead(200, { 'content-type': 'application/x-pem-file' });
          const chunk = Buffer.alloc(16 * 1024, 'A');
          let sent = 0;
          const pump = (): void => {
            while (sent < OVERSIZE_BYTES) {
              sent += chunk.length;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          res.on('error', () => undefined);
          pump();
          return;
        }
        case 'slow':
          // Never answers; close() tears the socket down.
          return;
        case 'not-pem':
          res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>captive portal</body></html>');
          return;
        case 'error500':
          res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
          return;
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });

  const { origin: base } = await listenOn(server, { port: opts.port, host: opts.host });
  const certUrl = `${base}${certPath}`;

  const sign = (env: UnsignedSnsEnvelope): SnsEnvelope =>
    signEnvelope(env, material.privateKey, { certUrl, ...(opts.signatureVersion ? { signatureVersion: opts.signatureVersion } : {}) });

  const confirmation = (
    type: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation',
    topicArn: string,
    o: SnsSimMessageOptions & { token?: string } = {},
  ): SnsEnvelope => {
    const token = o.token ?? randomBytes(64).toString('hex');
    issuedTokens.add(token);
    const subscribeUrl = `${base}/confirm?Action=ConfirmSubscription&TopicArn=${encodeURIComponent(topicArn)}&Token=${encodeURIComponent(token)}`;
    const message =
      type === 'SubscriptionConfirmation'
        ? `Simulated SNS: this endpoint was subscribed to ${topicArn}. Visit the SubscribeURL to confirm.`
        : `Simulated SNS: this endpoint was unsubscribed from ${topicArn}. Visit the SubscribeURL to subscribe again.`;
    return sign({
      Type: type,
      MessageId: o.messageId ?? randomUUID(),
      Token: token,
      TopicArn: topicArn,
      Message: message,
      SubscribeURL: subscribeUrl,
      Timestamp: o.timestamp ?? new Date().toISOString(),
      ...(o.signatureVersion ? { SignatureVersion: o.signatureVersion } : {}),
    });
  };

  const notification = (
    topicArn: string,
    message: string | object,
    o: SnsSimMessageOptions & { subject?: string; messageAttributes?: Record<string, unknown> } = {},
  ) =>
    sign({
      Type: 'Notification',
      MessageId: o.messageId ?? randomUUID(),
      TopicArn: topicArn,
      ...(o.subject !== undefined ? { Subject: o.subject } : {}),
      Message: typeof message === 'string' ? message : JSON.stringify(message),
      Timestamp: o.timestamp ?? new Date().toISOString(),
      UnsubscribeURL: `${base}/unsubscribe?SubscriptionArn=${encodeURIComponent(`${topicArn}:${randomUUID()}`)}`,
      ...(o.messageAttributes ? { MessageAttributes: o.messageAttributes } : {}),
      ...(o.signatureVersion ? { SignatureVersion: o.signatureVersion } : {}),
    });

  interface Sub {
    arn: string;
    topicArn: string;
    spec: SnsSubscriptionSpec;
    stats: SnsSubscriptionStats;
    raw: boolean;
    /** HTTP/S only. */
    policy: SnsHttpDeliveryPolicy;
    dlq: SnsSqsTarget | undefined;
    /** The DeliveryPolicy and RedrivePolicy attributes, as set (JSON); absent: none. */
    deliveryPolicyJson: string | undefined;
    redrivePolicyJson: string | undefined;
  }
  const subs: Sub[] = [];
  const topics = new Set<string>();
  // Aborts the retry waits of deliveries still in progress when the simulator closes.
  const closing = new AbortController();

  const deliverTo = async (sub: Sub, env: SnsEnvelope): Promise<SnsDeliveryOutcome> => {
    const { spec, stats } = sub;
    const body = sub.raw ? env.Message : JSON.stringify(env);
    if (spec.protocol === 'sqs') {
      spec.queue.sqs.send(spec.queue.queue, body);
      stats.delivered++;
      return 'delivered';
    }
    const policy = sub.policy;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        try {
          await sleep(policy.delayMs, undefined, { signal: closing.signal });
        } catch {
          stats.discarded++;
          return 'discarded';
        }
      }
      let retryable: boolean;
      try {
        const res = await postLikeSns(spec.endpoint, env, {
          timeoutMs: spec.timeoutMs,
          subscriptionArn: sub.arn,
          ...(sub.raw ? { raw: true } : {}),
        });
        if (res.status >= 200 && res.status < 300) {
          stats.delivered++;
          return 'delivered';
        }
        retryable = res.status >= 500 || res.status === 429;
      } catch {
        retryable = true; // no connection, or no answer in time: server-side
      }
      stats.failedAttempts++;
      if (!retryable || attempt >= policy.numRetries) break;
    }
    if (sub.dlq) {
      sub.dlq.sqs.send(sub.dlq.queue, body);
      stats.deadLettered++;
      return 'dead_lettered';
    }
    stats.discarded++;
    return 'discarded';
  };

  const queueArnOf = (t: SnsSqsTarget) => t.sqs.queueArn?.(t.queue) ?? `arn:aws:sqs:${region}:${ACCOUNT_ID}:${t.queue}`;
  let denied = new Set<string>();
  const apiCallCount: Record<string, number> = {};

  const subscriptionAttributes = (sub: Sub): Record<string, string> => {
    const isHttp = sub.spec.protocol === 'http';
    const effective = (): string => {
      if (!sub.deliveryPolicyJson) return JSON.stringify(SNS_DEFAULT_EFFECTIVE_DELIVERY_POLICY);
      const set = JSON.parse(sub.deliveryPolicyJson) as { healthyRetryPolicy?: object };
      return JSON.stringify({
        ...SNS_DEFAULT_EFFECTIVE_DELIVERY_POLICY,
        ...set,
        healthyRetryPolicy: { ...SNS_DEFAULT_EFFECTIVE_DELIVERY_POLICY.healthyRetryPolicy, ...set.healthyRetryPolicy },
      });
    };
    return {
      SubscriptionArn: sub.arn,
      TopicArn: sub.topicArn,
      Owner: ACCOUNT_ID,
      Protocol: protocolOf(sub.spec),
      Endpoint: endpointOf(sub.spec),
      ConfirmationWasAuthenticated: 'true',
      PendingConfirmation: 'false',
      RawMessageDelivery: String(sub.raw),
      SubscriptionPrincipal: `arn:aws:iam::${ACCOUNT_ID}:user/sim`,
      ...(isHttp && sub.deliveryPolicyJson ? { DeliveryPolicy: sub.deliveryPolicyJson } : {}),
      ...(isHttp ? { EffectiveDeliveryPolicy: effective() } : {}),
      ...(sub.redrivePolicyJson ? { RedrivePolicy: sub.redrivePolicyJson } : {}),
    };
  };
  const protocolOf = (spec: SnsSubscriptionSpec) => (spec.protocol === 'sqs' ? 'sqs' : new URL(spec.endpoint).protocol === 'https:' ? 'https' : 'http');
  const endpointOf = (spec: SnsSubscriptionSpec) => (spec.protocol === 'sqs' ? queueArnOf(spec.queue) : spec.endpoint);

  const setAttribute = (sub: Sub, name: string, value: string): void => {
    const invalid = (why: string) => new SnsApiError(400, 'InvalidParameter', `Invalid parameter: ${why}`);
    const json = (): Record<string, unknown> => {
      try {
        const v = JSON.parse(value) as unknown;
        if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
      } catch {
        // fall through
      }
      throw invalid(`${name}: not a JSON object`);
    };
    switch (name) {
      case 'RawMessageDelivery':
        if (value !== 'true' && value !== 'false') throw invalid('RawMessageDelivery: expected true or false');
        sub.raw = value === 'true';
        return;
      case 'DeliveryPolicy': {
        if (sub.spec.protocol !== 'http') throw invalid('DeliveryPolicy: only HTTP/S subscriptions take one');
        if (value === '') {
          sub.deliveryPolicyJson = undefined;
          sub.policy = SNS_DEFAULT_HTTP_DELIVERY_POLICY;
          return;
        }
        const h = json()['healthyRetryPolicy'] as Record<string, unknown> | undefined;
        const n = h?.['numRetries'];
        const min = h?.['minDelayTarget'];
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 100) throw invalid('DeliveryPolicy: healthyRetryPolicy.numRetries must be 0..100');
        if (typeof min !== 'number' || min < 0 || min > 3600) throw invalid('DeliveryPolicy: healthyRetryPolicy.minDelayTarget must be 0..3600');
        sub.deliveryPolicyJson = value;
        // The simulator's model is linear at minDelayTarget.
        sub.policy = { numRetries: n, delayMs: min * 1000 };
        return;
      }
      case 'RedrivePolicy': {
        if (value === '') {
          sub.redrivePolicyJson = undefined;
          sub.dlq = undefined;
          return;
        }
        const arn = json()['deadLetterTargetArn'];
        if (typeof arn !== 'string' || !/^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[\w.-]+$/.test(arn))
          throw invalid('RedrivePolicy: deadLetterTargetArn must be an SQS queue ARN');
        sub.redrivePolicyJson = value;
        sub.dlq = opts.sqs ? { sqs: opts.sqs, queue: arn.slice(arn.lastIndexOf(':') + 1) } : undefined;
        return;
      }
      default:
        throw invalid(`AttributeName ${name} is not supported by the simulator`);
    }
  };

  const apiActions: Record<string, (p: URLSearchParams) => { resource: string; run: () => string }> = {
    ListSubscriptionsByTopic: (p) => {
      const topicArn = p.get('TopicArn') ?? '';
      return {
        resource: topicArn,
        run: () => {
          if (!topics.has(topicArn)) throw new SnsApiError(404, 'NotFound', 'Topic does not exist');
          const all = subs.filter((s) => s.topicArn === topicArn);
          const from = Number(p.get('NextToken') ?? '0') || 0;
          const page = all.slice(from, from + 100);
          const members = page
            .map(
              (s) =>
                `<member><TopicArn>${escapeXml(s.topicArn)}</TopicArn><Protocol>${protocolOf(s.spec)}</Protocol><SubscriptionArn>${escapeXml(s.arn)}</SubscriptionArn><Owner>${ACCOUNT_ID}</Owner><Endpoint>${escapeXml(endpointOf(s.spec))}</Endpoint></member>`,
            )
            .join('');
          const next = from + 100 < all.length ? `<NextToken>${from + 100}</NextToken>` : '';
          return `<Subscriptions>${members}</Subscriptions>${next}`;
        },
      };
    },
    GetSubscriptionAttributes: (p) => {
      const arn = p.get('SubscriptionArn') ?? '';
      return {
        resource: arn,
        run: () => {
          const attrs = subscriptionAttributes(subNamed(arn));
          return `<Attributes>${Object.entries(attrs)
            .map(([k, v]) => `<entry><key>${k}</key><value>${escapeXml(v)}</value></entry>`)
            .join('')}</Attributes>`;
        },
      };
    },
    SetSubscriptionAttributes: (p) => {
      const arn = p.get('SubscriptionArn') ?? '';
      return {
        resource: arn,
        run: () => {
          setAttribute(subNamed(arn), p.get('AttributeName') ?? '', p.get('AttributeValue') ?? '');
          return '';
        },
      };
    },
  };
  const subNamed = (arn: string): Sub => {
    const sub = subs.find((s) => s.arn === arn);
    if (!sub) throw new SnsApiError(404, 'NotFound', 'Subscription does not exist');
    return sub;
  };

  const api = (p: URLSearchParams, res: http.ServerResponse): void => {
    const action = p.get('Action') ?? '';
    const requestId = randomUUID();
    const xml = (status: number, body: string) =>
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, 'content-length': Buffer.byteLength(body) }).end(body);
    try {
      const handler = apiActions[action];
      if (!handler) throw new SnsApiError(400, 'InvalidAction', `The action ${action} is not valid for this endpoint (simulator).`);
      apiCallCount[action] = (apiCallCount[action] ?? 0) + 1;
      const { resource, run } = handler(p);
      if (denied.has('*') || denied.has(action))
        throw new SnsApiError(
          403,
          'AuthorizationError',
          `User: arn:aws:iam::${ACCOUNT_ID}:user/sim is not authorized to perform: SNS:${action} on resource: ${resource}`,
        );
      const result = run();
      xml(
        200,
        `<${action}Response xmlns="${SNS_XMLNS}">${result === '' ? '' : `<${action}Result>${result}</${action}Result>`}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`,
      );
    } catch (err) {
      const e = err instanceof SnsApiError ? err : new SnsApiError(500, 'InternalError', String(err));
      xml(
        e.status,
        `<ErrorResponse xmlns="${SNS_XMLNS}"><Error><Type>${e.status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${e.code}</Code><Message>${escapeXml(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
    }
  };

  return {
    certUrl,
    url: base,
    region,
    certPem: material.certPem,
    topicArn: (name) => `arn:aws:sns:${region}:${ACCOUNT_ID}:${name}`,
    sign,
    notification,
    subscribe(topicArn, spec) {
      const web = spec.protocol === 'http' ? spec : undefined;
      const sub: Sub = {
        arn: `${topicArn}:${randomUUID()}`,
        topicArn,
        spec,
        stats: { delivered: 0, failedAttempts: 0, deadLettered: 0, discarded: 0 },
        raw: spec.rawMessageDelivery === true,
        policy: web?.deliveryPolicy ?? SNS_DEFAULT_HTTP_DELIVERY_POLICY,
        dlq: web?.deadLetterQueue,
        deliveryPolicyJson: web?.deliveryPolicy ? deliveryPolicyJson(web.deliveryPolicy) : undefined,
        redrivePolicyJson: web?.deadLetterQueue ? JSON.stringify({ deadLetterTargetArn: queueArnOf(web.deadLetterQueue) }) : undefined,
      };
      topics.add(topicArn);
      subs.push(sub);
      return {
        arn: sub.arn,
        topicArn,
        stats: () => ({ ...sub.stats }),
        unsubscribe: () => {
          const i = subs.indexOf(sub);
          if (i >= 0) subs.splice(i, 1);
        },
      };
    },
    async publishToTopic(topicArn, message, o = {}) {
      const env = notification(topicArn, message, o);
      return Promise.all(subs.filter((s) => s.topicArn === topicArn).map((s) => deliverTo(s, env)));
    },
    subscriptionConfirmation: (topicArn, o) => confirmation('SubscriptionConfirmation', topicArn, o),
    unsubscribeConfirmation: (topicArn, o) => confirmation('UnsubscribeConfirmation', topicArn, o),
    confirmations: () => [...confirmed],
    publish: (endpointUrl, env, o = {}) => postLikeSns(endpointUrl, env, o),
    createTopic: (topicArn) => void topics.add(topicArn),
    deny(actions) {
      denied = new Set(actions);
    },
    apiCalls: () => ({ ...apiCallCount }),
    certFetches: () => certFetchCount,
    faultUrl(kind, target) {
      const u = new URL(`${base}/fault/${kind}.pem`);
      if (target !== undefined) u.searchParams.set('to', target);
      return u.href;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        closing.abort();
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive and deliberately hung ('slow') connections would hold close() open.
        server.closeAllConnections();
      }),
  };
}

const SNS_XMLNS = 'http://sns.amazonaws.com/doc/2010-03-31/';

class SnsApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The DeliveryPolicy attribute of a linear policy (delays in whole seconds, as SNS takes them). */
export function deliveryPolicyJson(p: SnsHttpDeliveryPolicy): string {
  const s = p.delayMs / 1000;
  return JSON.stringify({ healthyRetryPolicy: { numRetries: p.numRetries, minDelayTarget: s, maxDelayTarget: s, backoffFunction: 'linear' } });
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function postLikeSns(
  endpointUrl: string,
  env: SnsEnvelope,
  opts: { keepAliveAgent?: unknown; timeoutMs?: number | undefined; subscriptionArn?: string; raw?: boolean },
): Promise<{ status: number; body: string }> {
  const target = new URL(endpointUrl);
  const client = target.protocol === 'https:' ? https : http;
  // Raw message delivery posts the message itself, without the envelope.
  const body = Buffer.from(opts.raw ? env.Message : JSON.stringify(env), 'utf8');
  const headers: Record<string, string | number> = {
    'content-type': 'text/plain; charset=UTF-8',
    'content-length': body.length,
    'user-agent': 'Amazon Simple Notification Service Agent',
    'x-amz-sns-message-type': env.Type,
    'x-amz-sns-message-id': env.MessageId,
    'x-amz-sns-topic-arn': env.TopicArn,
  };
  if (env.Type === 'Notification') headers['x-amz-sns-subscription-arn'] = opts.subscriptionArn ?? `${env.TopicArn}:sim-subscription`;
  if (opts.raw) headers['x-amz-sns-rawdelivery'] = 'true';
  const agent = opts.keepAliveAgent instanceof http.Agent ? opts.keepAliveAgent : undefined;
  // SNS gives up on an endpoint after 15 s and retries later.
  const timeoutMs = opts.timeoutMs ?? 15_000;

  return new Promise((resolve, reject) => {
    const req = client.request(target, { method: 'POST', headers, ...(agent ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`endpoint ${target.origin} did not answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
