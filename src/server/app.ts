// HTTP surface of `serve` (CONTRACT.md section 3).
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import type { Connector } from '../engine/connector.js';
import { renderDashboard } from './dashboard.js';
import { failureView } from '../engine/failures.js';

export const MAX_SNS_BODY = 256 * 1024;

function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function buildServer(connector: Connector): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: MAX_SNS_BODY, keepAliveTimeout: 65_000, return503OnClosing: true });
  const { metrics, log } = connector;
  const adminToken = connector.config.server.admin_token;

  // SNS posts text/plain; anything else is read as text too and judged by its content.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_SNS_BODY }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      if (req.url.startsWith('/webhooks/')) metrics.webhookRequests.inc({ outcome: 'payload_too_large' });
      log.warn({ url: req.url }, 'request body over 256 KiB refused (SNS messages are at most 256 KiB)');
      return reply.code(413).send({ ok: false, reason: 'payload_too_large', message: 'body over 256 KiB' });
    }
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ ok: false, reason: err.code ?? 'bad_request', message: err.message });
    log.error({ err: err.message, url: req.url }, 'request failed');
    return reply.code(500).send({ ok: false, reason: 'internal_error', message: 'see the connector log' });
  });

  app.post('/webhooks/amazon-ses', async (req, reply) => {
    const end = metrics.webhookLatency.startTimer();
    const body = typeof req.body === 'string' ? req.body : '';
    const answer = await connector.webhook.handle(body);
    end();
    return reply.code(answer.status).send(answer.body);
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await connector.store.ping();
      return { ok: true, store: connector.store.kind };
    } catch (err) {
      return reply.code(503).send({ ok: false, reason: 'store_unavailable', message: (err as Error).message });
    }
  });
  app.get('/metrics', async (_req, reply) => {
    try {
      await connector.status(); // refreshes queue gauges
    } catch {
      // The counters still tell the story of an outage while the store is down.
    }
    return reply.type(metrics.registry.contentType).send(await connector.metricsText());
  });

  const guard = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!adminToken) {
      if (!isLoopback(req.socket.remoteAddress)) {
        return reply.code(403).send({
          ok: false,
          reason: 'admin_loopback_only',
          message: 'server.admin_token is not set: /admin and /ui answer loopback clients only; set TAJO_ADMIN_TOKEN to open them',
        });
      }
      return;
    }
    const header = req.headers.authorization ?? '';
    const query = (req.query as { token?: unknown } | undefined)?.token;
    const given = header.startsWith('Bearer ') ? header.slice(7) : typeof query === 'string' ? query : '';
    if (!tokenMatches(given, adminToken)) {
      return reply.code(401).send({ ok: false, reason: 'unauthorized', message: 'send Authorization: Bearer <server.admin_token>' });
    }
  };

  app.get('/admin/status', { preHandler: guard }, async () => connector.status());
  app.get('/admin/failures', { preHandler: guard }, async (req) => {
    const q = req.query as { limit?: string; offset?: string };
    const limit = Math.min(500, Math.max(1, Number(q.limit ?? 100) || 100));
    const offset = Math.max(0, Number(q.offset ?? 0) || 0);
    const rows = await connector.store.listFailures({ limit, offset });
    return { failures: rows.map(failureView) };
  });
  app.post('/admin/failures/:id/retry', { preHandler: guard }, async (req, reply) => {
    const id = Number((req.params as { id: string }).id);
    if (!Number.isInteger(id) || id <= 0)
      return reply.code(400).send({ ok: false, reason: 'invalid_id', message: 'id must be a positive integer (see GET /admin/failures)' });
    const n = await connector.store.retryFailures([id], Date.now());
    if (n === 0) return reply.code(404).send({ ok: false, reason: 'not_found', message: `no dead letter with id ${id}` });
    connector.wake();
    return { ok: true, retried: n };
  });
  app.get('/ui', { preHandler: guard }, async (req, reply) => {
    const status = await connector.status();
    const failures = (await connector.store.listFailures({ limit: 50 })).map(failureView);
    const token = (req.query as { token?: string }).token;
    return reply.type('text/html; charset=utf-8').send(renderDashboard(status, failures, token));
  });
  return app;
}
