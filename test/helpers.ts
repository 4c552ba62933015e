// Shared harness for the integration suites under test/: the whole path on loopback, as in
// `tajo-ses demo` (src/cli/demo.ts): Brevo simulator + SNS simulator + connector (SQLite in a
// temp dir) + the real Fastify server on 127.0.0.1:0. Tests talk to it over real sockets and
// judge the result from the Brevo simulator's state.
import { mkdtempSync, rmSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { startBrevoSim } from '../src/sim/brevo/index.js';
import type { BrevoSim, BrevoSimState, SimEvent } from '../src/sim/brevo/index.js';
import { startSnsSim, type SnsSim } from '../src/sim/sns/index.js';
import { createConnector, type Connector, type ConnectorOptions } from '../src/engine/connector.js';
import { buildServer } from '../src/server/app.js';
import { parseConfig } from '../src/config/load.js';
import type { EventPolicy } from '../src/config/schema.js';
import type { SesEventType } from '../src/core/types.js';
import type { SnsEnvelope } from '../src/ses/sns.js';

export const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';
export const LOOPBACK_CERT_HOST = '^127\\.0\\.0\\.1$';

export interface StackOptions {
  /** Brevo simulator plan; default 'general'. With 'unlimited' the connector paces itself on the 'extended' table. */
  plan?: 'general' | 'unlimited';
  /** Overrides of connectors.amazon-ses.sns. */
  sns?: {
    topic_arns?: string[];
    auto_confirm_subscriptions?: boolean;
    max_message_age?: string;
    signing_cert_hosts?: string[];
    allow_http_cert_urls?: boolean;
  };
  /** Overrides of connectors.amazon-ses.events (per-type policy). */
  events?: Partial<Record<SesEventType, EventPolicy>>;
  /** Overrides of the `delivery:` section (defaults here: backoff 50ms..1s). */
  delivery?: Record<string, unknown>;
  /** server.admin_token */
  adminToken?: string;
  /** Passed to createConnector (test hooks such as verify.fetchCertificate). */
  connector?: Omit<ConnectorOptions, 'logger'>;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
}

export interface Stack {
  brevo: BrevoSim;
  sns: SnsSim;
  connector: Connector;
  app: FastifyInstance;
  /** Webhook URL: http://127.0.0.1:PORT/webhooks/amazon-ses */
  url: string;
  /** Server origin: http://127.0.0.1:PORT */
  base: string;
  topic: string;
  dir: string;
  /** Posts a signed envelope the way SNS does (text/plain, x-amz-sns-* headers). */
  publish(env: SnsEnvelope): Promise<HttpAnswer>;
  /** Posts a raw body to the webhook (content-type text/plain; charset=UTF-8 unless overridden). */
  post(rawBody: string | Buffer, headers?: Record<string, string>): Promise<HttpAnswer>;
  /** GET on the server (path such as /metrics). */
  get(path: string, headers?: Record<string, string>): Promise<HttpAnswer>;
  /** Any request on the server. */
  request(method: string, path: string, opts?: { headers?: Record<string, string>; body?: string }): Promise<HttpAnswer>;
  stop(): Promise<void>;
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function answer(res: Response): Promise<HttpAnswer> {
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: parseJson(text) };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const plan = opts.plan ?? 'general';
  const dir = mkdtempSync(join(tmpdir(), 'tajo-itest-'));
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(dir, { recursive: true, force: true })];
  const runCleanups = async () => {
    const errors: unknown[] = [];
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        errors.push(err);
      }
    }
    cleanups.length = 0;
    if (errors.length > 0) throw errors[0];
  };
  try {
    const brevo = await startBrevoSim({ plan });
    cleanups.push(() => brevo.close());
    const sns = await startSnsSim({ region: 'us-east-1' });
    cleanups.push(() => sns.close());
    const config = parseConfig(
      {
        connectors: {
          'amazon-ses': {
            region: 'us-east-1',
            sns: {
              topic_arns: [TOPIC],
              signing_cert_hosts: [LOOPBACK_CERT_HOST],
              allow_http_cert_urls: true,
              ...opts.sns,
            },
            ...(opts.events ? { events: opts.events } : {}),
          },
        },
        brevo: { api_key: brevo.apiKey, base_url: brevo.url, plan: plan === 'unlimited' ? 'extended' : 'general', timeout: '10s' },
        store: { url: `sqlite:${join(dir, 'amazon-ses.db')}` },
        server: { port: 0, host: '127.0.0.1', ...(opts.adminToken !== undefined ? { admin_token: opts.adminToken } : {}) },
        delivery: { backoff_base: '50ms', backoff_max: '1s', ...opts.delivery },
        log: { level: 'silent' },
      },
      { requireBrevoKey: true, env: {} },
    );
    const connector = await createConnector(config, { ...opts.connector, logger: pino({ level: 'silent' }) });
    // Closing the store is the last thing connector.stop() does; a failed start must still close it.
    let connectorStopped = false;
    cleanups.push(async () => {
      if (!connectorStopped) {
        connectorStopped = true;
        await connector.stop(5_000);
      }
    });
    const app = buildServer(connector);
    cleanups.push(() => app.close());
    await connector.start();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const url = `${base}/webhooks/amazon-ses`;

    const request: Stack['request'] = async (method, path, o = {}) =>
      answer(await fetch(base + path, { method, headers: o.headers ?? {}, ...(o.body !== undefined ? { body: o.body } : {}) }));
    return {
      brevo,
      sns,
      connector,
      app,
      url,
      base,
      topic: TOPIC,
      dir,
      async publish(env) {
        const res = await sns.publish(url, env);
        return { status: res.status, headers: new Headers(), text: res.body, json: parseJson(res.body) };
      },
      async post(rawBody, headers = {}) {
        return answer(await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain; charset=UTF-8', ...headers }, body: rawBody }));
      },
      get: (path, headers = {}) => request('GET', path, { headers }),
      request,
      stop: runCleanups,
    };
  } catch (err) {
    await runCleanups().catch(() => undefined);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// Reading what Brevo holds

/** `YYYY-MM-DD` of an ISO time, as Brevo date attributes hold it. */
export function day(iso: string): string {
  return new Date(iso).toISOString().slice(0, 10);
}

/** Brevo events whose event_properties.event_key is `key`. */
export function eventsByKey(state: BrevoSimState): Map<string, SimEvent[]> {
  const out = new Map<string, SimEvent[]>();
  for (const e of state.events) {
    const k = String(e.event_properties?.event_key ?? '');
    const list = out.get(k) ?? [];
    list.push(e);
    out.set(k, list);
  }
  return out;
}

/** Brevo events of one contact (by identifiers.email_id, compared lower-cased). */
export function eventsOf(state: BrevoSimState, email: string): SimEvent[] {
  const e = email.trim().toLowerCase();
  return state.events.filter((x) => (x.identifiers.email_id ?? '').toLowerCase() === e);
}

/** Value of one sample of a Prometheus counter/gauge in the text format, 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const part of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[part[1]!] = part[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[4]);
  }
  return 0;
}

/** Total number of SNS envelopes in the store's inbox, whatever their state. */
export async function inboxTotal(connector: Connector): Promise<number> {
  const st = await connector.store.stats();
  return Object.values(st.inbox).reduce((a, n) => a + n, 0);
}

/** Resolves when `fn` returns a truthy value, polling; rejects at the deadline with `what`. */
export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A TCP port free on loopback right now (for a server started in another process). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** `tajo-ses serve` as its own process (the built CLI), with its output collected. */
export interface ServeProcess {
  child: ChildProcess;
  logs(): string;
  /** Resolves once /readyz answers 200 on `port`. */
  ready(port: number): Promise<void>;
  /** Resolves with the exit code. */
  exited(): Promise<number | null>;
}

export function spawnServe(configPath: string): ServeProcess {
  let logs = '';
  const child = spawn(process.execPath, ['bin/tajo-ses.js', 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    logs: () => logs,
    ready: (port) =>
      until(
        () =>
          fetch(`http://127.0.0.1:${port}/readyz`)
            .then((r) => r.ok)
            .catch(() => false),
        `serve ready on ${port} (logs: ${logs.slice(-2000)})`,
        30_000,
        100,
      ).then(() => undefined),
    exited: () => exit,
  };
}
