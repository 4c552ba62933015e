// HTTP surface of `serve` (CONTRACT.md section 3).
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Connector } from '../engine/connector.js';
import { ADMIN_RESPONSE_HEADERS, dashboardSections, renderDashboard, renderFailure, type DashboardData } from './dashboard.js';
import { failureView, refusedView } from '../engine/failures.js';
import { adminAccess, pathOnly } from './admin.js';
import { errorMessage } from '../core/errors.js';
import { Timeline } from './timeline.js';
import { UI_SCRIPT, UI_SCRIPT_PATH } from './ui-script.js';
import type { Store } from '../store/port.js';

/** Dead letters the dashboard reads at once (grouped by code, searched by email). */
const DASHBOARD_FAILURES = 1000;

/** The dead letters an action names: one id (a positive integer), or 400. */
function idParam(req: FastifyRequest, reply: FastifyReply): number | undefined {
  const id = Number((req.params as { id: string }).id);
  if (Number.isInteger(id) && id > 0) return id;
  void reply.code(400).send({ ok: false, reason: 'invalid_id', message: 'id must be a positive integer (see GET /admin/failures)' });
  return undefined;
}

/** A JSON body as an object ({} when empty); undefined when it is not one. */
function jsonBody(req: FastifyRequest): Record<string, unknown> | undefined {
  const raw = typeof req.body === 'string' ? req.body.trim() : '';
  if (!raw) return {};
  try {
    const v = JSON.parse(raw) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Ids of the dead letters whose last code is `code` (null: those without one). */
async function deadLetterIdsWithCode(store: Store, code: string | null): Promise<number[]> {
  return (await store.listFailures({ limit: 100_000 })).filter((r) => r.lastCode === code).map((r) => r.id);
}

export const MAX_SNS_BODY = 256 * 1024;

/** What /readyz answers while the store is down, whatever the cause. */
export const READYZ_STORE_DOWN = 'the store does not answer; see the connector log';

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
      // The cause can name an internal address or a database user: logged, not answered (SECURITY.md).
      log.warn({ err: errorMessage(err) }, 'readiness: the store does not answer');
      return reply.code(503).send({ ok: false, reason: 'store_unavailable', message: READYZ_STORE_DOWN });
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

  // The dashboard's charts, sampled while the server runs.
  const timeline = new Timeline({
    metricsText: () => connector.metricsText(),
    lagSeconds: async () => (await connector.status()).lag.reduce((a, l) => Math.max(a, l.seconds), 0),
  });
  app.addHook('onReady', async () => timeline.start());
  app.addHook('onClose', async () => timeline.stop());

  async function dashboardData(email: string): Promise<DashboardData> {
    const status = await connector.status();
    const rows = (await connector.store.listFailures({ limit: DASHBOARD_FAILURES })).map(failureView);
    const counts = new Map<string | null, number>();
    for (const f of rows) counts.set(f.error.code, (counts.get(f.error.code) ?? 0) + 1);
    const needle = email.toLowerCase();
    const webhooks: Record<string, number> = {};
    for (const v of (await metrics.webhookRequests.get()).values) webhooks[String(v.labels.outcome)] = v.value;
    return {
      status,
      failures: needle ? rows.filter((f) => f.email.includes(needle)) : rows,
      byCode: [...counts].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count),
      timeline: timeline.series(),
      webhooks,
      email,
    };
  }
  const emailQuery = (req: FastifyRequest) => String((req.query as { email?: unknown }).email ?? '').slice(0, 320);

  app.get('/admin/status', admin, async () => connector.status());
  app.get('/admin/dashboard', admin, async (req) => {
    const data = await dashboardData(emailQuery(req));
    return { at: data.status.at, sections: dashboardSections(data), timeline: data.timeline, deadLetters: data.status.deadLetters };
  });
  app.get(UI_SCRIPT_PATH, admin, async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(UI_SCRIPT));
  app.get('/admin/failures/:id', admin, async (req, reply) => {
    const id = idParam(req, reply);
    if (id === undefined) return reply;
    const row = await connector.store.getOp(id);
    if (!row) return reply.code(404).send({ ok: false, reason: 'not_found', message: `no operation with id ${id}` });
    return failureView(row);
  });
  app.get('/ui/failures/:id', admin, async (req, reply) => {
    const id = idParam(req, reply);
    if (id === undefined) return reply;
    const row = await connector.store.getOp(id);
    if (!row) return reply.code(404).type('text/plain; charset=utf-8').send(`no operation with id ${id}`);
    return reply.type('text/html; charset=utf-8').send(renderFailure(failureView(row)));
  });
  app.post('/admin/failures/:id/discard', admin, async (req, reply) => {
    const id = idParam(req, reply);
    if (id === undefined) return reply;
    const n = await connector.store.discardFailures([id], Date.now());
    if (n === 0) return reply.code(404).send({ ok: false, reason: 'not_found', message: `no dead letter with id ${id}` });
    return { ok: true, discarded: n };
  });
  app.post('/admin/failures/retry', admin, async (req, reply) => {
    const body = jsonBody(req);
    const code = body?.code;
    if (body === undefined || !(typeof code === 'string' || code === null))
      return reply.code(400).send({ ok: false, reason: 'invalid_body', message: 'send {"code": "<Brevo error code>"} (null: dead letters without a code)' });
    const ids = await deadLetterIdsWithCode(connector.store, code);
    const n = ids.length ? await connector.store.retryFailures(ids, Date.now()) : 0;
    if (n > 0) connector.wake();
    return { ok: true, retried: n };
  });
  app.get('/admin/failures', admin, async (req) => {
    const q = req.query as { limit?: string; offset?: string };
    const limit = Math.min(500, Math.max(1, Number(q.limit ?? 100) || 100));
    const offset = Math.max(0, Number(q.offset ?? 0) || 0);
    const rows = await connector.store.listFailures({ limit, offset });
    // Poison messages an intake refused (by their own offset: two lists, one page size).
    const refused = await connector.store.listRefusedMessages({ limit, offset });
    return { failures: rows.map(failureView), refused: refused.map(refusedView) };
  });
  app.post('/admin/failures/:id/retry', admin, async (req, reply) => {
    const id = idParam(req, reply);
    if (id === undefined) return reply;
    const n = await connector.store.retryFailures([id], Date.now());
    if (n === 0) return reply.code(404).send({ ok: false, reason: 'not_found', message: `no dead letter with id ${id}` });
    connector.wake();
    return { ok: true, retried: n };
  });
  app.get('/ui', { ...admin, onRequest: [access.tokenExchange, access.guard] }, async (req, reply) => {
    return reply.type('text/html; charset=utf-8').send(renderDashboard(await dashboardData(emailQuery(req))));
  });
  return app;
}
