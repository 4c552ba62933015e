import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertCache, verifySnsMessage } from '../../ses/sns.js';
import { startSnsSim, type SnsSim } from './index.js';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

let sim: SnsSim;
let endpoint: http.Server;
let endpointUrl: string;
const received: Received[] = [];

beforeAll(async () => {
  sim = await startSnsSim();
  const topicArns = [sim.topicArn('t')];
  const certCache = new CertCache();
  // A minimal webhook: verify, answer 200 or the error's status.
  endpoint = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ headers: req.headers, body });
      verifySnsMessage(body, { topicArns, maxMessageAgeMs: 60_000, signingCertHosts: ['^127\\.0\\.0\\.1$'], allowHttpCertUrls: true, certCache }).then(
        () => res.writeHead(200).end('ok'),
        (err: { status?: number; code?: string }) => res.writeHead(err.status ?? 500).end(err.code ?? 'error'),
      );
    });
  });
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
  endpointUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/webhooks/amazon-ses`;
});

afterAll(async () => {
  await new Promise<void>((r) => endpoint.close(() => r()));
  await sim.close();
});

describe('SNS simulator', () => {
  it('posts like SNS and its messages verify', async () => {
    const env = sim.notification(sim.topicArn('t'), { eventType: 'Send' });
    const agent = new http.Agent({ keepAlive: true });
    const res = await sim.publish(endpointUrl, env, { keepAliveAgent: agent });
    agent.destroy();
    expect(res).toEqual({ status: 200, body: 'ok' });
    const got = received.at(-1);
    expect(got?.headers['content-type']).toBe('text/plain; charset=UTF-8');
    expect(got?.headers['x-amz-sns-message-type']).toBe('Notification');
    expect(got?.headers['x-amz-sns-message-id']).toBe(env.MessageId);
    expect(got?.headers['x-amz-sns-topic-arn']).toBe(env.TopicArn);
    expect(JSON.parse(got?.body ?? '{}')).toEqual(env);
  });

  it('serves its certificate under an SNS-like name and counts downloads', async () => {
    expect(sim.certUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/SimpleNotificationService-[0-9a-f]{32}\.pem$/);
    const before = sim.certFetches();
    const res = await fetch(sim.certUrl);
    expect(await res.text()).toBe(sim.certPem);
    expect(sim.certFetches()).toBe(before + 1);
  });

  it('a refused message gets the verifier status', async () => {
    const env = sim.notification('arn:aws:sns:us-east-1:123456789012:unknown', 'x');
    expect(await sim.publish(endpointUrl, env)).toEqual({ status: 403, body: 'topic_not_allowed' });
  });

  it('records only tokens it issued', async () => {
    const env = sim.subscriptionConfirmation(sim.topicArn('t'), { token: 'abc123' });
    expect((await fetch(env.SubscribeURL ?? '')).status).toBe(200);
    expect((await fetch(`${sim.url}/confirm?Token=forged`)).status).toBe(404);
    expect(sim.confirmations()).toEqual(['abc123']);
  });

  it('close() does not wait for hung connections', async () => {
    const other = await startSnsSim();
    const hung = fetch(other.faultUrl('slow')).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 50));
    await other.close();
    expect(await hung).toBe('aborted');
  });
});
