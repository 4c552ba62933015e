// The verifier against the SNS simulator over real loopback HTTP: the default certificate
// download (cache, redirects, size cap, deadline) and SubscribeURL confirmation.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnsSim, type SnsSim } from '../sim/sns/index.js';
import { CertCache, SnsVerificationError, confirmSubscription, downloadCertificate, verifySnsMessage, type VerifySnsOptions } from './sns.js';

let sim: SnsSim;
let topic: string;

beforeAll(async () => {
  sim = await startSnsSim({ region: 'eu-west-1' });
  topic = sim.topicArn('ses-events');
});
afterAll(async () => {
  await sim.close();
});

function options(over: Partial<VerifySnsOptions> = {}): VerifySnsOptions {
  return {
    topicArns: [topic],
    maxMessageAgeMs: 60 * 60 * 1000,
    signingCertHosts: ['^127\\.0\\.0\\.1$'],
    allowHttpCertUrls: true,
    certCache: new CertCache(),
    ...over,
  };
}

async function rejection(p: Promise<unknown>): Promise<SnsVerificationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SnsVerificationError);
  return err as SnsVerificationError;
}

describe('default certificate download', () => {
  it('downloads the certificate from the simulator once for many messages', async () => {
    const before = sim.certFetches();
    const opts = options();
    for (const v of ['1', '2'] as const) {
      for (let i = 0; i < 5; i++) {
        const env = sim.notification(topic, { eventType: 'Delivery', n: i }, { signatureVersion: v, subject: 'Amazon SES Email Event Notification' });
        await expect(verifySnsMessage(JSON.stringify(env), opts)).resolves.toEqual(env);
      }
    }
    const concurrent = Array.from({ length: 10 }, () => verifySnsMessage(sim.notification(topic, 'x'), options()));
    await Promise.all(concurrent);
    // One for the shared cache above, one per fresh cache in the concurrent batch.
    expect(sim.certFetches() - before).toBe(11);
  });

  it('deduplicates concurrent downloads through one cache', async () => {
    const before = sim.certFetches();
    const opts = options();
    await Promise.all(Array.from({ length: 20 }, (_, i) => verifySnsMessage(sim.notification(topic, `m${i}`), opts)));
    expect(sim.certFetches() - before).toBe(1);
  });

  it('refuses a redirect (3xx) even to the real certificate', async () => {
    const env = sim.sign({ ...sim.notification(topic, 'x'), SigningCertURL: sim.faultUrl('redirect') });
    const err = await rejection(verifySnsMessage(env, options()));
    expect(err).toMatchObject({ code: 'cert_unavailable', status: 503, retryable: true });
    expect(err.details?.detail).toMatch(/redirect/);
  });

  it('refuses an oversize certificate, streamed without content-length', async () => {
    const env = sim.sign({ ...sim.notification(topic, 'x'), SigningCertURL: sim.faultUrl('oversize') });
    const err = await rejection(verifySnsMessage(env, options()));
    expect(err.code).toBe('cert_unavailable');
    expect(err.details?.detail).toMatch(/65536-byte limit/);
  });

  it('refuses a certificate whose declared length is over certMaxBytes', async () => {
    const err = await rejection(verifySnsMessage(sim.notification(topic, 'x'), options({ certMaxBytes: 100 })));
    expect(err.code).toBe('cert_unavailable');
    expect(err.details?.detail).toMatch(/100-byte limit/);
  });

  it('honours the timeout', async () => {
    const env = sim.sign({ ...sim.notification(topic, 'x'), SigningCertURL: sim.faultUrl('slow') });
    const started = Date.now();
    const err = await rejection(verifySnsMessage(env, options({ certTimeoutMs: 300 })));
    expect(err.code).toBe('cert_unavailable');
    expect(err.details?.detail).toMatch(/within 300 ms/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('reports a server error or a non-certificate answer as cert_unavailable', async () => {
    for (const kind of ['error500', 'not-pem'] as const) {
      const env = sim.sign({ ...sim.notification(topic, 'x'), SigningCertURL: sim.faultUrl(kind) });
      expect((await rejection(verifySnsMessage(env, options()))).code).toBe('cert_unavailable');
    }
  });

  it('reports a refused connection as cert_unavailable', async () => {
    await expect(downloadCertificate('http://127.0.0.1:1/x.pem', { timeoutMs: 2000 })).rejects.toMatchObject({ code: 'cert_unavailable' });
  });
});

describe('confirmSubscription', () => {
  it('visits the simulator SubscribeURL after verification', async () => {
    const env = await verifySnsMessage(JSON.stringify(sim.subscriptionConfirmation(topic)), options());
    await confirmSubscription(env, options());
    expect(sim.confirmations()).toContain(env.Token);
  });

  it('refuses a SubscribeURL on another host without requesting it', async () => {
    const before = sim.confirmations().length;
    const real = sim.subscriptionConfirmation(topic);
    const moved = sim.sign({ ...real, SubscribeURL: (real.SubscribeURL ?? '').replace('127.0.0.1', 'localhost') });
    const env = await verifySnsMessage(moved, options());
    const err = await rejection(confirmSubscription(env, options()));
    expect(err.code).toBe('subscribe_url_not_allowed');
    expect(err.message).not.toContain(env.Token);
    expect(sim.confirmations()).toHaveLength(before);
  });

  it('refuses a SubscribeURL that redirects', async () => {
    const before = sim.confirmations().length;
    const real = sim.subscriptionConfirmation(topic);
    const redirecting = sim.sign({ ...real, SubscribeURL: sim.faultUrl('redirect', real.SubscribeURL) });
    const env = await verifySnsMessage(redirecting, options());
    expect((await rejection(confirmSubscription(env, options()))).code).toBe('subscribe_url_not_allowed');
    expect(sim.confirmations()).toHaveLength(before);
  });

  it('honours its timeout', async () => {
    const env = sim.sign({ ...sim.subscriptionConfirmation(topic), SubscribeURL: sim.faultUrl('slow') });
    const err = await rejection(confirmSubscription(env, { ...options(), timeoutMs: 300 }));
    expect(err).toMatchObject({ code: 'subscription_confirm_failed', retryable: true, status: 503 });
  });
});
