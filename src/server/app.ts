// HTTP surface of `serve` (CONTRACT.md section 3).
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Connector } from '../engine/connector.js';
import { ADMIN_RESPONSE_HEADERS, renderDashboard } from './dashboard.js';
import { failureView } from '../engine/failures.js';
import { adminAccess, pathOnly } from './admin.js';

export const MAX_SNS_BODY = 256 * 1024;

/** What a log line shows of a request: never its query string, which may carry a token. */
function requestForLog(req: FastifyRequest) {
  return { method: req.method, url: pathOnly(req.url), remoteAddress: req.socket?.remoteAddress };
}

export function buildServer(connector: Connector): FastifyInstance {
  const { metrics, log } = connector;
  const limits = connector.config.server;
  const app = Fastify({
    // Fastify's own warnings go to the connector log; one line per request would drown it (SNS bursts).
    loggerInstance: log.child({}, { serializers: { req: requestForLog } }) as FastifyBaseLogger,
    disableRequestLogging: true,
    bodyLimit: MAX_SNS_BODY,
    return503OnClosing: true,
    // A client that stops sending (headers or body) or idles between requests is cut off; Node
    // checks the first two on a timer, once a second here (its default, 30 s, is too coarse).
    requestTimeout: limits.request_timeout,
    keepAliveTimeout: limits.keep_alive_timeout,
    http: {
      headersTimeout: limits.headers_timeout,
      connectionsCheckingInterval: Math.min(1_000, limits.headers_timeout),
    },
  });
  // Connections over the cap are closed as they arrive; held ones are bounded by the timeouts above.
  app.server.maxConnections = limits.max_connections;

  // SNS posts text/plain; anything else is read as text too and judged by its content.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_SNS_BODY }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      if (req.url.startsWith('/webhooks/amazon-ses/eventbridge')) metrics.eventbridgeRequests.inc({ outcome: 'payload_too_large' });
      else if (req.url.startsWith('/webhooks/')) metrics.webhookRequests.inc({ outcome: 'payload_too_large' });
      req.log.warn({ req }, 'request body over 256 KiB refused (SNS messages and EventBridge events are at most 256 KiB)');
      return reply.code(413).send({ ok: false, reason: 'payload_too_large', message: 'body over 256 KiB' });
    }
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ ok: false, reason: err.code ?? 'bad_request', message: err.message });
    req.log.error({ req, err: err.message }, 'request failed');
    return reply.code(500).send({ ok: false, reason: 'internal_error', message: 'see the connector log' });
  });

  app.post('/webhooks/amazon-ses', async (req, reply) => {
    const end = metrics.webhookLatency.startTimer();
    const body = typeof req.body === 'string' ? req.body : '';
    const answer = await connector.webhook.handle(body, req.headers);
    end();
    return reply.code(answer.status).send(answer.body);
  });

  app.post('/webhooks/amazon-ses/eventbridge', async (req, reply) => {
    const body = typeof req.body === 'string' ? req.body : '';
    const answer = await connector.eventbridge.handle(req.headers, body);
    if (answer.headers) reply.headers(answer.headers);
    return reply.code(answer.status).send(answer.body);
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await connector.store.ping();
      // Readiness is the store's (SNS must keep reaching the webhook); Brevo's state is detail.
      return { ok: true, store: connector.store.kind, brevo: connector.brevoSetup.state };
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

  const access = adminAccess(connector.config.server.admin_token);
  const admin = {
    onRequest: access.guard,
    onSend: async (_req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      reply.headers(ADMIN_RESPONSE_HEADERS);
      return payload;
    },
  };

  app.get('/admin/status', admin, async () => connector.status());
  app.get('/admin/failures', admin, async (req) => {
    const q = req.query as { limit?: string; offset?: string };
    const limit = Math.min(500, Math.max(1, Number(q.limit ?? 100) || 100));
    const offset = Math.max(0, Number(q.offset ?? 0) || 0);
    const rows = await connector.store.listFailures({ limit, offset });
    return { failures: rows.map(failureView) };
  });
  app.post('/admin/failures/:id/retry', admin, async (req, reply) => {
    const id = Number((req.params as { id: string }).id);
    if (!Number.isInteger(id) || id <= 0)
      return reply.code(400).send({ ok: false, reason: 'invalid_id', message: 'id must be a positive integer (see GET /admin/failures)' });
    const n = await connector.store.retryFailures([id], Date.now());
    if (n === 0) return reply.code(404).send({ ok: false, reason: 'not_found', message: `no dead letter with id ${id}` });
    connector.wake();
    return { ok: true, retried: n };
  });
  app.get('/ui', { ...admin, onRequest: [access.tokenExchange, access.guard] }, async (_req, reply) => {
    const status = await connector.status();
    const failures = (await connector.store.listFailures({ limit: 50 })).map(failureView);
    return reply.type('text/html; charset=utf-8').send(renderDashboard(status, failures));
  });
  return app;
}
