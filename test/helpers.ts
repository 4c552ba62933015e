// Shared harness for the integration suites under test/: the whole path on loopback, as in
// `tajo-ses demo` (src/cli/demo.ts): Brevo simulator + SNS simulator + connector (SQLite in a
// temp dir) + the real Fastify server on 127.0.0.1:0. Tests talk to it over real sockets and
// judge the result from the Brevo simulator's state.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { startBrevoSim } from '../src/sim/brevo/index.js';
import type { BrevoSim, BrevoSimOptions, BrevoSimState, SimEvent } from '../src/sim/brevo/index.js';
import { startSnsSim, type SnsSim } from '../src/sim/sns/index.js';
import { startSesSim, type SesSim, type SesSimOptions } from '../src/sim/ses/index.js';
import { createConnector, type Connector, type ConnectorOptions } from '../src/engine/connector.js';
import { buildServer } from '../src/server/app.js';
import { parseConfig } from '../src/config/load.js';
import type { EventPolicy } from '../src/config/schema.js';
import { SES_EVENT_TYPES, type SesEventType } from '../src/core/types.js';
import type { SnsEnvelope } from '../src/ses/sns.js';
import type { Store } from '../src/store/port.js';
import { parseSesNotification } from '../src/ses/parse.js';
import { compareWithBrevo, expectedBrevoState } from '../src/sim/oracle.js';

export const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';
export const LOOPBACK_CERT_HOST = '^127\\.0\\.0\\.1$';
/** Every SES event type sent as a Brevo event and as contact attributes. */
export const ALL_EVENTS_BOTH = Object.fromEntries(SES_EVENT_TYPES.map((t) => [t, 'both'])) as Record<SesEventType, EventPolicy>;

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
  /** connectors.amazon-ses.eventbridge (the EventBridge intake is off without a secret). */
  eventbridge?: { header_name?: string; secret?: string };
  /** connectors.amazon-ses.sqs */
  sqs?: { queue_url?: string; raw_message_delivery?: boolean | 'auto'; endpoint?: string; pollers?: number; poison?: 'redrive' | 'delete' };
  /** Overrides of connectors.amazon-ses.events (per-type policy). */
  events?: Partial<Record<SesEventType, EventPolicy>>;
  /** More keys of connectors.amazon-ses (bounce_policy, lists, ...). */
  ses?: Record<string, unknown>;
  /** Overrides of the `delivery:` section (defaults here: backoff 50ms..1s). */
  delivery?: Record<string, unknown>;
  /** server.admin_token */
  adminToken?: string;
  /** Passed to createConnector (test hooks such as verify.fetchCertificate). */
  connector?: Omit<ConnectorOptions, 'logger'>;
  /** The connector's logger; default silent. */
  logger?: Logger;
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

/** Undo steps, run last-first; every step runs even when one throws, and the first error is rethrown. */
function undoSteps(): { add(step: () => unknown): void; run(): Promise<void> } {
  const steps: Array<() => unknown> = [];
  return {
    add: (step) => void steps.push(step),
    async run() {
      const errors: unknown[] = [];
      for (const step of steps.splice(0).reverse()) {
        try {
          await step();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) throw errors[0];
    },
  };
}

export interface SimsOptions {
  /** Starts the Brevo simulator with these options. */
  brevo?: BrevoSimOptions;
  /** Starts the SNS simulator with these options. */
  sns?: Parameters<typeof startSnsSim>[0];
  /** Starts the SES simulator with these options. */
  ses?: SesSimOptions;
  /** Makes a temporary directory with this name prefix, removed by stop(). */
  tmpDir?: string;
}

/** The simulators a test asked for; reading one it did not ask for throws. */
export interface Sims {
  readonly brevo: BrevoSim;
  readonly sns: SnsSim;
  readonly ses: SesSim;
  readonly dir: string;
  /** Closes the simulators and removes the directory. */
  stop(): Promise<void>;
}

export async function startSims(opts: SimsOptions): Promise<Sims> {
  const undo = undoSteps();
  let brevo: BrevoSim | undefined;
  let sns: SnsSim | undefined;
  let ses: SesSim | undefined;
  let dir: string | undefined;
  try {
    if (opts.tmpDir !== undefined) {
      const made = mkdtempSync(join(tmpdir(), opts.tmpDir));
      undo.add(() => rmSync(made, { recursive: true, force: true }));
      dir = made;
    }
    if (opts.brevo) {
      const sim = await startBrevoSim(opts.brevo);
      undo.add(() => sim.close());
      brevo = sim;
    }
    if (opts.sns) {
      const sim = await startSnsSim(opts.sns);
      undo.add(() => sim.close());
      sns = sim;
    }
    if (opts.ses) {
      const sim = await startSesSim(opts.ses);
      undo.add(() => sim.close());
      ses = sim;
    }
  } catch (err) {
    await undo.run().catch(() => undefined);
    throw err;
  }
  const asked = <T>(v: T | undefined, name: keyof SimsOptions): T => {
    if (v === undefined) throw new Error(`startSims: ${name} was not asked for`);
    return v;
  };
  return {
    get brevo() {
      return asked(brevo, 'brevo');
    },
    get sns() {
      return asked(sns, 'sns');
    },
    get ses() {
      return asked(ses, 'ses');
    },
    get dir() {
      return asked(dir, 'tmpDir');
    },
    stop: () => undo.run(),
  };
}

/**
 * startSims for the enclosing describe block (or file): started in beforeAll, stopped in
 * afterAll. An afterAll registered after this call runs before the simulators close.
 */
export function useSims(opts: SimsOptions): Sims {
  let sims: Sims | undefined;
  beforeAll(async () => {
    sims = await startSims(opts);
  });
  afterAll(async () => {
    await sims?.stop();
    sims = undefined;
  });
  const live = (): Sims => {
    if (!sims) throw new Error('useSims: the simulators run from beforeAll to afterAll; read them in hooks and tests');
    return sims;
  };
  return {
    get brevo() {
      return live().brevo;
    },
    get sns() {
      return live().sns;
    },
    get ses() {
      return live().ses;
    },
    get dir() {
      return live().dir;
    },
    stop: () => live().stop(),
  };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const plan = opts.plan ?? 'general';
  const undo = undoSteps();
  try {
    const sims = await startSims({ brevo: { plan }, sns: { region: 'us-east-1' }, tmpDir: 'tajo-itest-' });
    undo.add(() => sims.stop());
    const { brevo, sns, dir } = sims;
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
            ...opts.ses,
            ...(opts.eventbridge ? { eventbridge: opts.eventbridge } : {}),
            ...(opts.sqs ? { sqs: opts.sqs } : {}),
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
    const connector = await createConnector(config, { ...opts.connector, logger: opts.logger ?? pino({ level: 'silent' }) });
    // Closing the store is the last thing connector.stop() does; a failed start must still close it.
    let connectorStopped = false;
    undo.add(async () => {
      if (!connectorStopped) {
        connectorStopped = true;
        await connector.stop(5_000);
      }
    });
    const app = buildServer(connector);
    undo.add(() => app.close());
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
      stop: () => undo.run(),
    };
  } catch (err) {
    await undo.run().catch(() => undefined);
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

export interface ServeConfigOptions {
  /** Where the file (`<name>.yaml`) and the SQLite store (`<name>.db`) go. */
  dir: string;
  name: string;
  port: number;
  brevo: { url: string; apiKey: string; plan?: 'general' | 'advanced' | 'extended' };
  /** More keys of connectors.amazon-ses (such as `sync`). */
  ses?: Record<string, unknown>;
  /** More keys of `server:`. */
  server?: Record<string, unknown>;
  delivery?: Record<string, unknown>;
  /** More keys of `store:` (`url` replaces the SQLite file). */
  store?: Record<string, unknown>;
  /** store.url; default a SQLite file `<name>.db` in `dir`. */
  storeUrl?: string;
}

/**
 * Writes a configuration for `tajo-ses serve` over the simulators (SNS certificates from
 * loopback, every event type `both`, logs at info) and returns its path.
 */
export function writeServeConfig(o: ServeConfigOptions): string {
  const path = join(o.dir, `${o.name}.yaml`);
  const config = {
    connectors: {
      'amazon-ses': {
        region: 'us-east-1',
        sns: { topic_arns: [TOPIC], signing_cert_hosts: [LOOPBACK_CERT_HOST], allow_http_cert_urls: true },
        events: ALL_EVENTS_BOTH,
        ...o.ses,
      },
    },
    brevo: { api_key: o.brevo.apiKey, base_url: o.brevo.url, ...(o.brevo.plan ? { plan: o.brevo.plan } : {}) },
    store: { url: o.storeUrl ?? `sqlite:${join(o.dir, `${o.name}.db`)}`, ...o.store },
    server: { port: o.port, host: '127.0.0.1', ...o.server },
    ...(o.delivery ? { delivery: o.delivery } : {}),
    log: { level: 'info' },
  };
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** `env`: the child's whole environment (default: this process's). */
export function spawnServe(configPath: string, env?: Record<string, string>): ServeProcess {
  let logs = '';
  const child = spawn(process.execPath, ['bin/tajo-ses.js', 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    logs: () => logs,
    ready: (port) =>
      Promise.race([
        until(
          () =>
            fetch(`http://127.0.0.1:${port}/readyz`)
              .then((r) => r.ok)
              .catch(() => false),
          `serve ready on ${port}`,
          30_000,
          100,
        ).then(
          () => undefined,
          (err: Error) => Promise.reject(new Error(`${err.message} (logs: ${logs.slice(-2000)})`)),
        ),
        // A serve that exits (a config error, a refused store) fails at once, with what it said.
        exit.then((code) => Promise.reject(new Error(`serve exited with ${code} before it was ready: ${logs.slice(-2000)}`))),
      ]),
    exited: () => exit,
  };
}

/**
 * Waits until the Brevo simulator holds exactly what the oracle expects from these SES
 * payloads (imports settled first); on time-out, the error names the first differences.
 * Returns the expected state.
 */
export async function untilBrevoMatches(
  brevo: BrevoSim,
  payloads: unknown[],
  opts: { policy: Record<SesEventType, EventPolicy>; what: string; timeoutMs: number; everyMs?: number },
): Promise<ReturnType<typeof expectedBrevoState>> {
  const exp = expectedBrevoState(
    payloads.flatMap((p) => parseSesNotification(p).records),
    opts.policy,
  );
  let problems: string[] = [];
  await until(
    async () => {
      await brevo.settle();
      const cmp = compareWithBrevo(exp, brevo.state());
      problems = cmp.problems;
      return cmp.ok;
    },
    opts.what,
    opts.timeoutMs,
    opts.everyMs ?? 100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${problems.slice(0, 5).join('; ')}`);
  });
  return exp;
}

/**
 * `tajo-ses serve` as a child process on the simulators, realtime only (no scheduled SES
 * syncs), on Brevo's extended plan so the test is paced by the connector, not the plan.
 */
export function spawnRealtimeServe(
  sims: { dir: string; brevo: BrevoSim },
  o: { name: string; port: number; apiKey: string; server?: Record<string, unknown>; store?: Record<string, unknown> },
): ServeProcess {
  return spawnServe(
    writeServeConfig({
      dir: sims.dir,
      name: o.name,
      port: o.port,
      brevo: { url: sims.brevo.url, apiKey: o.apiKey, plan: 'extended' },
      ses: { sync: { contacts: false, suppressions: false, account: false } },
      ...(o.server ? { server: o.server } : {}),
      ...(o.store ? { store: o.store } : {}),
    }),
  );
}

/**
 * Holds every inbox commit of `store` (a store slow to commit) until `release()`, which lets
 * the held ones through and puts the store's own method back.
 */
export function holdInboxCommits(store: Store): { release: () => void } {
  const own = store.insertInbox;
  const insert = own.bind(store);
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  store.insertInbox = async (rows) => {
    await gate;
    return insert(rows);
  };
  return {
    release: () => {
      open();
      store.insertInbox = own;
    },
  };
}
