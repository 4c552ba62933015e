import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { TajoError } from '../core/errors.js';
import { loadSigningMaterial, signEnvelope, type SigningMaterial, type UnsignedSnsEnvelope } from '../sim/sns/signer.js';
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

let material: SigningMaterial;
beforeAll(async () => {
  material = await loadSigningMaterial();
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

  it.each(cases)('%s', async (_name, body, code, status, over) => {
    const fetchCertificate = vi.fn(() => Promise.resolve(material.certPem));
    const err = await rejection(body(), options({ ...over, fetchCertificate }));
    expect(err.code).toBe(code);
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
    const { createSelfSignedCertificate } = await import('../sim/sns/x509.js');
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
