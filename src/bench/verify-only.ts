// The ingest benchmark's upper bound, run as its own process like the connector:
//   node dist/bench/verify-only.js TOPIC_ARN CERT_HOST_PATTERN
// Same HTTP framework, same body handling, same SNS signature check; stores nothing.
// Prints its URL on the first line of stdout; SIGTERM stops it.
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { verifySnsMessage, CertCache, SnsVerificationError } from '../ses/sns.js';

const [topic, certHost] = process.argv.slice(2);
if (!topic || !certHost) {
  console.error('usage: verify-only TOPIC_ARN CERT_HOST_PATTERN');
  process.exit(2);
}
const opts = { topicArns: [topic], maxMessageAgeMs: 3_600_000, signingCertHosts: [certHost], allowHttpCertUrls: true, certCache: new CertCache() };
const app = Fastify({ logger: false, bodyLimit: 256 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'string' }, (_r, b, done) => done(null, b));
app.post('/webhooks/amazon-ses', async (req, reply) => {
  try {
    await verifySnsMessage(req.body as string, opts);
    return reply.code(200).send({ ok: true, outcome: 'verified' });
  } catch (err) {
    return reply.code(err instanceof SnsVerificationError ? err.status : 500).send({ ok: false });
  }
});
await app.listen({ port: 0, host: '127.0.0.1' });
console.log(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/webhooks/amazon-ses`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
