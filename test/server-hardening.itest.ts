// Hardening of the HTTP surface (issue 11, findings 1 to 5): timeouts and a connection cap,
// the loopback-only admin mode behind proxies and against cross-site requests, the admin token
// kept out of URLs and logs, security headers on the dashboard, and bounded metric labels.
// Real sockets against the real server (buildServer over a connector on SQLite in a temp dir).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { createConnector, type Connector } from '../src/engine/connector.js';
import { buildServer } from '../src/server/app.js';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { metricValue, startStack, until } from './helpers.js';

const TOKEN = 'hardening-admin-token-5f0c2a9e71';

interface Server {
  app: FastifyInstance;
  connector: Connector;
  port: number;
  dir: string;
  /** Everything the connector logged, one JSON line each. */
  logs(): string;
  stop(): Promise<void>;
}

/** buildServer over a migrated store; the workers are not started (nothing here needs Brevo). */
async function startServer(opts: { server?: Record<string, unknown>; adminToken?: string } = {}): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'tajo-hardening-'));
  const lines: string[] = [];
  const config = parseConfig(
    {
      connectors: { 'amazon-ses': { region: 'us-east-1' } },
      brevo: { api_key: 'unused', base_url: 'http://127.0.0.1:9/v3' },
      store: { url: `sqlite:${join(dir, 'amazon-ses.db')}` },
      server: { port: 0, host: '127.0.0.1', ...(opts.adminToken !== undefined ? { admin_token: opts.adminToken } : {}), ...opts.server },
    },
    { env: {} },
  );
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  const connector = await createConnector(config, { logger });
  await connector.store.migrate();
  const app = buildServer(connector);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    connector,
    port: (app.server.address() as AddressInfo).port,
    dir,
    logs: () => lines.join(''),
    async stop() {
      await app.close();
      await connector.stop(1_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: Record<string, unknown> | undefined;
}

/** One request on its own connection; unlike fetch, it may set Host. */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface OpenSocket {
  socket: net.Socket;
  /** Bytes the server sent. */
  received(): string;
  /** Resolves true when the server closes the connection within `ms`, false otherwise. */
  closedWithin(ms: number): Promise<boolean>;
  isClosed(): boolean;
}

async function connect(port: number): Promise<OpenSocket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let data = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
  // A refused or reset connection is what some tests expect: it must not fail the run.
  socket.on('error', () => undefined);
  const closedP = new Promise<void>((r) => socket.once('close', () => ((closed = true), r())));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('close', () => reject(new Error('closed before connecting')));
  });
  return {
    socket,
    received: () => data,
    isClosed: () => closed,
    closedWithin: (ms) => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([closedP.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() => clearTimeout(timer));
    },
  };
}

/** Slack on top of a configured timeout: Node checks request and header timeouts once a second. */
const CHECK_SLACK_MS = 3_000;

describe('finding 1: timeouts and a connection cap', () => {
  let srv: Server;
  beforeAll(async () => {
    srv = await startServer({ server: { request_timeout: '1500ms', headers_timeout: '1s', keep_alive_timeout: '1s' } });
  });
  afterAll(async () => {
    await srv?.stop();
  });

  it('closes a connection whose body stops arriving, within server.request_timeout', async () => {
    const c = await connect(srv.port);
    c.socket.write('POST /webhooks/amazon-ses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 100000\r\n\r\n{');
    const closed = await c.closedWithin(1_500 + CHECK_SLACK_MS);
    c.socket.destroy();
    expect(closed, 'the server still holds a connection that sent 1 of 100000 bytes').toBe(true);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection whose headers never end, within server.headers_timeout', async () => {
    // The request timeout alone would close it too, later: here only the header timeout is short.
    const slowHeaders = await startServer({ server: { request_timeout: '30s', headers_timeout: '1s' } });
    try {
      const c = await connect(slowHeaders.port);
      c.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      const closed = await c.closedWithin(1_000 + CHECK_SLACK_MS);
      c.socket.destroy();
      expect(closed, 'the server still holds a connection with unfinished headers').toBe(true);
    } finally {
      await slowHeaders.stop();
    }
  });

  it('closes an idle keep-alive connection after server.keep_alive_timeout', async () => {
    const c = await connect(srv.port);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
    await until(() => c.received().includes('{"ok":true}'), 'the /healthz answer', 5_000);
    const closed = await c.closedWithin(1_000 + CHECK_SLACK_MS);
    c.socket.destroy();
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(closed, 'the idle keep-alive connection is still open').toBe(true);
  });

  it('accepts at most server.max_connections connections at once', async () => {
    const capped = await startServer({ server: { max_connections: 3 } });
    const held: OpenSocket[] = [];
    const extra: OpenSocket[] = [];
    try {
      for (let i = 0; i < 3; i++) held.push(await connect(capped.port));
      await until(
        () => new Promise<boolean>((r) => capped.app.server.getConnections((_e, n) => r(n === 3))),
        'the server to count the 3 held connections',
        5_000,
      );
      for (let i = 0; i < 2; i++) extra.push(await connect(capped.port).catch(() => undefined as unknown as OpenSocket));
      for (const [i, c] of extra.entries()) {
        if (c === undefined) continue; // refused before it connected: that is a refusal too
        expect(await c.closedWithin(3_000), `connection ${i + 4} over the cap of 3 is still open`).toBe(true);
      }
      expect(held.map((c) => c.isClosed())).toEqual([false, false, false]);
      // A freed slot is usable again.
      held.pop()!.socket.destroy();
      await until(() => new Promise<boolean>((r) => capped.app.server.getConnections((_e, n) => r(n === 2))), 'the server to count the freed slot', 5_000);
      expect((await send(capped.port, 'GET', '/healthz')).status).toBe(200);
    } finally {
      for (const c of [...held, ...extra]) c?.socket.destroy();
      await capped.stop();
    }
  });
});

describe('finding 2: loopback-only admin mode (no server.admin_token)', () => {
  let srv: Server;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    await srv?.stop();
  });

  it('answers a direct loopback client', async () => {
    for (const path of ['/admin/failures', '/admin/status', '/ui']) expect((await send(srv.port, 'GET', path)).status, path).toBe(200);
  });

  it.each([
    ['X-Forwarded-For', '203.0.113.9'],
    ['Forwarded', 'for=203.0.113.9;proto=https'],
    ['X-Real-IP', '203.0.113.9'],
  ])('refuses a request relayed by a proxy (%s): a proxied client is not loopback', async (name, value) => {
    for (const path of ['/admin/failures', '/ui']) {
      const res = await send(srv.port, 'GET', path, { [name]: value });
      expect(res.status, `${path} ${res.text}`).toBe(403);
      expect(res.json?.reason).toBe('admin_proxied');
    }
  });

  it('refuses a Host that is not loopback (DNS rebinding) and accepts loopback names on any port', async () => {
    for (const host of ['evil.example', `evil.example:${srv.port}`, '127.0.0.1.evil.example', 'localhost.evil.example:80']) {
      const res = await send(srv.port, 'GET', '/admin/failures', { host });
      expect(res.status, `Host: ${host} -> ${res.text}`).toBe(403);
      expect(res.json?.reason).toBe('admin_host_not_loopback');
    }
    for (const host of ['localhost', `localhost:${srv.port}`, 'LOCALHOST:1', '127.0.0.1', `127.0.0.1:${srv.port}`, '[::1]', `[::1]:${srv.port}`]) {
      expect((await send(srv.port, 'GET', '/admin/failures', { host })).status, `Host: ${host}`).toBe(200);
    }
  });

  it('refuses a cross-site POST (foreign Origin, text/plain)', async () => {
    const res = await send(srv.port, 'POST', '/admin/failures/1/retry', { origin: 'https://evil.example', 'content-type': 'text/plain' }, 'x');
    expect(res.status, res.text).toBe(403);
    expect(res.json?.reason).toBe('cross_site_refused');
  });

  it('refuses a POST whose Origin differs from Host, even with JSON', async () => {
    for (const origin of ['https://evil.example', `http://localhost:${srv.port + 1}`, 'null']) {
      const res = await send(srv.port, 'POST', '/admin/failures/1/retry', { origin, 'content-type': 'application/json' });
      expect(res.status, `${origin}: ${res.text}`).toBe(403);
      expect(res.json?.reason).toBe('cross_site_refused');
    }
  });

  it('refuses a POST marked Sec-Fetch-Site: cross-site', async () => {
    const res = await send(srv.port, 'POST', '/admin/failures/1/retry', { 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' });
    expect(res.status, res.text).toBe(403);
    expect(res.json?.reason).toBe('cross_site_refused');
  });

  it('refuses a POST that is neither JSON nor carries a bearer header (what a plain HTML form can send)', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await send(srv.port, 'POST', '/admin/failures/1/retry', { 'content-type': type }, 'a=1');
      expect(res.status, `${type}: ${res.text}`).toBe(403);
      expect(res.json?.reason).toBe('cross_site_refused');
    }
  });

  it('lets a same-origin JSON POST through to the route', async () => {
    const res = await send(srv.port, 'POST', '/admin/failures/999/retry', {
      origin: `http://127.0.0.1:${srv.port}`,
      'sec-fetch-site': 'same-origin',
      'content-type': 'application/json',
    });
    expect(res.status, res.text).toBe(404);
    expect(res.json?.reason).toBe('not_found');
  });
});

describe('findings 2 and 3: the admin token', () => {
  let srv: Server;
  beforeAll(async () => {
    srv = await startServer({ adminToken: TOKEN });
  });
  afterAll(async () => {
    await srv?.stop();
  });

  const bearer = { authorization: `Bearer ${TOKEN}` };

  it('refuses a cross-site POST even with the bearer token', async () => {
    const res = await send(srv.port, 'POST', '/admin/failures/999/retry', { ...bearer, origin: 'https://evil.example' });
    expect(res.status, res.text).toBe(403);
    expect(res.json?.reason).toBe('cross_site_refused');
    // The same request from a script (no Origin) reaches the route.
    expect((await send(srv.port, 'POST', '/admin/failures/999/retry', bearer)).status).toBe(404);
  });

  it('never accepts ?token= on POST or on the /admin JSON routes', async () => {
    const q = `token=${encodeURIComponent(TOKEN)}`;
    const post = await send(srv.port, 'POST', `/admin/failures/999/retry?${q}`, { 'content-type': 'application/json' });
    expect(post.status, post.text).toBe(401);
    for (const path of [`/admin/status?${q}`, `/admin/failures?${q}`, `/admin/failures?limit=1&${q}`]) {
      const res = await send(srv.port, 'GET', path);
      expect(res.status, path).toBe(401);
      expect(res.json?.reason).toBe('unauthorized');
    }
  });

  it('GET /ui?token= trades the token for an HttpOnly SameSite=Strict cookie and redirects to the URL without it', async () => {
    const res = await send(srv.port, 'GET', `/ui?token=${encodeURIComponent(TOKEN)}`);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/ui');
    const setCookie = res.headers['set-cookie'] ?? [];
    expect(setCookie).toHaveLength(1);
    const cookie = setCookie[0]!;
    expect(cookie).toMatch(/;\s*HttpOnly/i);
    expect(cookie).toMatch(/;\s*SameSite=Strict/i);
    expect(cookie).toMatch(/;\s*Path=\/(;|$)/);
    expect(cookie).not.toContain(TOKEN);
    const pair = cookie.split(';')[0]!;

    const other = await send(srv.port, 'GET', `/ui?view=1&token=${encodeURIComponent(TOKEN)}`);
    expect(other.status).toBe(303);
    expect(other.headers.location).toBe('/ui?view=1');

    // The cookie opens the dashboard and the JSON routes, and (as JSON) the retry route.
    const ui = await send(srv.port, 'GET', '/ui', { cookie: pair });
    expect(ui.status).toBe(200);
    expect(ui.text).toMatch(/^<!doctype html>/i);
    expect(ui.text).not.toContain(TOKEN);
    expect(ui.text).not.toMatch(/token=/i);
    expect((await send(srv.port, 'GET', '/admin/status', { cookie: pair })).status).toBe(200);
    expect((await send(srv.port, 'POST', '/admin/failures/999/retry', { cookie: pair, 'content-type': 'application/json' })).status).toBe(404);
    // A cookie alone is what a browser sends cross-site: as a form post it is refused.
    expect((await send(srv.port, 'POST', '/admin/failures/999/retry', { cookie: pair, 'content-type': 'text/plain' })).status).toBe(403);
  });

  it('GET /ui?token= with a wrong token sets no cookie', async () => {
    for (const t of ['wrong', `${TOKEN}x`, TOKEN.slice(0, -1), '']) {
      const res = await send(srv.port, 'GET', `/ui?token=${encodeURIComponent(t)}`);
      expect(res.status, t).toBe(401);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    expect((await send(srv.port, 'GET', '/ui', { cookie: 'tajo_admin=forged' })).status).toBe(401);
  });

  it('logs no query string: a refused request with ?token= leaves the token out of the log', async () => {
    const body = Buffer.alloc(300 * 1024, 'a');
    const res = await send(srv.port, 'POST', `/webhooks/amazon-ses?token=${encodeURIComponent(TOKEN)}`, { 'content-type': 'text/plain' }, body);
    expect(res.status).toBe(413);
    await until(() => srv.logs().includes('256 KiB'), 'the 413 to be logged', 5_000);
    expect(srv.logs()).toContain('/webhooks/amazon-ses');
    expect(srv.logs()).not.toContain(TOKEN);
    expect(srv.logs()).not.toContain('token=');
  });

  it('logs no query string when a route fails', async () => {
    const broken = await startServer({ adminToken: TOKEN });
    try {
      await broken.connector.store.close(); // every store call now throws: a 500
      const res = await send(broken.port, 'GET', `/admin/failures?limit=5&token=${encodeURIComponent(TOKEN)}`, bearer);
      expect(res.status, res.text).toBe(500);
      await until(() => broken.logs().includes('request failed'), 'the 500 to be logged', 5_000);
      expect(broken.logs()).toContain('/admin/failures');
      expect(broken.logs()).not.toContain(TOKEN);
      expect(broken.logs()).not.toContain('limit=5');
    } finally {
      // The store is closed already: stop the server and remove the files only.
      await broken.app.close();
      rmSync(broken.dir, { recursive: true, force: true });
    }
  });
});

describe('finding 4: security headers', () => {
  let srv: Server;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    await srv?.stop();
  });

  it('GET /ui sends CSP, frame, sniffing, referrer and cache headers, and its inline style matches the CSP hash', async () => {
    const res = await send(srv.port, 'GET', '/ui');
    expect(res.status).toBe(200);
    const csp = String(res.headers['content-security-policy'] ?? '');
    const directives = new Map(
      csp
        .split(';')
        .map((d) => d.trim())
        .filter(Boolean)
        .map((d) => [d.split(/\s+/)[0]!, d.split(/\s+/).slice(1)] as const),
    );
    expect(directives.get('default-src')).toEqual(["'none'"]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(csp).not.toContain('unsafe-inline');
    // The one script is a same-origin file; no inline script, no eval, no other host.
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('connect-src')).toEqual(["'self'"]);
    expect(csp).not.toContain('unsafe-eval');
    const scripts = [...res.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.map((m) => [m[1]!.trim(), m[2]])).toEqual([['src="/ui/app.js" defer', '']]);
    const js = await send(srv.port, 'GET', '/ui/app.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    const style = /<style>([\s\S]*?)<\/style>/.exec(res.text)?.[1];
    expect(style).toBeDefined();
    const hash = `'sha256-${createHash('sha256').update(style!).digest('base64')}'`;
    expect(directives.get('style-src')).toContain(hash);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('the JSON admin routes and their refusals are not cached or sniffed either', async () => {
    for (const [path, headers] of [
      ['/admin/failures', {}],
      ['/admin/status', { 'x-forwarded-for': '203.0.113.9' }],
    ] as const) {
      const res = await send(srv.port, 'GET', path, headers);
      expect(res.headers['cache-control'], path).toBe('no-store');
      expect(res.headers['x-content-type-options'], path).toBe('nosniff');
    }
  });
});

describe('finding 5: metric labels from signed content are bounded', () => {
  it('an unknown SES eventType counts under `other`; known types keep their name', async () => {
    const stack = await startStack({ plan: 'unlimited' });
    try {
      const N = 30;
      for (let i = 0; i < N; i++) {
        const payload = { ...sesEvent('Click', { messageId: `label-${i}`, recipients: ['a@example.com'] }), eventType: `MadeUpType${i}` };
        expect((await stack.publish(stack.sns.notification(stack.topic, payload))).status).toBe(200);
      }
      // Known types that still cannot be used (no bounce object) keep their own label.
      const { bounce: _b, ...bounceWithoutDetails } = sesEvent('Bounce', { messageId: 'label-bounce', recipients: ['b@example.com'] }) as Record<
        string,
        unknown
      >;
      expect((await stack.publish(stack.sns.notification(stack.topic, bounceWithoutDetails))).status).toBe(200);
      await stack.connector.waitIdle(30_000);
      const text = (await stack.get('/metrics')).text;
      const series = text.split('\n').filter((l) => l.startsWith('tajo_ses_unknown_records_total{'));
      expect(series.length, series.join('\n')).toBe(2);
      expect(metricValue(text, 'tajo_ses_unknown_records_total', { type: 'other' })).toBe(N);
      expect(metricValue(text, 'tajo_ses_unknown_records_total', { type: 'Bounce' })).toBe(1);
    } finally {
      await stack.stop();
    }
  });
});
