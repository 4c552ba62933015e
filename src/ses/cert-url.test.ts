// What a forged request can make the verifier do on the network (finding 6 of issue 11).
// Anyone can POST an envelope naming any SigningCertURL; before its signature can be checked
// the certificate must be fetched. So the URL is held to the shape real SNS uses, a failed
// fetch is remembered for a while, fetches in flight are capped, and the caller is told
// nothing about what went wrong on our side. Every test counts fetches with the
// fetchCertificate hook (the one `serve` tests pass as `verify.fetchCertificate`).
import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { loadSigningMaterial, signEnvelope, type SigningMaterial, type UnsignedSnsEnvelope } from '../sim/sns/signer.js';
import { CertCache, SnsVerificationError, confirmSubscription, verifySnsMessage, type SnsEnvelope, type SnsRejectCode, type VerifySnsOptions } from './sns.js';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';
const HOST = 'sns.us-east-1.amazonaws.com';
const CERT_URL = `https://${HOST}/SimpleNotificationService-0123456789abcdef.pem`;
const NOW = Date.parse('2024-05-01T12:00:00.000Z');
const LOOPBACK = '^127\\.0\\.0\\.1$';

let material: SigningMaterial;
let forger: ReturnType<typeof generateKeyPairSync>;
beforeAll(async () => {
  material = await loadSigningMaterial();
  forger = generateKeyPairSync('rsa', { modulusLength: 1024 });
});

function options(over: Partial<VerifySnsOptions> = {}): VerifySnsOptions {
  return {
    topicArns: [TOPIC],
    maxMessageAgeMs: 3_600_000,
    now: () => NOW,
    certCache: new CertCache(),
    fetchCertificate: () => Promise.resolve(material.certPem),
    ...over,
  };
}

function unsigned(i = 0): UnsignedSnsEnvelope {
  return { Type: 'Notification', MessageId: `m-${i}`, TopicArn: TOPIC, Message: '{"eventType":"Send"}', Timestamp: new Date(NOW - 1000).toISOString() };
}

/** Signed by the key whose certificate fetchCertificate returns: verifies when the URL is accepted. */
function genuine(certUrl: string, i = 0): SnsEnvelope {
  return signEnvelope(unsigned(i), material.privateKey, { certUrl });
}

/** What an attacker can send: any URL, signed with a key of their own. */
function forged(certUrl: string, i = 0): SnsEnvelope {
  return signEnvelope(unsigned(i), forger.privateKey, { certUrl });
}

async function refusal(p: Promise<unknown>): Promise<SnsVerificationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a refusal').toBeInstanceOf(SnsVerificationError);
  return err as SnsVerificationError;
}

/** A fetcher whose calls stay pending until release(); counts how many run at once. */
function gatedFetcher(result: () => Promise<string>) {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  const stats = { calls: 0, active: 0, maxActive: 0 };
  const fetch = vi.fn(async (_url: string) => {
    stats.calls++;
    stats.active++;
    stats.maxActive = Math.max(stats.maxActive, stats.active);
    try {
      await gate;
      return await result();
    } finally {
      stats.active--;
    }
  });
  return { fetch, stats, release: () => open() };
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe('SigningCertURL shape', () => {
  const refused: Array<[string, string, SnsRejectCode, RegExp, Partial<VerifySnsOptions>?]> = [
    ['a non-default port', `https://${HOST}:8443/SimpleNotificationService-x.pem`, 'cert_url_invalid', /port 8443/],
    ['port 80 on https', `https://${HOST}:80/SimpleNotificationService-x.pem`, 'cert_url_invalid', /port 80\b/],
    ['a query', `${CERT_URL}?x=1`, 'cert_url_invalid', /query/],
    ['an empty query', `${CERT_URL}?`, 'cert_url_invalid', /query/],
    ['a fragment', `${CERT_URL}#x`, 'cert_url_invalid', /fragment/],
    ['an empty fragment', `${CERT_URL}#`, 'cert_url_invalid', /fragment/],
    ['a user name', `https://user@${HOST}/SimpleNotificationService-x.pem`, 'cert_url_invalid', /credentials/],
    ['a user and password', `https://user:pw@${HOST}/SimpleNotificationService-x.pem`, 'cert_url_invalid', /credentials/],
    ['a path not ending in .pem', `https://${HOST}/SimpleNotificationService-x.pem/more`, 'cert_url_invalid', /\.pem/],
    ['.pem only in the query', `https://${HOST}/cert?x.pem`, 'cert_url_invalid', /query/],
    ['http', `http://${HOST}/SimpleNotificationService-x.pem`, 'cert_url_not_https', /https/],
    ['http on port 443', `http://${HOST}:443/SimpleNotificationService-x.pem`, 'cert_url_not_https', /https/],
    ['an unparsable URL', 'https://[not-a-host/x.pem', 'cert_url_invalid', /not a valid absolute URL/],
    // allow_http_cert_urls (tests) admits http and any port, nothing else:
    [
      'a query, with the test relaxation',
      'http://127.0.0.1:9/x.pem?x=1',
      'cert_url_invalid',
      /query/,
      { signingCertHosts: [LOOPBACK], allowHttpCertUrls: true },
    ],
    [
      'a fragment, with the test relaxation',
      'http://127.0.0.1:9/x.pem#x',
      'cert_url_invalid',
      /fragment/,
      { signingCertHosts: [LOOPBACK], allowHttpCertUrls: true },
    ],
    ['a port, on http without the relaxation', 'http://127.0.0.1:9/x.pem', 'cert_url_not_https', /https/, { signingCertHosts: [LOOPBACK] }],
    ['a port, on https without the relaxation', 'https://127.0.0.1:9/x.pem', 'cert_url_invalid', /port 9\b/, { signingCertHosts: [LOOPBACK] }],
  ];

  it.each(refused)('refuses %s (%s) with %s, before any fetch', async (_name, url, code, message, over) => {
    const fetchCertificate = vi.fn(() => Promise.resolve(material.certPem));
    const err = await refusal(verifySnsMessage(genuine(url), options({ fetchCertificate, ...over })));
    expect(err.code).toBe(code);
    expect(err.status).toBe(403);
    expect(err.message).toMatch(message);
    expect(fetchCertificate).not.toHaveBeenCalled();
  });

  const accepted: Array<[string, string, Partial<VerifySnsOptions>?]> = [
    ['the real shape', CERT_URL],
    ['an explicit :443', `https://${HOST}:443/SimpleNotificationService-0123456789abcdef.pem`],
    [
      'http on a loopback port, with the test relaxation',
      'http://127.0.0.1:41234/SimpleNotificationService-x.pem',
      { signingCertHosts: [LOOPBACK], allowHttpCertUrls: true },
    ],
    [
      'https on a loopback port, with the test relaxation',
      'https://127.0.0.1:8443/SimpleNotificationService-x.pem',
      { signingCertHosts: [LOOPBACK], allowHttpCertUrls: true },
    ],
  ];

  it.each(accepted)('accepts %s (%s)', async (_name, url, over) => {
    const fetchCertificate = vi.fn((_u: string) => Promise.resolve(material.certPem));
    await expect(verifySnsMessage(genuine(url), options({ fetchCertificate, ...over }))).resolves.toMatchObject({ MessageId: 'm-0' });
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
    // What is fetched (and cached) is the normalized URL: no default port, nothing after the path.
    expect(fetchCertificate.mock.calls[0]?.[0]).toBe(new URL(url).href);
  });
});

describe('SubscribeURL shape', () => {
  const TOKEN = 'ab'.repeat(64);
  function confirmationWith(subscribeUrl: string): SnsEnvelope {
    return signEnvelope(
      {
        Type: 'SubscriptionConfirmation',
        MessageId: 'c-1',
        Token: TOKEN,
        TopicArn: TOPIC,
        Message: 'confirm',
        SubscribeURL: subscribeUrl,
        Timestamp: new Date(NOW - 1000).toISOString(),
      },
      material.privateKey,
      { certUrl: CERT_URL },
    );
  }
  const ok = () => vi.fn((_url: string | URL | Request, _init?: RequestInit) => Promise.resolve(new Response('<ConfirmSubscriptionResponse/>')));
  const query = `Action=ConfirmSubscription&TopicArn=${encodeURIComponent(TOPIC)}&Token=${TOKEN}`;

  it.each([
    ['a non-default port', `https://${HOST}:8443/?${query}`, /port 8443/],
    ['a fragment', `https://${HOST}/?${query}#x`, /fragment/],
  ])('refuses %s', async (_name, url, message) => {
    const fetchImpl = ok();
    const err = await refusal(confirmSubscription(confirmationWith(url), { ...options(), fetchImpl }));
    expect(err.code).toBe('subscribe_url_not_allowed');
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(TOKEN);
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it('visits one with its query and an explicit :443 (control)', async () => {
    const fetchImpl = ok();
    await confirmSubscription(confirmationWith(`https://${HOST}:443/?${query}`), { ...options(), fetchImpl });
    expect(fetchImpl).toHaveBeenCalledTimes(1);
  });

  it('visits a loopback port with the test relaxation (the SNS simulator)', async () => {
    const fetchImpl = ok();
    await confirmSubscription(confirmationWith(`http://127.0.0.1:41234/confirm?${query}`), {
      ...options({ signingCertHosts: [LOOPBACK], allowHttpCertUrls: true }),
      fetchImpl,
    });
    expect(fetchImpl).toHaveBeenCalledTimes(1);
  });
});

describe('failed certificate fetches', () => {
  const BAD_URL = `https://${HOST}/SimpleNotificationService-doesnotexist.pem`;
  const NETWORK_TEXT = 'connect ECONNREFUSED 10.20.30.40:443 (internal-proxy.corp.example)';

  it('150 concurrent forged requests for one failing URL cause one fetch', async () => {
    const fetchCertificate = vi.fn(async (_url: string) => {
      await settle();
      throw new Error(NETWORK_TEXT);
    });
    const opts = options({ fetchCertificate });
    const errors = await Promise.all(Array.from({ length: 150 }, (_, i) => refusal(verifySnsMessage(forged(BAD_URL, i), opts))));
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
    for (const err of errors) expect(err).toMatchObject({ code: 'cert_unavailable', status: 503, retryable: true });
  });

  it('150 forged requests one after another within the failure period cause one fetch; the next period one more', async () => {
    let t = 0;
    const fetchCertificate = vi.fn(() => Promise.reject(new Error(NETWORK_TEXT)));
    const opts = options({ fetchCertificate, certCache: new CertCache({ now: () => t, failureTtlMs: 30_000 }) });
    for (let i = 0; i < 150; i++) {
      t = i * 200; // 150 requests over 29.8 s
      expect((await refusal(verifySnsMessage(forged(BAD_URL, i), opts))).code).toBe('cert_unavailable');
    }
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
    t = 30_001;
    await refusal(verifySnsMessage(forged(BAD_URL), opts));
    expect(fetchCertificate).toHaveBeenCalledTimes(2);
  });

  it('a genuine certificate is fetched again once the failure period is over', async () => {
    let t = 0;
    const fetchCertificate = vi.fn().mockRejectedValueOnce(new Error(NETWORK_TEXT)).mockResolvedValue(material.certPem);
    const opts = options({ fetchCertificate, certCache: new CertCache({ now: () => t, failureTtlMs: 30_000 }) });
    expect((await refusal(verifySnsMessage(genuine(CERT_URL), opts))).code).toBe('cert_unavailable');
    t = 29_999;
    expect((await refusal(verifySnsMessage(genuine(CERT_URL), opts))).code).toBe('cert_unavailable');
    t = 30_000;
    await expect(verifySnsMessage(genuine(CERT_URL), opts)).resolves.toMatchObject({ MessageId: 'm-0' });
    expect(fetchCertificate).toHaveBeenCalledTimes(2);
  });

  it('an answer that is not a certificate is remembered like a network failure', async () => {
    const fetchCertificate = vi.fn(() => Promise.resolve('<html>captive portal</html>'));
    const opts = options({ fetchCertificate });
    for (let i = 0; i < 10; i++) expect((await refusal(verifySnsMessage(forged(BAD_URL, i), opts))).code).toBe('cert_unavailable');
    expect(fetchCertificate).toHaveBeenCalledTimes(1);
  });

  it('remembered failures are bounded: the oldest is forgotten first', async () => {
    const cache = new CertCache({ maxFailures: 2 });
    const fetcher = vi.fn(() => Promise.reject(new Error('down')));
    for (const url of ['a', 'b', 'c']) await cache.get(url, fetcher).catch(() => undefined);
    expect(fetcher).toHaveBeenCalledTimes(3);
    await cache.get('c', fetcher).catch(() => undefined);
    await cache.get('b', fetcher).catch(() => undefined);
    expect(fetcher).toHaveBeenCalledTimes(3);
    await cache.get('a', fetcher).catch(() => undefined);
    expect(fetcher).toHaveBeenCalledTimes(4);
  });

  it('the caller is told nothing of the cause; the log detail has it', async () => {
    const causes: Array<[string, () => Promise<string>]> = [
      ['a network error', () => Promise.reject(new Error(NETWORK_TEXT))],
      ['a non-Error rejection', () => Promise.reject(NETWORK_TEXT)],
      ['a non-PEM answer', () => Promise.resolve(`<html>${NETWORK_TEXT}</html>`)],
      ['a garbled PEM', () => Promise.resolve('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')],
    ];
    const messages = new Set<string>();
    for (const [name, fetchCertificate] of causes) {
      const err = await refusal(verifySnsMessage(forged(BAD_URL), options({ fetchCertificate })));
      expect(err.code, name).toBe('cert_unavailable');
      expect(err.message, name).not.toMatch(/ECONNREFUSED|10\.20\.30\.40|internal-proxy|html|PEM|X\.509/);
      expect(err.message, name).not.toContain(BAD_URL);
      expect(typeof err.details?.detail, name).toBe('string');
      messages.add(err.message);
    }
    // One text whatever happened: the answer does not even tell the causes apart.
    expect(messages.size).toBe(1);
    const err = await refusal(verifySnsMessage(forged(BAD_URL), options({ fetchCertificate: () => Promise.reject(new Error(NETWORK_TEXT)) })));
    expect(err.details).toMatchObject({ detail: NETWORK_TEXT, signingCertUrl: BAD_URL });
  });
});

describe('concurrent certificate fetches', () => {
  const url = (i: number) => `https://${HOST}/SimpleNotificationService-forged${i}.pem`;

  it('150 forged requests naming distinct URLs never run more than 8 fetches at once; the rest are 503 cert_unavailable', async () => {
    const gated = gatedFetcher(() => Promise.reject(new Error('404')));
    const opts = options({ fetchCertificate: gated.fetch });
    const all = Promise.all(Array.from({ length: 150 }, (_, i) => refusal(verifySnsMessage(forged(url(i), i), opts))));
    await settle();
    expect(gated.stats.active).toBe(8);
    gated.release();
    const errors = await all;
    expect(gated.stats.maxActive).toBe(8);
    expect(gated.stats.calls).toBe(8);
    for (const err of errors) expect(err).toMatchObject({ code: 'cert_unavailable', status: 503, retryable: true });
    // The ones turned away never reached the fetcher; their log detail says why.
    expect(errors.filter((e) => /in flight/.test(String(e.details?.detail)))).toHaveLength(142);
  });

  it('the cap is an option', async () => {
    const gated = gatedFetcher(() => Promise.reject(new Error('404')));
    const opts = options({ fetchCertificate: gated.fetch, certCache: new CertCache({ maxConcurrentFetches: 2 }) });
    const all = Promise.all(Array.from({ length: 10 }, (_, i) => refusal(verifySnsMessage(forged(url(i), i), opts))));
    await settle();
    gated.release();
    await all;
    expect(gated.stats.maxActive).toBe(2);
    expect(() => new CertCache({ maxConcurrentFetches: 0 })).toThrow(TypeError);
  });

  it('a URL turned away by the cap is not remembered as failed: it is fetched once the burst is over', async () => {
    const gated = gatedFetcher(() => Promise.reject(new Error('404')));
    const cache = new CertCache({ maxConcurrentFetches: 1 });
    const opts = options({ fetchCertificate: gated.fetch, certCache: cache });
    const first = refusal(verifySnsMessage(forged(url(1)), opts));
    const turnedAway = await refusal(verifySnsMessage(genuine(CERT_URL), opts));
    expect(turnedAway.details?.detail).toMatch(/in flight/);
    gated.release();
    await first;
    expect(cache.inFlight).toBe(0);
    await expect(verifySnsMessage(genuine(CERT_URL), options({ certCache: cache }))).resolves.toMatchObject({ MessageId: 'm-0' });
    // Without the cap the second request waits on the gate: fail fast instead of at the default timeout.
  }, 2_000);

  it('a cached certificate still verifies while the cap is reached, and requests for a URL in flight join its fetch', async () => {
    const cache = new CertCache({ maxConcurrentFetches: 2 });
    await verifySnsMessage(genuine(CERT_URL), options({ certCache: cache }));
    const gated = gatedFetcher(() => Promise.reject(new Error('404')));
    const opts = options({ fetchCertificate: gated.fetch, certCache: cache });
    const slow = Promise.all([1, 1, 1, 2, 2].map((i) => refusal(verifySnsMessage(forged(url(i)), opts))));
    await settle();
    expect(gated.stats.calls).toBe(2);
    await expect(verifySnsMessage(genuine(CERT_URL, 7), opts)).resolves.toMatchObject({ MessageId: 'm-7' });
    gated.release();
    expect((await slow).map((e) => e.code)).toEqual(Array(5).fill('cert_unavailable'));
  });
});
