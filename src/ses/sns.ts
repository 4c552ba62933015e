// Verification of Amazon SNS HTTP(S) deliveries (Notification, SubscriptionConfirmation,
// UnsubscribeConfirmation) before anything in them is trusted.
//
// Anyone can POST to the webhook, so every check that needs no network (shape, signature
// version, topic allow-list, replay window, certificate URL) runs before the signing
// certificate is downloaded: a forged request must not make us fetch arbitrary URLs.
// The certificate chain is not validated against a CA bundle; as in the AWS SDK
// validators, trust comes from downloading it over HTTPS from an allow-listed SNS host.

import { X509Certificate, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { TajoError, errorMessage } from '../core/errors.js';

export type SnsMessageType = 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';

export interface SnsEnvelope {
  Type: SnsMessageType;
  MessageId: string;
  TopicArn: string;
  Subject?: string;
  Message: string;
  Timestamp: string;
  SignatureVersion: '1' | '2';
  Signature: string;
  SigningCertURL: string;
  UnsubscribeURL?: string;
  SubscribeURL?: string;
  Token?: string;
  MessageAttributes?: Record<string, unknown>;
}

export type SnsRejectCode =
  | 'malformed_json'
  | 'malformed_envelope'
  | 'unsupported_signature_version'
  | 'cert_url_invalid'
  | 'cert_url_not_https'
  | 'cert_host_not_allowed'
  | 'cert_region_mismatch'
  | 'cert_unavailable'
  | 'bad_signature'
  | 'topic_not_allowed'
  | 'stale_message'
  | 'subscribe_url_not_allowed'
  | 'subscription_confirm_failed';

const BAD_REQUEST: ReadonlySet<SnsRejectCode> = new Set<SnsRejectCode>(['malformed_json', 'malformed_envelope', 'unsupported_signature_version']);

/**
 * `status` is the HTTP answer for the webhook. SNS treats 4xx as final and retries 5xx
 * for up to an hour, so a retryable failure (the signing certificate could not be
 * obtained, or the SubscribeURL could not be reached) is 503: the message is not
 * forged, we just could not check it yet. Callers may use `status` directly, or answer
 * 503 whenever `retryable` is true; both give the same result.
 *
 * The message is returned to whoever posted the request, so it never carries text from
 * the network (an error from a connection the caller made us open); such text is in
 * `details.detail`, for the log.
 */
export class SnsVerificationError extends TajoError<SnsRejectCode> {
  readonly status: 400 | 403 | 503;

  constructor(code: SnsRejectCode, message: string, opts: { retryable?: boolean; cause?: unknown; details?: Record<string, unknown> } = {}) {
    const retryable = opts.retryable ?? code === 'cert_unavailable';
    super(code, message, { ...opts, retryable });
    this.name = 'SnsVerificationError';
    this.status = BAD_REQUEST.has(code) ? 400 : retryable ? 503 : 403;
  }
}

export interface VerifySnsOptions {
  /** Exact TopicArn allow-list. Empty: every message is refused (topic_not_allowed). */
  topicArns: string[];
  /** Replay window on the envelope's Timestamp. */
  maxMessageAgeMs: number;
  /**
   * Hostnames allowed to serve signing certificates (and SubscribeURLs). Strings are regex
   * sources. A pattern must match the whole hostname, so an unanchored pattern cannot be
   * satisfied by a suffix such as `sns.us-east-1.amazonaws.com.evil.example`.
   * Default: DEFAULT_SIGNING_CERT_HOSTS.
   */
  signingCertHosts?: Array<string | RegExp>;
  /**
   * Accept http:// certificate and subscribe URLs, and any port in them (the simulators
   * listen on an ephemeral loopback port). Local tests only: in production both URLs must
   * use https on its default port.
   */
  allowHttpCertUrls?: boolean;
  now?: () => number;
  /** Default: one cache shared by the whole process. */
  certCache?: CertCache;
  /** Returns the certificate PEM. Default: downloadCertificate (timeout, size cap, no redirects). Called through certCache, which bounds how often and how many at once. */
  fetchCertificate?: (url: string) => Promise<string>;
  /** Default 5000. */
  certTimeoutMs?: number;
  /** Default 65536. */
  certMaxBytes?: number;
}

/**
 * The one definition of the hosts real SNS serves certificates from (sns.<region>.amazonaws.com,
 * and .com.cn in China); the configuration default (sns.signing_cert_hosts) is this string.
 */
export const DEFAULT_SIGNING_CERT_HOST = '^sns\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?$';
export const DEFAULT_SIGNING_CERT_HOSTS: string[] = [DEFAULT_SIGNING_CERT_HOST];

const MAX_FUTURE_SKEW_MS = 5 * 60 * 1000;
const DEFAULT_CERT_TIMEOUT_MS = 5000;
const DEFAULT_CERT_MAX_BYTES = 64 * 1024;
const DEFAULT_CONFIRM_TIMEOUT_MS = 10_000;
/** The region-bearing form of SNS hostnames; other allowed hosts (test servers) carry no region. */
const AWS_SNS_HOST = /^sns\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// ---------------------------------------------------------------------------------------
// Certificate cache

export interface CertCacheOptions {
  /** Default 100. SNS uses a handful of certificates per region; the bound only stops a flood of distinct URLs from growing memory. */
  maxEntries?: number;
  /** Default 24 h. SNS rotates certificates under new URLs, so this only bounds how long a revoked one could linger. */
  ttlMs?: number;
  /**
   * Default 30 s. How long a failed download (or an unusable certificate) is remembered, so
   * that a flood of forged requests naming one certificate URL costs one outbound fetch per
   * period instead of one per request. SNS's default HTTP retry policy retries every 20 s,
   * so a genuine transient failure is tried again by the second retry at the latest.
   */
  failureTtlMs?: number;
  /** Default 1000. Remembered failures beyond this forget the oldest (it then costs one more fetch). */
  maxFailures?: number;
  /**
   * Default 8. Downloads in flight at once; a request that would need one more is answered
   * cert_unavailable (503, SNS retries) without fetching. Forged requests naming many
   * distinct URLs on an allowed host can therefore never hold more outbound connections.
   */
  maxConcurrentFetches?: number;
  now?: () => number;
}

interface CacheEntry {
  key: Promise<KeyObject>;
  expiresAt: number;
}

interface FailureEntry {
  error: SnsVerificationError;
  until: number;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`CertCache ${name} must be a positive integer, got ${String(value)}`);
  return v;
}

/**
 * Public keys of signing certificates by URL. Concurrent requests for one URL share a
 * single download (a burst of SNS deliveries after a rotation would otherwise fetch the
 * certificate once per message). A failure is remembered for failureTtlMs, and at most
 * maxConcurrentFetches downloads run at once: anyone can make us fetch a URL on an allowed
 * host by posting a forged message, so both are bounded here, before the network.
 */
export class CertCache {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly failures = new Map<string, FailureEntry>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly failureTtlMs: number;
  private readonly maxFailures: number;
  private readonly maxConcurrentFetches: number;
  private readonly now: () => number;
  private fetching = 0;

  constructor(opts: CertCacheOptions = {}) {
    this.maxEntries = positiveInteger('maxEntries', opts.maxEntries, 100);
    this.maxFailures = positiveInteger('maxFailures', opts.maxFailures, 1000);
    this.maxConcurrentFetches = positiveInteger('maxConcurrentFetches', opts.maxConcurrentFetches, 8);
    this.ttlMs = opts.ttlMs ?? 24 * 60 * 60 * 1000;
    this.failureTtlMs = opts.failureTtlMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  /** Certificates cached or in flight (remembered failures are not counted). */
  get size(): number {
    return this.entries.size;
  }

  /** Downloads in flight now. */
  get inFlight(): number {
    return this.fetching;
  }

  clear(): void {
    this.entries.clear();
    this.failures.clear();
  }

  /** The certificate's public key, downloading it with `fetcher` unless cached, in flight, or failed recently. */
  get(url: string, fetcher: (url: string) => Promise<string>): Promise<KeyObject> {
    const now = this.now();
    const hit = this.entries.get(url);
    if (hit && hit.expiresAt > now) {
      // Re-insert to keep Map order = least recently used first.
      this.entries.delete(url);
      this.entries.set(url, hit);
      return hit.key;
    }
    const failed = this.failures.get(url);
    if (failed) {
      if (failed.until > now) return Promise.reject(failed.error);
      this.failures.delete(url);
    }
    if (this.fetching >= this.maxConcurrentFetches) {
      // Not remembered as a failure: the URL itself may be fine once the burst is over.
      return Promise.reject(certUnavailable(url, `${this.fetching} certificate downloads are already in flight (the limit); not fetching another`));
    }
    this.fetching++;
    const key = (async () => {
      let pem: string;
      try {
        pem = await fetcher(url);
      } catch (err) {
        if (err instanceof SnsVerificationError) throw err;
        throw certUnavailable(url, errorMessage(err), err);
      } finally {
        this.fetching--;
      }
      return publicKeyFromPem(pem, url);
    })();
    const entry: CacheEntry = { key, expiresAt: now + this.ttlMs };
    this.entries.delete(url);
    this.entries.set(url, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    key.catch((err: unknown) => {
      if (this.entries.get(url) === entry) this.entries.delete(url);
      this.rememberFailure(url, err);
    });
    return key;
  }

  private rememberFailure(url: string, err: unknown): void {
    // Every rejection of `key` is an SnsVerificationError (fetch failures are wrapped above,
    // publicKeyFromPem throws only those); anything else is a bug and is not remembered.
    if (!(err instanceof SnsVerificationError)) return;
    this.failures.delete(url);
    this.failures.set(url, { error: err, until: this.now() + this.failureTtlMs });
    while (this.failures.size > this.maxFailures) {
      const oldest = this.failures.keys().next();
      if (oldest.done) break;
      this.failures.delete(oldest.value);
    }
  }
}

const processCertCache = new CertCache();

function publicKeyFromPem(pem: string, url: string): KeyObject {
  const text = pem.trim();
  if (!text.startsWith('-----BEGIN CERTIFICATE-----')) {
    throw certUnavailable(url, 'the answer is not a PEM X.509 certificate');
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(text);
  } catch (err) {
    throw certUnavailable(url, `the PEM could not be parsed as an X.509 certificate (${errorMessage(err)})`, err);
  }
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== 'rsa') {
    throw new SnsVerificationError(
      'bad_signature',
      `The signing certificate at ${safeUrl(url)} holds a ${key.asymmetricKeyType ?? 'unknown'} key, but SNS signs with RSA; the message is refused.`,
      { details: { signingCertUrl: safeUrl(url) } },
    );
  }
  return key;
}

/**
 * The one error for "the signing certificate could not be obtained". Its message is the same
 * whatever happened: it goes back to an unauthenticated caller, who must learn nothing about
 * our network (connection errors, internal addresses, timings). `details.detail` says what
 * happened, for the log.
 */
function certUnavailable(url: string, detail: string, cause?: unknown): SnsVerificationError {
  return new SnsVerificationError(
    'cert_unavailable',
    'The SNS signing certificate could not be obtained; the message is not refused for good (503: SNS retries it). The cause is in the connector log.',
    { retryable: true, cause, details: { signingCertUrl: safeUrl(url), detail } },
  );
}

/**
 * Default certificate download: one GET, no redirects (a 3xx is a failure: a redirect
 * would let the allow-listed host hand us a certificate from anywhere), a deadline for
 * the whole exchange, and a size cap enforced while reading.
 */
export function downloadCertificate(url: string, opts: { timeoutMs?: number; maxBytes?: number } = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CERT_TIMEOUT_MS;
  const maxBytes = opts.maxBytes ?? DEFAULT_CERT_MAX_BYTES;
  let target: URL;
  try {
    target = new URL(url);
  } catch (err) {
    return Promise.reject(certUnavailable(url, 'the URL cannot be parsed', err));
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    return Promise.reject(certUnavailable(url, `protocol ${target.protocol} is not supported`));
  }
  const client = target.protocol === 'https:' ? https : http;

  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const fail = (reason: string, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(certUnavailable(url, reason, cause));
    };
    const req = client.get(target, { headers: { accept: 'application/x-pem-file, text/plain;q=0.9, */*;q=0.1' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        return fail(`the server answered HTTP ${status} (a redirect); redirects are not followed for signing certificates`);
      }
      if (status !== 200) {
        res.resume();
        return fail(`the server answered HTTP ${status}`);
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.resume();
        return fail(`the certificate is ${declared} bytes, over the ${maxBytes}-byte limit`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) return fail(`the certificate is over the ${maxBytes}-byte limit`);
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      res.on('error', (err) => fail(errorMessage(err), err));
    });
    req.on('error', (err) => fail(errorMessage(err), err));
    const timer = setTimeout(() => fail(`no complete answer within ${timeoutMs} ms`), timeoutMs);
  });
}

// ---------------------------------------------------------------------------------------
// Envelope parsing

const COMMON_FIELDS = ['MessageId', 'TopicArn', 'Message', 'Timestamp', 'Signature', 'SigningCertURL'] as const;
const CONFIRMATION_FIELDS = ['Token', 'SubscribeURL'] as const;

function malformed(message: string, field?: string): SnsVerificationError {
  return new SnsVerificationError(
    'malformed_envelope',
    `${message} This is not a well-formed SNS message; it is refused. SNS HTTP(S) deliveries carry a JSON envelope with Type, MessageId, TopicArn, Message, Timestamp, SignatureVersion, Signature and SigningCertURL.`,
    { details: field === undefined ? {} : { field } },
  );
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a string';
  return `a ${typeof value}`;
}

/** A version-like value is echoed; anything longer is only described, since it may be a misplaced secret. */
function shortValue(value: unknown): string {
  return (typeof value === 'string' && value.length <= 12) || typeof value === 'number' ? JSON.stringify(value) : describe(value);
}

/** A short, escaped excerpt of an untrusted value for an error message. */
function excerpt(value: unknown): string {
  const s = typeof value === 'string' ? value : String(value);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);
}

function parseBody(body: unknown): Record<string, unknown> {
  let raw = body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new SnsVerificationError(
        'malformed_json',
        `The SNS request body is not valid JSON (${errorMessage(err)}). SNS always posts a JSON document as text/plain; make sure the raw body reaches the verifier unchanged.`,
        { cause: err },
      );
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw malformed(`The body is ${describe(raw)}, not a JSON object.`);
  }
  return raw as Record<string, unknown>;
}

function parseEnvelope(body: unknown): SnsEnvelope {
  const obj = parseBody(body);
  const type = obj.Type;
  if (type !== 'Notification' && type !== 'SubscriptionConfirmation' && type !== 'UnsubscribeConfirmation') {
    throw malformed(
      `Field "Type" is ${typeof type === 'string' ? excerpt(type) : describe(type)}; expected Notification, SubscriptionConfirmation or UnsubscribeConfirmation.`,
      'Type',
    );
  }
  const required: readonly string[] = type === 'Notification' ? COMMON_FIELDS : [...COMMON_FIELDS, ...CONFIRMATION_FIELDS];
  for (const field of required) {
    const v = obj[field];
    // Message may legitimately be empty; every other field identifies or authenticates the message.
    if (typeof v !== 'string' || (v === '' && field !== 'Message')) {
      throw malformed(`Field "${field}" is ${describe(v)}; a ${type} needs it as a non-empty string.`, field);
    }
  }
  if (obj.SignatureVersion === undefined || obj.SignatureVersion === null) {
    throw malformed(`Field "SignatureVersion" is missing.`, 'SignatureVersion');
  }
  if (obj.SignatureVersion !== '1' && obj.SignatureVersion !== '2') {
    throw new SnsVerificationError(
      'unsupported_signature_version',
      `SignatureVersion ${shortValue(obj.SignatureVersion)} is not supported: only "1" (SHA1withRSA) and "2" (SHA256withRSA) are. Set the topic's SignatureVersion attribute to 1 or 2.`,
      { details: { topicArn: obj.TopicArn, messageId: obj.MessageId } },
    );
  }
  // SNS omits Subject when none was published; some relays write null for it.
  if (obj.Subject !== undefined && obj.Subject !== null && typeof obj.Subject !== 'string') {
    throw malformed(`Field "Subject" is ${describe(obj.Subject)}; when present it must be a string.`, 'Subject');
  }
  for (const field of ['UnsubscribeURL', 'SubscribeURL', 'Token'] as const) {
    if (obj[field] !== undefined && typeof obj[field] !== 'string') {
      throw malformed(`Field "${field}" is ${describe(obj[field])}; when present it must be a string.`, field);
    }
  }
  const attrs = obj.MessageAttributes;
  if (attrs !== undefined && (attrs === null || typeof attrs !== 'object' || Array.isArray(attrs))) {
    throw malformed(`Field "MessageAttributes" is ${describe(attrs)}; when present it must be an object.`, 'MessageAttributes');
  }
  const timestamp = obj.Timestamp as string;
  if (!ISO_TIMESTAMP.test(timestamp) || Number.isNaN(Date.parse(timestamp))) {
    throw malformed(`Field "Timestamp" is ${excerpt(timestamp)}, not an ISO 8601 time such as 2024-05-01T12:00:00.000Z.`, 'Timestamp');
  }

  const env: SnsEnvelope = {
    Type: type,
    MessageId: obj.MessageId as string,
    TopicArn: obj.TopicArn as string,
    Message: obj.Message as string,
    Timestamp: timestamp,
    SignatureVersion: obj.SignatureVersion,
    Signature: obj.Signature as string,
    SigningCertURL: obj.SigningCertURL as string,
  };
  if (typeof obj.Subject === 'string') env.Subject = obj.Subject;
  if (typeof obj.UnsubscribeURL === 'string') env.UnsubscribeURL = obj.UnsubscribeURL;
  if (typeof obj.SubscribeURL === 'string') env.SubscribeURL = obj.SubscribeURL;
  if (typeof obj.Token === 'string') env.Token = obj.Token;
  if (attrs !== undefined) env.MessageAttributes = attrs as Record<string, unknown>;
  return env;
}

// ---------------------------------------------------------------------------------------
// Canonical string

/**
 * The string SNS signs: "Name\nValue\n" for each signed field, names in byte order.
 * Notification: Message, MessageId, Subject (only when present), Timestamp, TopicArn, Type.
 * SubscriptionConfirmation / UnsubscribeConfirmation: Message, MessageId, SubscribeURL,
 * Timestamp, Token, TopicArn, Type.
 */
export function canonicalString(env: SnsEnvelope): string {
  const names =
    env.Type === 'Notification'
      ? (['Message', 'MessageId', ...(typeof env.Subject === 'string' ? (['Subject'] as const) : []), 'Timestamp', 'TopicArn', 'Type'] as const)
      : (['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'] as const);
  let out = '';
  for (const name of names) {
    const value = env[name];
    if (typeof value !== 'string') {
      throw malformed(`Field "${name}" is ${describe(value)}; a ${String(env.Type)} needs it to compute the signed string.`, name);
    }
    out += `${name}\n${value}\n`;
  }
  return out;
}

/** The region of an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>). */
export function regionOfTopicArn(arn: string): string | undefined {
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn' || parts[2] !== 'sns') return undefined;
  const region = parts[3];
  return region === undefined || region === '' ? undefined : region;
}

// ---------------------------------------------------------------------------------------
// Checks

function checkOptions(options: VerifySnsOptions): void {
  if (!Array.isArray(options.topicArns))
    throw new TypeError('verifySnsMessage: options.topicArns must be an array of topic ARNs (it may be empty, which refuses every message).');
  if (typeof options.maxMessageAgeMs !== 'number' || !Number.isFinite(options.maxMessageAgeMs) || options.maxMessageAgeMs <= 0) {
    throw new TypeError(`verifySnsMessage: options.maxMessageAgeMs must be a positive number of milliseconds, got ${String(options.maxMessageAgeMs)}.`);
  }
}

function compileHostPatterns(patterns: Array<string | RegExp>): RegExp[] {
  return patterns.map((p) => {
    if (p instanceof RegExp) return new RegExp(p.source, p.flags.replace(/[gy]/g, ''));
    try {
      return new RegExp(p);
    } catch (err) {
      throw new TypeError(`signingCertHosts: ${JSON.stringify(p)} is not a valid regular expression (${errorMessage(err)}).`, { cause: err });
    }
  });
}

function hostAllowed(hostname: string, patterns: RegExp[]): boolean {
  return patterns.some((re) => {
    const m = re.exec(hostname);
    return m !== null && m.index === 0 && m[0].length === hostname.length;
  });
}

/** Origin and path only: a SubscribeURL carries the subscription token in its query. */
function safeUrl(url: string | URL): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<unparsable URL>';
  }
}

function checkTopic(env: SnsEnvelope, options: VerifySnsOptions): void {
  if (options.topicArns.length === 0) {
    throw new SnsVerificationError(
      'topic_not_allowed',
      `No SNS topic is allowed (the topic allow-list, sns.topic_arns, is empty), so the message from ${env.TopicArn} is refused. List the ARNs of the topics your SES configuration sets publish to.`,
      { details: { topicArn: env.TopicArn, messageId: env.MessageId } },
    );
  }
  if (!options.topicArns.includes(env.TopicArn)) {
    throw new SnsVerificationError(
      'topic_not_allowed',
      `TopicArn ${env.TopicArn} is not in the topic allow-list (sns.topic_arns); the message is refused. Add the ARN there if this topic should feed the connector.`,
      { details: { topicArn: env.TopicArn, messageId: env.MessageId } },
    );
  }
}

function checkTimestamp(env: SnsEnvelope, options: VerifySnsOptions): void {
  const now = options.now ? options.now() : Date.now();
  const sent = Date.parse(env.Timestamp);
  const details = { topicArn: env.TopicArn, messageId: env.MessageId, timestamp: env.Timestamp };
  if (now - sent > options.maxMessageAgeMs) {
    throw new SnsVerificationError(
      'stale_message',
      `Message ${env.MessageId} was sent at ${env.Timestamp}, ${Math.round((now - sent) / 1000)} s ago, which is older than the replay window (sns.max_message_age, ${Math.round(options.maxMessageAgeMs / 1000)} s); it is refused as a possible replay. Raise max_message_age if legitimate deliveries take longer.`,
      { details },
    );
  }
  if (sent - now > MAX_FUTURE_SKEW_MS) {
    throw new SnsVerificationError(
      'stale_message',
      `Message ${env.MessageId} claims to be sent at ${env.Timestamp}, ${Math.round((sent - now) / 1000)} s in the future (more than ${MAX_FUTURE_SKEW_MS / 60000} min); it is refused. Check this host's clock (NTP).`,
      { details },
    );
  }
}

/**
 * Checks a URL that SNS gives us to fetch (SigningCertURL or SubscribeURL) against the
 * same rules, so neither can be pointed at an internal service: https on its default port
 * (an explicit :443 is the same URL), no credentials, no fragment, an allowed host in the
 * topic's region. A SigningCertURL also has no query and names a .pem file: real ones are
 * https://sns.<region>.amazonaws.com/SimpleNotificationService-<hex>.pem, and the URL is
 * the cache key, so a query would let a forger mint endless distinct URLs for one file.
 * allowHttpCertUrls (local tests) admits http and any port; nothing else is relaxed.
 * UnsubscribeURL is never fetched, so it is not checked.
 */
function checkSnsUrl(
  raw: string,
  env: SnsEnvelope,
  options: VerifySnsOptions,
  field: 'SigningCertURL' | 'SubscribeURL',
  fail: (code: SnsRejectCode, message: string) => SnsVerificationError,
): URL {
  const codes =
    field === 'SigningCertURL'
      ? ({ invalid: 'cert_url_invalid', notHttps: 'cert_url_not_https', host: 'cert_host_not_allowed', region: 'cert_region_mismatch' } as const)
      : ({
          invalid: 'subscribe_url_not_allowed',
          notHttps: 'subscribe_url_not_allowed',
          host: 'subscribe_url_not_allowed',
          region: 'subscribe_url_not_allowed',
        } as const);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw fail(codes.invalid, `${field} is not a valid absolute URL; it is refused.`);
  }
  if (url.username !== '' || url.password !== '') {
    throw fail(codes.invalid, `${field} ${safeUrl(url)} carries user credentials, which SNS URLs never do; it is refused.`);
  }
  const testRelaxation = options.allowHttpCertUrls === true;
  if (url.protocol !== 'https:' && !(testRelaxation && url.protocol === 'http:')) {
    throw fail(codes.notHttps, `${field} ${safeUrl(url)} does not use https; it is refused. Only local tests may allow http (sns.allow_http_cert_urls).`);
  }
  // URL() leaves `port` empty for the scheme's default, so https://host:443/ passes.
  if (url.port !== '' && !testRelaxation) {
    throw fail(codes.invalid, `${field} ${safeUrl(url)} names port ${url.port}; SNS URLs use the default https port, so it is refused.`);
  }
  // Tested on the raw text: URL() drops an empty query or fragment ("x.pem?" or "x.pem#").
  if (raw.includes('#')) {
    throw fail(codes.invalid, `${field} ${safeUrl(url)} has a fragment (#...), which SNS URLs never do; it is refused.`);
  }
  if (field === 'SigningCertURL' && raw.includes('?')) {
    throw fail(codes.invalid, `SigningCertURL ${safeUrl(url)} has a query (?...), which SNS certificate URLs never do; it is refused.`);
  }
  const patterns = compileHostPatterns(options.signingCertHosts ?? DEFAULT_SIGNING_CERT_HOSTS);
  if (!hostAllowed(url.hostname, patterns)) {
    throw fail(
      codes.host,
      `${field} host ${url.hostname} is not an allowed SNS host (sns.signing_cert_hosts); it is refused. Real SNS URLs are served by sns.<region>.amazonaws.com.`,
    );
  }
  if (field === 'SigningCertURL' && !url.pathname.endsWith('.pem')) {
    throw fail(codes.invalid, `SigningCertURL ${safeUrl(url)} does not name a .pem file; it is refused.`);
  }
  const aws = AWS_SNS_HOST.exec(url.hostname);
  // Hosts admitted by a custom pattern (a local simulator on 127.0.0.1) carry no region,
  // so only the region comparison is skipped for them; every other check still applies.
  if (aws) {
    const hostRegion = aws[1];
    const topicRegion = regionOfTopicArn(env.TopicArn);
    if (hostRegion !== topicRegion) {
      throw fail(
        codes.region,
        `${field} host ${url.hostname} is in region ${hostRegion ?? '?'}, but topic ${env.TopicArn} is in ${topicRegion ?? 'no recognizable region'}; SNS signs with its own region's certificate, so the message is refused.`,
      );
    }
  }
  return url;
}

function decodeSignature(env: SnsEnvelope): Buffer {
  const sig = env.Signature;
  const bytes = BASE64.test(sig) ? Buffer.from(sig, 'base64') : Buffer.alloc(0);
  if (bytes.length === 0) {
    throw new SnsVerificationError('bad_signature', `The Signature of message ${env.MessageId} is not valid base64; the message is refused.`, {
      details: { topicArn: env.TopicArn, messageId: env.MessageId },
    });
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------
// Public API

/**
 * Parses and verifies an SNS HTTP(S) delivery and returns the envelope, or throws an
 * SnsVerificationError whose `code` says why and whose `status` is the HTTP answer
 * (400 malformed, 403 refused, 503 for cert_unavailable so that SNS retries).
 * `body` is the raw request body (string or bytes) or an already parsed object.
 */
export async function verifySnsMessage(body: unknown, options: VerifySnsOptions): Promise<SnsEnvelope> {
  checkOptions(options);
  const env = parseEnvelope(body);
  checkTopic(env, options);
  checkTimestamp(env, options);
  const details = { topicArn: env.TopicArn, messageId: env.MessageId };
  const certUrl = checkSnsUrl(env.SigningCertURL, env, options, 'SigningCertURL', (code, message) => new SnsVerificationError(code, message, { details }));
  const signature = decodeSignature(env);
  const data = Buffer.from(canonicalString(env), 'utf8');

  const fetcher =
    options.fetchCertificate ??
    ((url: string) =>
      downloadCertificate(url, { timeoutMs: options.certTimeoutMs ?? DEFAULT_CERT_TIMEOUT_MS, maxBytes: options.certMaxBytes ?? DEFAULT_CERT_MAX_BYTES }));
  const key = await (options.certCache ?? processCertCache).get(certUrl.href, fetcher);

  let ok: boolean;
  try {
    ok = cryptoVerify(env.SignatureVersion === '2' ? 'sha256' : 'sha1', data, key, signature);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new SnsVerificationError(
      'bad_signature',
      `The signature of message ${env.MessageId} (SignatureVersion ${env.SignatureVersion}) does not match its content and the certificate at ${safeUrl(certUrl)}; the message was altered or not sent by SNS, and is refused.`,
      { details: { ...details, signingCertUrl: safeUrl(certUrl) } },
    );
  }
  return env;
}

export interface ConfirmSubscriptionOptions extends VerifySnsOptions {
  fetchImpl?: typeof fetch;
  /** Default 10000. */
  timeoutMs?: number;
}

/**
 * Visits the SubscribeURL of a verified SubscriptionConfirmation (or UnsubscribeConfirmation,
 * which re-subscribes; call it for that type only if re-subscribing is intended). The URL
 * gets the same checks as a SigningCertURL (https, allowed host, the topic's region) and
 * redirects are refused, so a message cannot make us request an arbitrary address.
 * Call it only with an envelope returned by verifySnsMessage: the signature is what
 * makes the URL trustworthy.
 */
export async function confirmSubscription(env: SnsEnvelope, options: ConfirmSubscriptionOptions): Promise<void> {
  const details = { topicArn: env.TopicArn, messageId: env.MessageId };
  const refuse = (code: SnsRejectCode, message: string): SnsVerificationError => new SnsVerificationError(code, message, { details });
  if (env.Type !== 'SubscriptionConfirmation' && env.Type !== 'UnsubscribeConfirmation') {
    throw refuse('subscribe_url_not_allowed', `A ${String(env.Type)} has no subscription to confirm; only SubscriptionConfirmation messages are confirmed.`);
  }
  if (typeof env.SubscribeURL !== 'string' || env.SubscribeURL === '') {
    throw refuse(
      'subscribe_url_not_allowed',
      `The ${env.Type} for ${env.TopicArn} has no SubscribeURL; confirm it with the SNS ConfirmSubscription API and its Token instead.`,
    );
  }
  if (!Array.isArray(options.topicArns)) throw new TypeError('confirmSubscription: options.topicArns must be an array of topic ARNs.');
  // Confirming a subscription to a topic we would refuse anyway would only invite traffic we drop.
  checkTopic(env, options);
  const url = checkSnsUrl(env.SubscribeURL, env, options, 'SubscribeURL', refuse);
  if (AWS_SNS_HOST.test(url.hostname) && url.searchParams.get('Action') !== 'ConfirmSubscription') {
    throw refuse('subscribe_url_not_allowed', `SubscribeURL ${safeUrl(url)} does not call Action=ConfirmSubscription; it is refused.`);
  }

  const fetchImpl = options.fetchImpl ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
  let res: Response;
  try {
    res = await fetchImpl(url.href, { method: 'GET', redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new SnsVerificationError(
      'subscription_confirm_failed',
      `Could not reach SubscribeURL ${safeUrl(url)} (${errorMessage(err)}); answer 503 so SNS delivers the confirmation again, or confirm with the ConfirmSubscription API.`,
      { retryable: true, cause: err, details },
    );
  }
  // The answer (an XML receipt) carries nothing we need; release the connection.
  await res.body?.cancel().catch(() => undefined);
  if (res.status >= 300 && res.status < 400) {
    throw refuse(
      'subscribe_url_not_allowed',
      `SubscribeURL ${safeUrl(url)} answered HTTP ${res.status} (a redirect); redirects are not followed, so the subscription was not confirmed.`,
    );
  }
  if (!res.ok) {
    const retryable = res.status >= 500 || res.status === 429;
    throw new SnsVerificationError(
      'subscription_confirm_failed',
      `SubscribeURL ${safeUrl(url)} answered HTTP ${res.status}; the subscription was not confirmed. ${retryable ? 'Answer 503 so SNS delivers the confirmation again.' : 'The token may have expired: subscribe the endpoint again.'}`,
      { retryable, details: { ...details, status: res.status } },
    );
  }
}
