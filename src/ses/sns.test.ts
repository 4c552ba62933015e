import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { TajoError } from '../core/errors.js';
import { signEnvelope, type UnsignedSnsEnvelope } from '../sim/sns/signer.js';
import { createSelfSignedCertificate } from '../sim/sns/x509.js';
import {
  CertCache,
  DEFAULT_SIGNING_CERT_HOSTS,
  SnsVerificationError,
  canonicalString,
  confirmSubscription,
  regionOfTopicArn,
  verifySnsMessage,
  type SnsEnvelope,
  type SnsRejectCode,
  type VerifySnsOptions,
} from './sns.js';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';
const CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem';
const NOW = Date.parse('2024-05-01T12:00:00.000Z');
const HOUR = 60 * 60 * 1000;

// A 1024-bit key of this file's own, not the simulator's 2048-bit one: the verifier does not
// care about the size, and the mutation run (npm run mutate) loads this file once per mutant.
let material: { privateKey: KeyObject; publicKey: KeyObject; certPem: string };
beforeAll(() => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  material = { publicKey, privateKey, certPem: createSelfSignedCertificate({ publicKey, privateKey, commonName: 'sns.test.local' }).pem };
});

function options(over: Partial<VerifySnsOptions> = {}): VerifySnsOptions {
  return {
    topicArns: [TOPIC],
    maxMessageAgeMs: HOUR,
    signingCertHosts: DEFAULT_SIGNING_CERT_HOSTS,
    now: () => NOW,
    certCache: new CertCache(),
    fetchCertificate: () => Promise.resolve(material.certPem),
    ...over,
  };
}

function sign(env: UnsignedSnsEnvelope, certUrl = CERT_URL): SnsEnvelope {
  return signEnvelope(env, material.privateKey, { certUrl });
}

function notification(over: Partial<UnsignedSnsEnvelope> = {}): SnsEnvelope {
  return sign({
    Type: 'Notification',
    MessageId: '7c5b2d2e-0f6c-4c1e-9d55-3c1b2a0e9f11',
    TopicArn: TOPIC,
    Message: JSON.stringify({ eventType: 'Bounce', mail: { messageId: 'abc' } }),
    Timestamp: new Date(NOW - 1000).toISOString(),
    UnsubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x',
    ...over,
  });
}

const TOKEN = 'f00dfacecafe'.repeat(12);

function confirmation(
  type: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation' = 'SubscriptionConfirmation',
  over: Partial<UnsignedSnsEnvelope> = {},
): SnsEnvelope {
  return sign({
    Type: type,
    MessageId: '165545c9-2a5c-472c-8df2-7ff2be2b3b1b',
    Token: TOKEN,
    TopicArn: TOPIC,
    Message: 'Please confirm.',
    SubscribeURL: `https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${encodeURIComponent(TOPIC)}&Token=${TOKEN}`,
    Timestamp: new Date(NOW - 1000).toISOString(),
    ...over,
  });
}

async function rejection(body: unknown, opts: VerifySnsOptions = options()): Promise<SnsVerificationError> {
  try {
    await verifySnsMessage(body, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(SnsVerificationError);
    return err as SnsVerificationError;
  }
  throw new Error('expected verifySnsMessage to reject');
}

describe('canonicalString', () => {
  const base = {
    MessageId: 'mid',
    TopicArn: 'arn:aws:sns:us-east-1:1:t',
    Message: 'hello\nworld',
    Timestamp: '2024-05-01T12:00:00.000Z',
    SignatureVersion: '1',
    Signature: 'x',
    SigningCertURL: 'u',
  } as const;

  it('Notification without Subject', () => {
    expect(canonicalString({ ...base, Type: 'Notification', UnsubscribeURL: 'https://x' })).toBe(
      'Message\nhello\nworld\nMessageId\nmid\nTimestamp\n2024-05-01T12:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n',
    );
  });

  it('Notification with Subject (also an empty one)', () => {
    expect(canonicalString({ ...base, Type: 'Notification', Subject: 'Hi' })).toBe(
      'Message\nhello\nworld\nMessageId\nmid\nSubject\nHi\nTimestamp\n2024-05-01T12:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n',
    );
    expect(canonicalString({ ...base, Type: 'Notification', Subject: '' })).toContain('MessageId\nmid\nSubject\n\nTimestamp\n');
  });

  it.each(['SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const)('%s signs SubscribeURL and Token, never Subject', (type) => {
    expect(canonicalString({ ...base, Type: type, Subject: 'ignored', SubscribeURL: 'https://s/?a=1', Token: 'tok' })).toBe(
      `Message\nhello\nworld\nMessageId\nmid\nSubscribeURL\nhttps://s/?a=1\nTimestamp\n2024-05-01T12:00:00.000Z\nToken\ntok\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\n${type}\n`,
    );
  });

  it('refuses to build a confirmation string without its Token', () => {
    expect(() => canonicalString({ ...base, Type: 'SubscriptionConfirmation', SubscribeURL: 'https://s' })).toThrow(/Token/);
  });
});

describe('regionOfTopicArn', () => {
  it.each([
    ['arn:aws:sns:us-east-1:123456789012:t', 'us-east-1'],
    ['arn:aws-cn:sns:cn-north-1:123456789012:t', 'cn-north-1'],
    ['arn:aws-us-gov:sns:us-gov-west-1:123456789012:t:with:colons', 'us-gov-west-1'],
    ['arn:aws:sqs:us-east-1:123456789012:q', undefined],
    ['arn:aws:sns::123456789012:t', undefined],
    ['not-an-arn', undefined],
    ['arn:aws:sns:us-east-1:123456789012', undefined],
    ['xrn:aws:sns:us-east-1:123456789012:t', undefined],
  ])('%s -> %s', (arn, region) => {
    expect(regionOfTopicArn(arn)).toBe(region);
  });
});

describe('verifySnsMessage accepts', () => {
  it.each(['1', '2'] as const)('SignatureVersion %s (raw string body)', async (v) => {
    const env = notification({ SignatureVersion: v, Subject: 'Amazon SES Email Event Notification' });
    const out = await verifySnsMessage(JSON.stringify(env), options());
    expect(out).toEqual(env);
  });

  it('an already parsed object and a Buffer body', async () => {
    const env = notification();
    await expect(verifySnsMessage(env, options())).resolves.toEqual(env);
    await expect(verifySnsMessage(Buffer.from(JSON.stringify(env)), options())).resolves.toEqual(env);
  });

  it('non-ASCII content, signed over its UTF-8 bytes', async () => {
    const env = notification({ Message: 'Zoë ✉ 受信者 \u{1F600}', Subject: 'Größe' });
    await expect(verifySnsMessage(JSON.stringify(env), options())).resolves.toEqual(env);
  });

  it.each(['SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const)('%s', async (type) => {
    const env = confirmation(type, { SignatureVersion: '2' });
    await expect(verifySnsMessage(JSON.stringify(env), options())).resolves.toEqual(env);
  });

  it('a null Subject as an absent one', async () => {
    const env = notification();
    const out = await verifySnsMessage({ ...env, Subject: null }, options());
    expect(out.Subject).toBeUndefined();
  });

  it('a China-partition topic with its .amazonaws.com.cn certificate host', async () => {
    const topic = 'arn:aws-cn:sns:cn-north-1:123456789012:t';
    const env = notification({ TopicArn: topic }); // signed with CERT_URL below
    const cn = sign({ ...env, SigningCertURL: 'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem' });
    await expect(verifySnsMessage(cn, options({ topicArns: [topic] }))).resolves.toEqual(cn);
  });

  it('a host admitted by a custom pattern without a region (local simulator), over http when allowed', async () => {
    const env = notification({ SigningCertURL: 'http://127.0.0.1:9/SimpleNotificationService-x.pem' });
    await expect(verifySnsMessage(env, options({ signingCertHosts: ['^127\\.0\\.0\\.1$'], allowHttpCertUrls: true }))).resolves.toEqual(env);
  });

  it('signingCertHosts as RegExp objects, and the default when omitted', async () => {
    const env = notification();
    await expect(verifySnsMessage(env, options({ signingCertHosts: [/^sns\.[a-z0-9-]+\.amazonaws\.com$/g] }))).resolves.toEqual(env);
    const { signingCertHosts: _omit, ...rest } = options();
    await expect(verifySnsMessage(env, rest)).resolves.toEqual(env);
  });
});

describe('verifySnsMessage rejects', () => {
  const cases: Array<[string, () => unknown, SnsRejectCode, 400 | 403 | 503, Partial<VerifySnsOptions>?]> = [
    ['malformed JSON', () => '{"Type": "Notification",', 'malformed_json', 400],
    ['a JSON array', () => '[]', 'malformed_envelope', 400],
    ['JSON null', () => 'null', 'malformed_envelope', 400],
    ['an unknown Type', () => ({ ...notification(), Type: 'Surprise' }), 'malformed_envelope', 400],
    ['a missing MessageId', () => ({ ...notification(), MessageId: undefined }), 'malformed_envelope', 400],
    ['a numeric Message', () => ({ ...notification(), Message: 42 }), 'malformed_envelope', 400],
    ['a missing Signature', () => ({ ...notification(), Signature: undefined }), 'malformed_envelope', 400],
    ['a missing SigningCertURL', () => ({ ...notification(), SigningCertURL: undefined }), 'malformed_envelope', 400],
    ['a missing SignatureVersion', () => ({ ...notification(), SignatureVersion: undefined }), 'malformed_envelope', 400],
    ['a confirmation without Token', () => ({ ...confirmation(), Token: undefined }), 'malformed_envelope', 400],
    ['a confirmation without SubscribeURL', () => ({ ...confirmation(), SubscribeURL: undefined }), 'malformed_envelope', 400],
    ['a confirmation with an empty Token', () => confirmation('SubscriptionConfirmation', { Token: '' }), 'malformed_envelope', 400],
    ['a confirmation without MessageId', () => ({ ...confirmation(), MessageId: undefined }), 'malformed_envelope', 400],
    ['a numeric Subject', () => ({ ...notification(), Subject: 7 }), 'malformed_envelope', 400],
    ['an unparsable Timestamp', () => notification({ Timestamp: 'yesterday' }), 'malformed_envelope', 400],
    ['SignatureVersion 3', () => ({ ...notification(), SignatureVersion: '3' }), 'unsupported_signature_version', 400],
    ['SignatureVersion as a number', () => ({ ...notification(), SignatureVersion: 1 }), 'unsupported_signature_version', 400],
    ['an unknown topic', () => notification({ TopicArn: 'arn:aws:sns:us-east-1:123456789012:other' }), 'topic_not_allowed', 403],
    ['any topic when the allow-list is empty', () => notification(), 'topic_not_allowed', 403, { topicArns: [] }],
    ['a stale Timestamp', () => notification({ Timestamp: new Date(NOW - HOUR - 1000).toISOString() }), 'stale_message', 403],
    ['a Timestamp over 5 min in the future', () => notification({ Timestamp: new Date(NOW + 5 * 60 * 1000 + 1000).toISOString() }), 'stale_message', 403],
    ['an unparsable SigningCertURL', () => notification({ SigningCertURL: 'not a url' }), 'cert_url_invalid', 403],
    ['a SigningCertURL with credentials', () => notification({ SigningCertURL: 'https://user:pw@sns.us-east-1.amazonaws.com/x.pem' }), 'cert_url_invalid', 403],
    ['an http SigningCertURL', () => notification({ SigningCertURL: 'http://sns.us-east-1.amazonaws.com/x.pem' }), 'cert_url_not_https', 403],
    [
      'an http SigningCertURL on a custom host when http is not allowed',
      () => notification({ SigningCertURL: 'http://127.0.0.1:9/x.pem' }),
      'cert_url_not_https',
      403,
      { signingCertHosts: ['^127\\.0\\.0\\.1$'] },
    ],
    ['a file: SigningCertURL', () => notification({ SigningCertURL: 'file:///etc/passwd.pem' }), 'cert_url_not_https', 403, { allowHttpCertUrls: true }],
    [
      'a certificate on another host',
      () => notification({ SigningCertURL: 'https://evil.example.com/SimpleNotificationService-x.pem' }),
      'cert_host_not_allowed',
      403,
    ],
    [
      'a host with an SNS-looking prefix',
      () => notification({ SigningCertURL: 'https://sns.us-east-1.amazonaws.com.evil.example/x.pem' }),
      'cert_host_not_allowed',
      403,
    ],
    [
      'a suffix match of an unanchored pattern',
      () => notification({ SigningCertURL: 'https://evil-sns.us-east-1.amazonaws.com/x.pem' }),
      'cert_host_not_allowed',
      403,
      { signingCertHosts: ['sns\\.us-east-1\\.amazonaws\\.com'] },
    ],
    ['a non-.pem path', () => notification({ SigningCertURL: 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.crt' }), 'cert_url_invalid', 403],
    [
      'a certificate from another region',
      () => notification({ SigningCertURL: 'https://sns.us-west-2.amazonaws.com/SimpleNotificationService-x.pem' }),
      'cert_region_mismatch',
      403,
    ],
    [
      'a forged signature',
      () => ({
        ...notification(),
        Signature: cryptoSign('sha1', Buffer.from('x'), generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey).toString('base64'),
      }),
      'bad_signature',
      403,
    ],
    ['a non-base64 signature', () => ({ ...notification(), Signature: 'not base64!' }), 'bad_signature', 403],
    ['a V1 signature labelled V2', () => ({ ...notification({ SignatureVersion: '1' }), SignatureVersion: '2' }), 'bad_signature', 403],
    [
      'a single changed byte in Message',
      () => {
        const env = notification({ Message: '{"eventType":"Bounce"}' });
        return { ...env, Message: '{"eventType":"Bouncf"}' };
      },
      'bad_signature',
      403,
    ],
    ['a changed Subject', () => ({ ...notification({ Subject: 'a' }), Subject: 'b' }), 'bad_signature', 403],
    ['a removed Subject', () => ({ ...notification({ Subject: 'a' }), Subject: undefined }), 'bad_signature', 403],
    ['a changed Token', () => ({ ...confirmation(), Token: `${TOKEN}0` }), 'bad_signature', 403],
    [
      'a changed SubscribeURL',
      () => ({ ...confirmation(), SubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x' }),
      'bad_signature',
      403,
    ],
  ];

  // What each refusal tells the operator: the offending field or value, and what was expected.
  const messages: Record<string, RegExp> = {
    'malformed JSON': /^The SNS request body is not valid JSON \(.+\)\. SNS always posts/,
    'a JSON array': /^The body is an array, not a JSON object\. This is not a well-formed SNS message; it is refused\. SNS HTTP\(S\) deliveries carry/,
    'JSON null': /^The body is null, not a JSON object\./,
    'an unknown Type': /^Field "Type" is "Surprise"; expected Notification, SubscriptionConfirmation or UnsubscribeConfirmation\./,
    'a missing MessageId': /^Field "MessageId" is missing; a Notification needs it as a non-empty string\./,
    'a numeric Message': /^Field "Message" is a number; a Notification needs it/,
    'a missing Signature': /^Field "Signature" is missing;/,
    'a missing SigningCertURL': /^Field "SigningCertURL" is missing;/,
    'a missing SignatureVersion': /^Field "SignatureVersion" is missing\./,
    'a confirmation without Token': /^Field "Token" is missing; a SubscriptionConfirmation needs it as a non-empty string\./,
    'a confirmation without SubscribeURL': /^Field "SubscribeURL" is missing; a SubscriptionConfirmation needs it as a non-empty string\./,
    'a confirmation with an empty Token': /^Field "Token" is an empty string; a SubscriptionConfirmation needs it as a non-empty string\./,
    'a confirmation without MessageId': /^Field "MessageId" is missing; a SubscriptionConfirmation needs it as a non-empty string\./,
    'a numeric Subject': /^Field "Subject" is a number; when present it must be a string\./,
    'an unparsable Timestamp': /^Field "Timestamp" is "yesterday", not an ISO 8601 time such as 2024-05-01T12:00:00\.000Z\./,
    'SignatureVersion 3': /^SignatureVersion "3" is not supported: only "1" \(SHA1withRSA\) and "2" \(SHA256withRSA\) are\./,
    'SignatureVersion as a number': /^SignatureVersion 1 is not supported/,
    'an unknown topic': /^TopicArn arn:aws:sns:us-east-1:123456789012:other is not in the topic allow-list \(sns\.topic_arns\); the message is refused\./,
    'any topic when the allow-list is empty':
      /^No SNS topic is allowed \(the topic allow-list, sns\.topic_arns, is empty\), so the message from arn:aws:sns:us-east-1:123456789012:ses-events is refused\./,
    'a stale Timestamp': /, 3601 s ago, which is older than the replay window \(sns\.max_message_age, 3600 s\); it is refused as a possible replay\./,
    'a Timestamp over 5 min in the future': /, 301 s in the future \(more than 5 min\); it is refused\. Check this host's clock/,
    'an unparsable SigningCertURL': /^SigningCertURL is not a valid absolute URL; it is refused\.$/,
    'a SigningCertURL with credentials': /^SigningCertURL https:\/\/sns\.us-east-1\.amazonaws\.com\/x\.pem carries user credentials/,
    'an http SigningCertURL': /^SigningCertURL http:\/\/sns\.us-east-1\.amazonaws\.com\/x\.pem does not use https; it is refused\./,
    'an http SigningCertURL on a custom host when http is not allowed': /^SigningCertURL http:\/\/127\.0\.0\.1:9\/x\.pem does not use https/,
    'a file: SigningCertURL': /^SigningCertURL file:\/\/\/etc\/passwd\.pem does not use https/,
    'a certificate on another host': /^SigningCertURL host evil\.example\.com is not an allowed SNS host \(sns\.signing_cert_hosts\); it is refused\./,
    'a host with an SNS-looking prefix': /^SigningCertURL host sns\.us-east-1\.amazonaws\.com\.evil\.example is not an allowed SNS host/,
    'a suffix match of an unanchored pattern': /^SigningCertURL host evil-sns\.us-east-1\.amazonaws\.com is not an allowed SNS host/,
    'a non-.pem path': /^SigningCertURL https:\/\/sns\.us-east-1\.amazonaws\.com\/SimpleNotificationService-x\.crt does not name a \.pem file/,
    'a certificate from another region':
      /^SigningCertURL host sns\.us-west-2\.amazonaws\.com is in region us-west-2, but topic arn:aws:sns:us-east-1:123456789012:ses-events is in us-east-1;/,
    'a forged signature':
      /^The signature of message 7c5b2d2e-0f6c-4c1e-9d55-3c1b2a0e9f11 \(SignatureVersion 1\) does not match its content and the certificate at https:\/\/sns\.us-east-1\.amazonaws\.com\/SimpleNotificationService-0123456789abcdef\.pem;/,
    'a non-base64 signature': /^The Signature of message 7c5b2d2e-0f6c-4c1e-9d55-3c1b2a0e9f11 is not valid base64; the message is refused\.$/,
    'a V1 signature labelled V2': /\(SignatureVersion 2\) does not match its content/,
    'a single changed byte in Message': /does not match its content/,
    'a changed Subject': /does not match its content/,
    'a removed Subject': /does not match its content/,
    'a changed Token': /does not match its content/,
    'a changed SubscribeURL': /does not match its content/,
  };

  it.each(cases)('%s', async (name, body, code, status, over) => {
    const fetchCertificate = vi.fn(() => Promise.resolve(material.certPem));
    const err = await rejection(body(), options({ ...over, fetchCertificate }));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(messages[name] ?? /no expected message for this case/);
    expect(err.status).toBe(status);
    expect(err.retryable).toBe(false);
    expect(err).toBeInstanceOf(TajoError);
    // Everything short of checking the signature is decided without touching the network.
    if (code !== 'bad_signature') expect(fetchCertificate).not.toHaveBeenCalled();
  });

  it('names the missing field', async () => {
    const err = await rejection({ ...confirmation(), Token: undefined });
    expect(err.message).toContain('"Token"');
    expect(err.details).toMatchObject({ field: 'Token' });
  });

  it('never puts the signature or the token in a message', async () => {
    const env = confirmation();
    const messages = [
      (await rejection({ ...env, Token: `${TOKEN}0` })).message,
      (await rejection({ ...env, Signature: `${env.Signature.slice(0, -4)}AAAA` })).message,
      (await rejection({ ...env, TopicArn: 'arn:aws:sns:us-east-1:1:other' })).message,
      (await rejection({ ...env, SignatureVersion: env.Signature })).message,
    ];
    for (const m of messages) {
      expect(m).not.toContain(TOKEN);
      expect(m).not.toContain(env.Signature.slice(0, 16));
    }
  });

  it('an empty allow-list says how to fix it', async () => {
    const err = await rejection(notification(), options({ topicArns: [] }));
    expect(err.message).toMatch(/allow-list.*empty/);
  });
});

describe('certificates', () => {
  it('are fetched once for many messages (cache hit)', async () => {
    const fetchCertificate = vi.fn(() => Promise.resolve(material.certPem));
    const opts = options({ fetchCertificate });
    for (let i = 0; i < 20; i++) await verifySnsMessage(notification({ MessageId: `m-${i}` }), opts);
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
    expect(opts.certCache?.size).toBe(1);
  });

  it('are fetched once for concurrent messages (in-flight dedupe)', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const fetchCertificate = vi.fn(async () => {
      await gate;
      return material.certPem;
    });
    const opts = options({ fetchCertificate });
    const all = Promise.all(Array.from({ length: 25 }, (_, i) => verifySnsMessage(notification({ MessageId: `m-${i}` }), opts)));
    await new Promise((r) => setTimeout(r, 10));
    release();
    expect(await all).toHaveLength(25);
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
  });

  it('a failed download is retryable (503), its cause only in details, and remembered for failureTtlMs', async () => {
    let t = 0;
    const fetchCertificate = vi.fn().mockRejectedValueOnce(new Error('ECONNRESET')).mockResolvedValue(material.certPem);
    const opts = options({ fetchCertificate, certCache: new CertCache({ now: () => t, failureTtlMs: 30_000 }) });
    const err = await rejection(notification(), opts);
    expect(err).toMatchObject({ code: 'cert_unavailable', status: 503, retryable: true });
    expect(err.message).not.toContain('ECONNRESET');
    expect(err.details?.detail).toContain('ECONNRESET');
    expect((await rejection(notification(), opts)).code).toBe('cert_unavailable');
    t = 30_000;
    await expect(verifySnsMessage(notification(), opts)).resolves.toBeDefined();
    expect(fetchCertificate).toHaveBeenCalledTimes(2);
  });

  it('only PEM X.509 certificates are used', async () => {
    const notPem = await rejection(notification(), options({ fetchCertificate: () => Promise.resolve('<html>hello</html>') }));
    expect(notPem.code).toBe('cert_unavailable');
    const publicKeyPem = material.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect((await rejection(notification(), options({ fetchCertificate: () => Promise.resolve(publicKeyPem) }))).code).toBe('cert_unavailable');
    const garbled = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    expect((await rejection(notification(), options({ fetchCertificate: () => Promise.resolve(garbled) }))).code).toBe('cert_unavailable');
  });

  it('a certificate with another key gives bad_signature', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const pem = createSelfSignedCertificate({ ...other, commonName: 'other' }).pem;
    expect((await rejection(notification(), options({ fetchCertificate: () => Promise.resolve(pem) }))).code).toBe('bad_signature');
  });

  it('the cache is bounded (least recently used goes first)', async () => {
    const cache = new CertCache({ maxEntries: 2 });
    const fetcher = vi.fn(() => Promise.resolve(material.certPem));
    await cache.get('a', fetcher);
    await cache.get('b', fetcher);
    await cache.get('a', fetcher); // a is now the most recent
    await cache.get('c', fetcher); // evicts b
    expect(cache.size).toBe(2);
    await cache.get('a', fetcher);
    expect(fetcher).toHaveBeenCalledTimes(3);
    await cache.get('b', fetcher);
    expect(fetcher).toHaveBeenCalledTimes(4);
  });

  it('cache entries expire after ttlMs', async () => {
    let t = 0;
    const cache = new CertCache({ ttlMs: 1000, now: () => t });
    const fetcher = vi.fn(() => Promise.resolve(material.certPem));
    await cache.get('a', fetcher);
    t = 999;
    await cache.get('a', fetcher);
    t = 2001;
    await cache.get('a', fetcher);
    expect(fetcher).toHaveBeenCalledTimes(2);
  });
});

describe('option checks', () => {
  it('throw TypeError for a missing allow-list or replay window', async () => {
    await expect(verifySnsMessage(notification(), { ...options(), topicArns: undefined as unknown as string[] })).rejects.toThrow(TypeError);
    await expect(verifySnsMessage(notification(), options({ maxMessageAgeMs: 0 }))).rejects.toThrow(/maxMessageAgeMs/);
    await expect(verifySnsMessage(notification(), options({ signingCertHosts: ['('] }))).rejects.toThrow(/not a valid regular expression/);
  });
});

describe('SnsVerificationError', () => {
  it('maps codes to statuses', () => {
    expect(new SnsVerificationError('malformed_json', 'x').status).toBe(400);
    expect(new SnsVerificationError('bad_signature', 'x').status).toBe(403);
    expect(new SnsVerificationError('cert_unavailable', 'x')).toMatchObject({ status: 503, retryable: true, name: 'SnsVerificationError' });
    expect(new SnsVerificationError('subscription_confirm_failed', 'x', { retryable: true }).status).toBe(503);
    expect(new SnsVerificationError('subscription_confirm_failed', 'x').status).toBe(403);
  });
});

describe('confirmSubscription (fetch mocked)', () => {
  function okFetch() {
    return vi.fn((_url: string | URL | Request, _init?: RequestInit) => Promise.resolve(new Response('<ConfirmSubscriptionResponse/>', { status: 200 })));
  }

  it('GETs the SubscribeURL without following redirects', async () => {
    const fetchImpl = okFetch();
    const env = confirmation();
    await confirmSubscription(env, { ...options(), fetchImpl });
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    const [url, init] = fetchImpl.mock.calls[0] ?? [];
    expect(url).toBe(new URL(env.SubscribeURL ?? '').href);
    expect(init).toMatchObject({ method: 'GET', redirect: 'manual' });
  });

  const refusals: Array<[string, string, Partial<VerifySnsOptions>?]> = [
    ['another host (SSRF)', 'https://169.254.169.254/latest/meta-data/?Action=ConfirmSubscription'],
    ['http', 'http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription'],
    ['another region', 'https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription'],
    ['another SNS action', 'https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x'],
    ['credentials in the URL', 'https://a:b@sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription'],
    ['a non-URL', 'sns.us-east-1.amazonaws.com'],
  ];
  it.each(refusals)('refuses a SubscribeURL on %s', async (_name, subscribeUrl) => {
    const fetchImpl = okFetch();
    const env = confirmation('SubscriptionConfirmation', { SubscribeURL: `${subscribeUrl}&Token=${TOKEN}` });
    const err = await confirmSubscription(env, { ...options(), fetchImpl }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SnsVerificationError);
    expect((err as SnsVerificationError).code).toBe('subscribe_url_not_allowed');
    expect((err as SnsVerificationError).message).not.toContain(TOKEN);
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it('refuses a Notification and a topic outside the allow-list', async () => {
    const fetchImpl = okFetch();
    await expect(confirmSubscription(notification(), { ...options(), fetchImpl })).rejects.toMatchObject({ code: 'subscribe_url_not_allowed' });
    await expect(confirmSubscription(confirmation(), { ...options({ topicArns: [] }), fetchImpl })).rejects.toMatchObject({ code: 'topic_not_allowed' });
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it('a redirect answer is refused; 5xx and network errors are retryable; 4xx is final', async () => {
    const env = confirmation();
    const answer = (status: number) => vi.fn(() => Promise.resolve(new Response(null, { status, headers: status === 302 ? { location: 'https://x' } : {} })));
    await expect(confirmSubscription(env, { ...options(), fetchImpl: answer(302) })).rejects.toMatchObject({ code: 'subscribe_url_not_allowed' });
    await expect(confirmSubscription(env, { ...options(), fetchImpl: answer(503) })).rejects.toMatchObject({
      code: 'subscription_confirm_failed',
      retryable: true,
      status: 503,
    });
    await expect(confirmSubscription(env, { ...options(), fetchImpl: answer(403) })).rejects.toMatchObject({
      code: 'subscription_confirm_failed',
      retryable: false,
      status: 403,
    });
    const down = vi.fn(() => Promise.reject(new TypeError('fetch failed')));
    await expect(confirmSubscription(env, { ...options(), fetchImpl: down })).rejects.toMatchObject({ code: 'subscription_confirm_failed', retryable: true });
  });
});

describe('envelope edge cases', () => {
  const at = (ms: number) => new Date(ms).toISOString();

  it('accepts an empty Message (only Message may be empty)', async () => {
    const env = notification({ Message: '' });
    await expect(verifySnsMessage(env, options())).resolves.toEqual(env);
    const err = await rejection({ ...notification(), MessageId: '' });
    expect(err.code).toBe('malformed_envelope');
    expect(err.message).toMatch(/^Field "MessageId" is an empty string;/);
  });

  it('accepts Timestamps with or without fraction and with an offset', async () => {
    for (const Timestamp of ['2024-05-01T11:59:59Z', '2024-05-01T11:59:59.123456789Z', '2024-05-01T13:59:59.5+02:00', '2024-05-01T06:59:59-05:00']) {
      const env = notification({ Timestamp });
      await expect(verifySnsMessage(env, options()), Timestamp).resolves.toEqual(env);
    }
  });

  it.each([
    '2024-05-01 11:59:59Z',
    '2024-05-01T11:59:59',
    '2024-05-01T11:59:59.1234567890Z',
    '2024-05-01T11:59:59.Z',
    '2024-05-01T11:59:59+0200',
    ' 2024-05-01T11:59:59Z',
    '2024-05-01T11:59:59Z ',
    '24-05-01T11:59:59Z',
    '2024-13-01T11:59:59Z',
  ])('refuses the Timestamp %j as malformed', async (Timestamp) => {
    const err = await rejection(notification({ Timestamp }));
    expect(err.code).toBe('malformed_envelope');
    expect(err.details).toEqual({ field: 'Timestamp' });
  });

  it('the replay window and the future skew are inclusive at their limits', async () => {
    await expect(verifySnsMessage(notification({ Timestamp: at(NOW - HOUR) }), options())).resolves.toBeDefined();
    expect((await rejection(notification({ Timestamp: at(NOW - HOUR - 1) }))).code).toBe('stale_message');
    await expect(verifySnsMessage(notification({ Timestamp: at(NOW + 5 * 60 * 1000) }), options())).resolves.toBeDefined();
    expect((await rejection(notification({ Timestamp: at(NOW + 5 * 60 * 1000 + 1) }))).code).toBe('stale_message');
  });

  it('without a clock option, the replay window is measured against the real time', async () => {
    const { now: _now, ...rest } = options();
    const fresh = notification({ Timestamp: new Date().toISOString() });
    await expect(verifySnsMessage(fresh, rest)).resolves.toEqual(fresh);
    expect((await rejection(notification(), rest)).code).toBe('stale_message');
  });

  it('a stale message names its id, time and the window in its details', async () => {
    const ts = at(NOW - 2 * HOUR);
    const err = await rejection(notification({ Timestamp: ts }));
    expect(err.details).toEqual({ topicArn: TOPIC, messageId: '7c5b2d2e-0f6c-4c1e-9d55-3c1b2a0e9f11', timestamp: ts });
    expect(err.message).toContain(`Message 7c5b2d2e-0f6c-4c1e-9d55-3c1b2a0e9f11 was sent at ${ts}, 7200 s ago`);
  });

  it('keeps MessageAttributes and refuses them when they are no object', async () => {
    const env = { ...notification(), MessageAttributes: { a: { Type: 'String', Value: 'x' } } };
    expect((await verifySnsMessage(env, options())).MessageAttributes).toEqual({ a: { Type: 'String', Value: 'x' } });
    for (const [bad, what] of [
      [null, 'null'],
      [[1], 'an array'],
      ['x', 'a string'],
    ] as const) {
      const err = await rejection({ ...notification(), MessageAttributes: bad });
      expect(err.code).toBe('malformed_envelope');
      expect(err.message).toMatch(new RegExp(`^Field "MessageAttributes" is ${what}; when present it must be an object\\.`));
      expect(err.details).toEqual({ field: 'MessageAttributes' });
    }
  });

  it.each(['UnsubscribeURL', 'SubscribeURL', 'Token'] as const)('refuses a non-string %s on a Notification', async (field) => {
    const err = await rejection({ ...notification(), [field]: 5 });
    expect(err.code).toBe('malformed_envelope');
    expect(err.message).toMatch(new RegExp(`^Field "${field}" is a number; when present it must be a string\\.`));
    expect(err.details).toEqual({ field });
  });

  it('a null SignatureVersion is missing, not unsupported', async () => {
    const err = await rejection({ ...notification(), SignatureVersion: null });
    expect(err.code).toBe('malformed_envelope');
    expect(err.details).toEqual({ field: 'SignatureVersion' });
  });

  it('echoes a short SignatureVersion and only describes a long one', async () => {
    expect((await rejection({ ...notification(), SignatureVersion: '123456789012' })).message).toMatch(/^SignatureVersion "123456789012" is not supported/);
    expect((await rejection({ ...notification(), SignatureVersion: '1234567890123' })).message).toMatch(/^SignatureVersion a string is not supported/);
    expect((await rejection({ ...notification(), SignatureVersion: true })).message).toMatch(/^SignatureVersion a boolean is not supported/);
    expect((await rejection({ ...notification(), SignatureVersion: '3' })).details).toEqual({
      topicArn: TOPIC,
      messageId: '7c5b2d2e-0f6c-4c1e-9d55-3c1b2a0e9f11',
    });
  });

  it('describes a wrong Type by kind, and quotes a string one, cut at 80 characters', async () => {
    expect((await rejection({ ...notification(), Type: undefined })).message).toMatch(/^Field "Type" is missing;/);
    expect((await rejection({ ...notification(), Type: 7 })).message).toMatch(/^Field "Type" is a number;/);
    expect((await rejection({ ...notification(), Type: '' })).message).toMatch(/^Field "Type" is "";/);
    const long = `${'x'.repeat(80)}TAIL`;
    const msg = (await rejection({ ...notification(), Type: long })).message;
    expect(msg).toContain(`Field "Type" is "${'x'.repeat(80)}...";`);
    expect(msg).not.toContain('TAIL');
    expect((await rejection({ ...notification(), Type: 'x'.repeat(80) })).message).toContain(`"${'x'.repeat(80)}";`);
  });

  it('describes a body that is no object', async () => {
    expect((await rejection('42')).message).toMatch(/^The body is a number, not a JSON object\./);
    expect((await rejection('"hi"')).message).toMatch(/^The body is a string, not a JSON object\./);
    expect((await rejection(42)).message).toMatch(/^The body is a number, not a JSON object\./);
    expect((await rejection(undefined)).message).toMatch(/^The body is missing, not a JSON object\./);
    expect((await rejection('')).code).toBe('malformed_json');
  });

  it('reads a byte view over a larger buffer by its own offset and length', async () => {
    const env = notification();
    const json = Buffer.from(JSON.stringify(env));
    const big = new Uint8Array(json.length + 20);
    big.set(json, 10);
    big.fill(0x7b, 0, 10); // '{' before and after: only the view's bytes must be read
    big.fill(0x7b, 10 + json.length);
    await expect(verifySnsMessage(big.subarray(10, 10 + json.length), options())).resolves.toEqual(env);
  });

  it('refuses a SigningCertURL with only a password in it', async () => {
    const err = await rejection(notification({ SigningCertURL: 'https://:secret@sns.us-east-1.amazonaws.com/x.pem' }));
    expect(err.code).toBe('cert_url_invalid');
    expect(err.message).not.toContain('secret');
  });

  it('a topic with no recognizable region cannot use a regional AWS certificate host', async () => {
    const env = notification({ TopicArn: 'not-an-arn' });
    const err = await rejection(env, options({ topicArns: ['not-an-arn'] }));
    expect(err.code).toBe('cert_region_mismatch');
    expect(err.message).toMatch(/but topic not-an-arn is in no recognizable region;/);
    expect(err.details).toEqual({ topicArn: 'not-an-arn', messageId: env.MessageId });
  });
});

describe('signature encoding', () => {
  it('a well-formed base64 signature that does not verify is checked against the certificate', async () => {
    for (const Signature of ['QQ==', 'QUI=', 'QUJD', 'QUJDRA==']) {
      const fetchCertificate = vi.fn(() => Promise.resolve(material.certPem));
      const err = await rejection({ ...notification(), Signature }, options({ fetchCertificate }));
      expect(err.message, Signature).toMatch(/does not match its content/);
      expect(err.details).toMatchObject({ signingCertUrl: CERT_URL });
      expect(fetchCertificate).toHaveBeenCalledTimes(1);
    }
  });

  it('a signature that is not canonical base64 is refused before any download', async () => {
    for (const Signature of ['QQ=', 'Q===', 'QUJ', 'QUJDR', 'QU JD', '=QUJ', 'QUJD\n', 'QUJ-', 'QUJ_']) {
      const fetchCertificate = vi.fn(() => Promise.resolve(material.certPem));
      const err = await rejection({ ...notification(), Signature }, options({ fetchCertificate }));
      expect(err.code, Signature).toBe('bad_signature');
      expect(err.message, Signature).toMatch(/is not valid base64/);
      expect(err.details).toEqual({ topicArn: TOPIC, messageId: '7c5b2d2e-0f6c-4c1e-9d55-3c1b2a0e9f11' });
      expect(fetchCertificate).not.toHaveBeenCalled();
    }
  });
});

describe('signing certificates', () => {
  it('a PEM with surrounding whitespace is used', async () => {
    await expect(verifySnsMessage(notification(), options({ fetchCertificate: () => Promise.resolve(`\n  ${material.certPem}\n\n`) }))).resolves.toBeDefined();
  });

  it('a certificate holding a non-RSA key gives bad_signature', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = createSelfSignedCertificate({ publicKey: ec.publicKey, privateKey: material.privateKey, commonName: 'ec' }).pem;
    const err = await rejection(notification(), options({ fetchCertificate: () => Promise.resolve(pem) }));
    expect(err.code).toBe('bad_signature');
    expect(err.message).toBe(`The signing certificate at ${CERT_URL} holds a ec key, but SNS signs with RSA; the message is refused.`);
    expect(err.details).toEqual({ signingCertUrl: CERT_URL });
  });

  it('says why a downloaded answer is no certificate', async () => {
    const notPem = await rejection(notification(), options({ fetchCertificate: () => Promise.resolve('<html>hello</html>') }));
    expect(notPem.code).toBe('cert_unavailable');
    expect(notPem.details).toEqual({ signingCertUrl: CERT_URL, detail: 'the answer is not a PEM X.509 certificate' });
    const garbled = await rejection(
      notification(),
      options({ fetchCertificate: () => Promise.resolve('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----') }),
    );
    expect((garbled.details as { detail: string }).detail).toMatch(/^the PEM could not be parsed as an X\.509 certificate \(.+\)$/);
    expect(garbled.cause).toBeInstanceOf(Error);
    expect(garbled.retryable).toBe(true);
  });

  it('a fetcher that throws a verification error has it passed on unchanged', async () => {
    const own = new SnsVerificationError('cert_host_not_allowed', 'custom refusal');
    const err = await rejection(notification(), options({ fetchCertificate: () => Promise.reject(own) }));
    expect(err).toBe(own);
  });

  it('a failed download names the host and keeps the cause', async () => {
    const boom = new Error('ECONNRESET');
    const err = await rejection(notification(), options({ fetchCertificate: () => Promise.reject(boom) }));
    expect(err.details).toEqual({ signingCertUrl: CERT_URL, detail: 'ECONNRESET' });
    expect(err.message).not.toContain('ECONNRESET');
    expect(err.cause).toBe(boom);
  });

  it('without a certCache option, one process-wide cache is used', async () => {
    const url = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-process-wide.pem';
    const fetchCertificate = vi.fn(() => Promise.resolve(material.certPem));
    const { certCache: _c, ...rest } = options({ fetchCertificate });
    await verifySnsMessage(sign({ ...notification(), MessageId: 'p-1' }, url), rest);
    await verifySnsMessage(sign({ ...notification(), MessageId: 'p-2' }, url), rest);
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
  });
});

describe('CertCache', () => {
  it('refuses a size that is not a positive integer', () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN])
      expect(() => new CertCache({ maxEntries }), String(maxEntries)).toThrow(/maxEntries must be a positive integer/);
    expect(new CertCache({ maxEntries: 1 }).size).toBe(0);
  });

  it('an entry expires when its time is reached, not after', async () => {
    let t = 0;
    const cache = new CertCache({ ttlMs: 1000, now: () => t });
    const fetcher = vi.fn(() => Promise.resolve(material.certPem));
    await cache.get('a', fetcher);
    t = 1000;
    await cache.get('a', fetcher);
    expect(fetcher).toHaveBeenCalledTimes(2);
  });

  it('keeps entries for 24 hours by default', async () => {
    let t = 0;
    const cache = new CertCache({ now: () => t });
    const fetcher = vi.fn(() => Promise.resolve(material.certPem));
    await cache.get('a', fetcher);
    t = 24 * HOUR - 1;
    await cache.get('a', fetcher);
    expect(fetcher).toHaveBeenCalledTimes(1);
    t = 24 * HOUR;
    await cache.get('a', fetcher);
    expect(fetcher).toHaveBeenCalledTimes(2);
  });

  it('a size of one keeps only the last certificate', async () => {
    const cache = new CertCache({ maxEntries: 1 });
    const fetcher = vi.fn(() => Promise.resolve(material.certPem));
    await cache.get('a', fetcher);
    await cache.get('b', fetcher);
    expect(cache.size).toBe(1);
    await cache.get('b', fetcher);
    expect(fetcher).toHaveBeenCalledTimes(2);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('a late failure of an expired download does not evict the newer entry for the same URL', async () => {
    let t = 0;
    const cache = new CertCache({ ttlMs: 1000, now: () => t });
    let fail: (err: Error) => void = () => undefined;
    const slow = new Promise<string>((_resolve, reject) => (fail = reject));
    const first = cache.get('a', () => slow);
    t = 1500; // the in-flight entry has expired: a new download starts
    const fetcher = vi.fn(() => Promise.resolve(material.certPem));
    await cache.get('a', fetcher);
    fail(new Error('late failure'));
    await expect(first).rejects.toMatchObject({ code: 'cert_unavailable' });
    await cache.get('a', fetcher);
    expect(fetcher).toHaveBeenCalledTimes(1);
    expect(cache.size).toBe(1);
  });
});

describe('option checks (replay window)', () => {
  it.each([Number.NaN, Number.POSITIVE_INFINITY, -1, '3600' as unknown as number])('refuses maxMessageAgeMs %s', async (maxMessageAgeMs) => {
    await expect(verifySnsMessage(notification(), options({ maxMessageAgeMs }))).rejects.toThrow(
      /^verifySnsMessage: options\.maxMessageAgeMs must be a positive number of milliseconds, got /,
    );
  });

  it('says what is wrong with the allow-list and the host patterns', async () => {
    await expect(verifySnsMessage(notification(), { ...options(), topicArns: 'x' as unknown as string[] })).rejects.toThrow(
      /^verifySnsMessage: options\.topicArns must be an array/,
    );
    await expect(verifySnsMessage(notification(), options({ signingCertHosts: ['('] }))).rejects.toThrow(
      /^signingCertHosts: "\(" is not a valid regular expression \(.+\)\.$/,
    );
  });
});

describe('confirmSubscription: more answers', () => {
  const okFetch = () => vi.fn((_url: string | URL | Request, _init?: RequestInit) => Promise.resolve(new Response('<ok/>', { status: 200 })));
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error('expected a rejection');
      },
      (e: unknown) => e as SnsVerificationError,
    );

  it('confirms an UnsubscribeConfirmation too (it re-subscribes)', async () => {
    const fetchImpl = okFetch();
    await confirmSubscription(confirmation('UnsubscribeConfirmation'), { ...options(), fetchImpl });
    expect(fetchImpl).toHaveBeenCalledTimes(1);
  });

  it('a confirmation without a SubscribeURL is refused without a request', async () => {
    const fetchImpl = okFetch();
    for (const SubscribeURL of [undefined, '']) {
      const env = { ...confirmation(), SubscribeURL } as SnsEnvelope;
      const err = await failure(confirmSubscription(env, { ...options(), fetchImpl }));
      expect(err.code).toBe('subscribe_url_not_allowed');
      expect(err.message).toMatch(
        /^The SubscriptionConfirmation for arn:aws:sns:us-east-1:123456789012:ses-events has no SubscribeURL; confirm it with the SNS ConfirmSubscription API/,
      );
      expect(err.details).toEqual({ topicArn: TOPIC, messageId: env.MessageId });
    }
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it('a Notification is refused with a reason', async () => {
    const err = await failure(confirmSubscription(notification(), { ...options(), fetchImpl: okFetch() }));
    expect(err.message).toBe('A Notification has no subscription to confirm; only SubscriptionConfirmation messages are confirmed.');
  });

  it('throws TypeError without a topic allow-list', async () => {
    await expect(confirmSubscription(confirmation(), { ...options(), topicArns: undefined as unknown as string[], fetchImpl: okFetch() })).rejects.toThrow(
      /^confirmSubscription: options\.topicArns must be an array/,
    );
  });

  it('a custom host (local simulator) needs no Action=ConfirmSubscription', async () => {
    const fetchImpl = okFetch();
    const env = confirmation('SubscriptionConfirmation', { SubscribeURL: `http://127.0.0.1:9/confirm?Token=${TOKEN}` });
    await confirmSubscription(env, { ...options({ signingCertHosts: ['^127\\.0\\.0\\.1$'], allowHttpCertUrls: true }), fetchImpl });
    expect(fetchImpl).toHaveBeenCalledTimes(1);
  });

  it('names the refused SubscribeURL without its token', async () => {
    const refuse = async (url: string) =>
      (await failure(confirmSubscription(confirmation('SubscriptionConfirmation', { SubscribeURL: url }), { ...options(), fetchImpl: okFetch() }))).message;
    expect(await refuse(`https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&Token=${TOKEN}`)).toBe(
      'SubscribeURL https://sns.us-east-1.amazonaws.com/ does not call Action=ConfirmSubscription; it is refused.',
    );
    expect(await refuse(`https://evil.example/?Action=ConfirmSubscription&Token=${TOKEN}`)).toMatch(
      /^SubscribeURL host evil\.example is not an allowed SNS host/,
    );
    expect(await refuse(`https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=${TOKEN}`)).toMatch(
      /^SubscribeURL host sns\.eu-west-1\.amazonaws\.com is in region eu-west-1/,
    );
    expect(await refuse(`http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=${TOKEN}`)).toMatch(
      /^SubscribeURL http:\/\/sns\.us-east-1\.amazonaws\.com\/ does not use https/,
    );
  });

  it('every redirect status is refused; 429 and 5xx are retryable, other 4xx final', async () => {
    const env = confirmation();
    const answer = (status: number) => vi.fn(() => Promise.resolve(new Response(null, { status })));
    for (const status of [300, 301, 399]) {
      const err = await failure(confirmSubscription(env, { ...options(), fetchImpl: answer(status) }));
      expect(err.code, String(status)).toBe('subscribe_url_not_allowed');
      expect(err.message).toBe(
        `SubscribeURL https://sns.us-east-1.amazonaws.com/ answered HTTP ${status} (a redirect); redirects are not followed, so the subscription was not confirmed.`,
      );
    }
    for (const [status, retryable] of [
      [400, false],
      [429, true],
      [499, false],
      [500, true],
      [599, true],
    ] as const) {
      const err = await failure(confirmSubscription(env, { ...options(), fetchImpl: answer(status) }));
      expect(err.code, String(status)).toBe('subscription_confirm_failed');
      expect(err.retryable, String(status)).toBe(retryable);
      expect(err.details).toEqual({ topicArn: TOPIC, messageId: env.MessageId, status });
      expect(err.message).toBe(
        `SubscribeURL https://sns.us-east-1.amazonaws.com/ answered HTTP ${status}; the subscription was not confirmed. ${
          retryable ? 'Answer 503 so SNS delivers the confirmation again.' : 'The token may have expired: subscribe the endpoint again.'
        }`,
      );
    }
  });

  it('an unreachable SubscribeURL is retryable and keeps the cause', async () => {
    const cause = new TypeError('fetch failed');
    const err = await failure(confirmSubscription(confirmation(), { ...options(), fetchImpl: vi.fn(() => Promise.reject(cause)) }));
    expect(err).toMatchObject({ code: 'subscription_confirm_failed', retryable: true, status: 503, cause });
    expect(err.message).toMatch(/^Could not reach SubscribeURL https:\/\/sns\.us-east-1\.amazonaws\.com\/ \(fetch failed\); answer 503/);
  });

  it('gives up after timeoutMs', async () => {
    const hang = vi.fn(
      (_url: string | URL | Request, init?: RequestInit) =>
        new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal?.reason as Error))),
    );
    const started = Date.now();
    const err = await failure(confirmSubscription(confirmation(), { ...options(), fetchImpl: hang, timeoutMs: 30 }));
    expect(err).toMatchObject({ code: 'subscription_confirm_failed', retryable: true });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('what a verified envelope and a refusal carry', () => {
  it('the envelope has exactly the fields the message had', async () => {
    const n = await verifySnsMessage(notification(), options());
    expect(Object.keys(n).sort()).toEqual([
      'Message',
      'MessageId',
      'Signature',
      'SignatureVersion',
      'SigningCertURL',
      'Timestamp',
      'TopicArn',
      'Type',
      'UnsubscribeURL',
    ]);
    const c = await verifySnsMessage(confirmation(), options());
    expect(Object.keys(c).sort()).toEqual([
      'Message',
      'MessageId',
      'Signature',
      'SignatureVersion',
      'SigningCertURL',
      'SubscribeURL',
      'Timestamp',
      'Token',
      'TopicArn',
      'Type',
    ]);
  });

  it('malformed refusals name the field, and only when there is one', async () => {
    expect((await rejection('[]')).details).toStrictEqual({});
    expect((await rejection({ ...notification(), Type: 'Surprise' })).details).toStrictEqual({ field: 'Type' });
    expect((await rejection({ ...notification(), Subject: 7 })).details).toStrictEqual({ field: 'Subject' });
    expect((await rejection('{"Type":')).cause).toBeInstanceOf(SyntaxError);
  });

  it('describes a SignatureVersion that is no string or number', async () => {
    expect((await rejection({ ...notification(), SignatureVersion: ['1'] })).message).toMatch(/^SignatureVersion an array is not supported/);
  });

  it('refusals for the topic and the clock carry the topic and message id', async () => {
    const ids = { topicArn: TOPIC, messageId: '7c5b2d2e-0f6c-4c1e-9d55-3c1b2a0e9f11' };
    expect((await rejection(notification(), options({ topicArns: [] }))).details).toEqual(ids);
    expect((await rejection(notification(), options({ topicArns: ['arn:aws:sns:us-east-1:123456789012:other'] }))).details).toEqual(ids);
    const future = new Date(NOW + HOUR).toISOString();
    expect((await rejection(notification({ Timestamp: future }))).details).toEqual({ ...ids, timestamp: future });
  });

  it('refuses a SigningCertURL with only a user name in it', async () => {
    expect((await rejection(notification({ SigningCertURL: 'https://someone@sns.us-east-1.amazonaws.com/x.pem' }))).code).toBe('cert_url_invalid');
  });

  it('refuses an expanded-year Timestamp', async () => {
    expect((await rejection(notification({ Timestamp: '+002024-05-01T11:59:59Z' }))).code).toBe('malformed_envelope');
  });
});

describe('certificate host patterns', () => {
  it('keep their flags other than g and y', async () => {
    const env = notification();
    await expect(verifySnsMessage(env, options({ signingCertHosts: [/^SNS\.US-EAST-1\.AMAZONAWS\.COM$/i] }))).resolves.toEqual(env);
  });

  it('any one matching pattern admits the host', async () => {
    const env = notification();
    await expect(verifySnsMessage(env, options({ signingCertHosts: ['^127\\.0\\.0\\.1$', ...DEFAULT_SIGNING_CERT_HOSTS] }))).resolves.toEqual(env);
  });

  it('an unanchored pattern must still match the whole host, not a prefix of it', async () => {
    const err = await rejection(
      notification({ SigningCertURL: 'https://sns.us-east-1.amazonaws.com.evil.example/x.pem' }),
      options({ signingCertHosts: ['sns\\.us-east-1\\.amazonaws\\.com'] }),
    );
    expect(err.code).toBe('cert_host_not_allowed');
  });

  it('keeps the cause of an invalid pattern', async () => {
    const err = await verifySnsMessage(notification(), options({ signingCertHosts: ['['] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as TypeError).cause).toBeInstanceOf(SyntaxError);
  });

  it('a custom host that only contains an SNS host name carries no region to compare', async () => {
    for (const SigningCertURL of ['https://cache-sns.us-west-2.amazonaws.com/x.pem', 'https://sns.us-west-2.amazonaws.com.cache.example/x.pem']) {
      const host = new URL(SigningCertURL).hostname.replace(/\./g, '\\.');
      const env = notification({ SigningCertURL });
      await expect(verifySnsMessage(env, options({ signingCertHosts: [`^${host}$`] })), SigningCertURL).resolves.toEqual(env);
    }
  });
});
