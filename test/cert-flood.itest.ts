// Forged requests against POST /webhooks/amazon-ses that name a certificate URL the connector
// cannot use (finding 6 of issue 11). Before the fix, every forged request cost one outbound
// fetch (150 requests held up to 82 connections at once) and the answer echoed the network
// error. Judged over real HTTP: the answers, the fetch hook's own count, the log and /metrics.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signEnvelope } from '../src/sim/sns/index.js';
import { downloadCertificate, type SnsEnvelope } from '../src/ses/sns.js';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { inboxTotal, metricValue, startStack, until, type HttpAnswer, type Stack } from './helpers.js';

let stack: Stack;
/** Every URL the connector asked the fetch hook for. */
const fetched: string[] = [];
/** While set, fetches wait for it (to hold them in flight); `active` counts those waiting. */
let gate: Promise<void> | undefined;
const inFlight = { active: 0, max: 0 };

beforeAll(async () => {
  stack = await startStack({
    connector: {
      verify: {
        // The real downloader against the SNS simulator, counted, and held at the gate when one is set.
        fetchCertificate: async (url: string) => {
          fetched.push(url);
          inFlight.active++;
          inFlight.max = Math.max(inFlight.max, inFlight.active);
          try {
            if (gate) await gate;
            return await downloadCertificate(url);
          } finally {
            inFlight.active--;
          }
        },
      },
    },
  });
});

afterAll(async () => {
  await stack?.stop();
});

const forger = generateKeyPairSync('rsa', { modulusLength: 2048 });

/** A notification naming `certUrl`, signed with a key that is not the simulator's. */
function forged(certUrl: string): SnsEnvelope {
  const {
    Signature: _s,
    SigningCertURL: _u,
    SignatureVersion: _v,
    ...unsigned
  } = stack.sns.notification(stack.topic, sesEvent('Delivery', { recipients: ['victim@example.com'] }));
  return signEnvelope(unsigned, forger.privateKey, { certUrl });
}

const post = (env: SnsEnvelope) => stack.post(JSON.stringify(env));

async function certUnavailableCount(): Promise<number> {
  return metricValue((await stack.get('/metrics')).text, 'tajo_ses_webhook_requests_total', { outcome: 'cert_unavailable' });
}

function expectGeneric(res: HttpAnswer): void {
  expect(res.status, res.text).toBe(503);
  expect(res.json?.reason).toBe('cert_unavailable');
  // Nothing of what happened on our side: not the status the certificate host gave, nor its address.
  expect(res.text).not.toMatch(/HTTP 500|internal error|127\.0\.0\.1|ECONN|redirect|fault/i);
}

describe('forged requests naming a failing certificate URL', () => {
  it('150 at once, then 150 one after another, cost one certificate fetch; each is answered 503 cert_unavailable and counted', async () => {
    const url = stack.sns.faultUrl('error500');
    const countBefore = await certUnavailableCount();
    const burst = await Promise.all(Array.from({ length: 150 }, () => post(forged(url))));
    for (const res of burst) expectGeneric(res);
    for (let i = 0; i < 150; i++) expectGeneric(await post(forged(url)));
    expect(fetched.filter((u) => u === url)).toHaveLength(1);
    expect(await certUnavailableCount()).toBe(countBefore + 300);
    expect(await inboxTotal(stack.connector)).toBe(0);
  });

  it('the cause goes to the log, not to the caller', async () => {
    const warn = vi.spyOn(stack.connector.log, 'warn');
    try {
      const url = stack.sns.faultUrl('not-pem');
      const res = await post(forged(url));
      expectGeneric(res);
      const logged = warn.mock.calls.map((c) => c[0] as unknown as Record<string, unknown>).find((o) => o?.reason === 'cert_unavailable');
      expect(logged).toMatchObject({ signingCertUrl: url, detail: expect.stringMatching(/not a PEM/) });
      expect(res.text).not.toMatch(/PEM/);
    } finally {
      warn.mockRestore();
    }
  });

  it('150 at once naming distinct URLs never hold more than 8 fetches; the rest are answered 503 at once', async () => {
    let open: () => void = () => undefined;
    gate = new Promise<void>((r) => (open = r));
    inFlight.max = 0;
    try {
      const answers: HttpAnswer[] = [];
      const all = Promise.all(
        Array.from({ length: 150 }, (_, i) => post(forged(`${stack.sns.url}/forged/SimpleNotificationService-${i}.pem`)).then((r) => answers.push(r))),
      );
      // Those over the cap are answered while the first 8 are still held at the gate.
      await until(() => answers.length === 142, '142 answers before any fetch completes', 5_000, 20);
      expect(inFlight.active).toBe(8);
      for (const res of answers) expectGeneric(res);
      open();
      await all;
      for (const res of answers) expectGeneric(res);
      expect(inFlight.max).toBe(8);
    } finally {
      gate = undefined;
      open();
    }
  });

  it('a genuine message still verifies afterwards (control)', async () => {
    const res = await stack.publish(stack.sns.notification(stack.topic, sesEvent('Delivery', { recipients: ['real@example.com'] })));
    expect(res.status, res.text).toBe(200);
  });
});
