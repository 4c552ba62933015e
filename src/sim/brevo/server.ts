import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { PeakPerSecond, RateLimiter, bucketFor } from './rate-limit.js';
import type { RateDecision } from './rate-limit.js';
import { ApiError, matchRoute, reportCsv } from './routes.js';
import type { Reply } from './routes.js';
import { SimStore } from './store.js';
import type { ProcessRec } from './store.js';
import type { BrevoFaults, BrevoSim, BrevoSimOptions, BrevoSimStats } from './types.js';
import { prng as seededRandom } from '../prng.js';
import { listenOn } from '../listen.js';

// Plain node:http rather than a framework: the simulator needs exact control over when a
// socket is destroyed (before or after a write is applied), does no logging, and must keep
// up with benchmark loads of ~100k requests.

// Brevo documents 10 MB as the largest import body; nothing else it takes is larger.
const MAX_BODY_BYTES = 10 * 1024 * 1024;
const DEFAULT_IMPORT_MAX_BYTES = 8 * 1024 * 1024;
// Past this the simulator stops reading and cuts the connection, as a gateway would.
const ABSOLUTE_BODY_BYTES = 64 * 1024 * 1024;
const INJECTED_ERROR_STATUSES = [500, 502, 503] as const;

type Faults = Required<Omit<BrevoFaults, 'seed' | 'outageSeconds'>> & {
  seed?: number;
  /** End of the outage window (ms since epoch); 0: none. */ outageUntil: number;
};

const RATE_KEYS = ['errorRate', 'throttleRate', 'dropRate', 'dropAfterApplyRate', 'throttleBareRate', 'hangRate', 'malformedRate'] as const;
const FAULT_KEYS: readonly string[] = [...RATE_KEYS, 'latencyMs', 'hangMs', 'outageSeconds', 'seed'];

const NO_FAULTS: Faults = {
  errorRate: 0,
  throttleRate: 0,
  latencyMs: 0,
  dropRate: 0,
  dropAfterApplyRate: 0,
  throttleBareRate: 0,
  hangRate: 0,
  hangMs: 60_000,
  malformedRate: 0,
  outageUntil: 0,
};

/** Overlays the defined fields of `f` (an explicit undefined keeps the current value, except for seed). */
function mergeFaults(base: Faults, f: Partial<BrevoFaults> | undefined, now: number): Faults {
  const next: Faults = { ...base };
  for (const k of [...RATE_KEYS, 'latencyMs', 'hangMs'] as const) {
    const v = f?.[k];
    if (v !== undefined) next[k] = v;
  }
  if (f?.outageSeconds !== undefined) {
    const s = f.outageSeconds;
    if (typeof s !== 'number' || !(s >= 0)) throw new RangeError(`faults.outageSeconds must be >= 0, got ${s}`);
    next.outageUntil = s > 0 ? now + s * 1000 : 0;
  }
  if (f && 'seed' in f) {
    if (f.seed === undefined) delete next.seed;
    else next.seed = f.seed;
  }
  checkFaults(next);
  return next;
}

function checkFaults(f: Faults): void {
  for (const k of RATE_KEYS) {
    const v = f[k];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new RangeError(`faults.${k} must be between 0 and 1, got ${v}`);
  }
  for (const k of ['latencyMs', 'hangMs'] as const) {
    if (typeof f[k] !== 'number' || !(f[k] >= 0)) throw new RangeError(`faults.${k} must be >= 0, got ${f[k]}`);
  }
  if (f.seed !== undefined && !Number.isInteger(f.seed)) throw new RangeError(`faults.seed must be an integer, got ${String(f.seed)}`);
}

function emptyStats(): BrevoSimStats {
  return { requests: 0, byRoute: {}, status: {}, throttled: 0, throttledByRoute: {}, byBucket: {}, peakPerSecond: {}, faults: {} };
}

function inc(rec: Record<string, number>, key: string): void {
  rec[key] = (rec[key] ?? 0) + 1;
}

interface Body {
  buf: Buffer;
  size: number;
}

function readBody(req: IncomingMessage, keepUpTo: number): Promise<Body | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > ABSOLUTE_BODY_BYTES) {
        req.socket.destroy();
        resolve(null);
        return;
      }
      // Past the limit the body is drained but not kept: the answer is a 413 anyway.
      if (size <= keepUpTo) chunks.push(chunk);
    });
    req.on('end', () => resolve({ buf: size <= keepUpTo ? Buffer.concat(chunks) : Buffer.alloc(0), size }));
    req.on('error', () => resolve(null));
  });
}

interface PendingImport {
  timers: NodeJS.Timeout[];
  done: Promise<void>;
  finish: () => void;
}

export async function startBrevoSim(opts: BrevoSimOptions = {}): Promise<BrevoSim> {
  const now = opts.now ?? Date.now;
  const apiKey = opts.apiKey ?? 'sim-key';
  const importDelayMs = opts.importDelayMs ?? 50;
  const importMaxBytes = opts.importMaxBytes ?? DEFAULT_IMPORT_MAX_BYTES;
  const keepUpTo = Math.max(MAX_BODY_BYTES, importMaxBytes);
  const store = new SimStore(now);
  const limiter = new RateLimiter(opts.plan ?? 'general', now);
  let faults = mergeFaults(NO_FAULTS, opts.faults, now());
  let random = faults.seed === undefined ? Math.random : seededRandom(faults.seed);
  let stats = emptyStats();
  const peaks = new PeakPerSecond();
  const pending = new Set<PendingImport>();
  let origin = '';

  const currentStats = (): BrevoSimStats => ({ ...stats, peakPerSecond: { ...peaks.peaks } });

  const chance = (rate: number): boolean => rate > 0 && random() < rate;

  function setFaults(f: Partial<BrevoFaults>): void {
    if (f === null || typeof f !== 'object' || Array.isArray(f)) throw new TypeError('faults must be an object');
    faults = mergeFaults(faults, f, now());
    if ('seed' in f) random = faults.seed === undefined ? Math.random : seededRandom(faults.seed);
  }

  function scheduleImport(p: ProcessRec, apply: () => void): void {
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const job: PendingImport = { timers: [], done, finish };
    const complete = (): void => {
      p.status = 'in_process';
      try {
        apply();
      } finally {
        p.status = 'completed';
        p.completedAt = store.iso();
        pending.delete(job);
        finish();
      }
    };
    job.timers.push(
      setTimeout(() => {
        if (p.status === 'queued') p.status = 'in_process';
      }, importDelayMs / 2),
      setTimeout(complete, importDelayMs),
    );
    pending.add(job);
  }

  function cancelImports(): void {
    for (const job of pending) {
      for (const t of job.timers) clearTimeout(t);
      job.finish();
    }
    pending.clear();
  }

  function send(res: ServerResponse, reply: Reply, rl: RateDecision | undefined): void {
    inc(stats.status, String(reply.status));
    const headers: Record<string, string | number> = {};
    if (rl) {
      headers['x-sib-ratelimit-limit'] = rl.limit;
      headers['x-sib-ratelimit-remaining'] = rl.remaining;
      headers['x-sib-ratelimit-reset'] = rl.resetSeconds;
    }
    let payload: string | undefined;
    if (reply.text !== undefined) {
      payload = reply.text;
      headers['content-type'] = reply.contentType ?? 'text/plain; charset=utf-8';
    } else if (reply.body !== undefined && reply.status !== 204) {
      payload = JSON.stringify(reply.body);
      headers['content-type'] = 'application/json; charset=utf-8';
    }
    headers['content-length'] = payload === undefined ? 0 : Buffer.byteLength(payload);
    res.writeHead(reply.status, headers);
    res.end(payload);
  }

  const fail = (status: number, code: string, message: string): Reply => ({ status, body: { code, message } });

  function drop(req: IncomingMessage, key: string): void {
    inc(stats.status, key);
    inc(stats.faults, key);
    req.socket.destroy();
  }

  /** Never answers: the socket is destroyed after hangMs (or when the client gives up first). */
  function hang(req: IncomingMessage): void {
    inc(stats.status, 'hung');
    inc(stats.faults, 'hang');
    const socket = req.socket;
    const timer = setTimeout(() => socket.destroy(), faults.hangMs);
    socket.once('close', () => clearTimeout(timer));
  }

  /** Answers 200 with a JSON body cut in half (the call was applied). */
  function sendMalformed(res: ServerResponse, reply: Reply): void {
    inc(stats.status, 'malformed');
    inc(stats.faults, 'malformed');
    const full = JSON.stringify(reply.body ?? { ok: true });
    const payload = full.slice(0, Math.max(1, Math.floor(full.length / 2)));
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // When the request arrived (its headers), before its body is read: what the per-second peak counts.
    const arrivedAt = now();
    const method = req.method ?? 'GET';
    // Cheaper than new URL() per request; paths here never carry a scheme or host.
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));

    // Simulator-only routes (what it holds, import report CSVs): no auth, no budget, no faults.
    if (path === '/sim/stats' && method === 'GET') {
      // Not through send(): polling what the simulator holds must not count as traffic.
      const payload = JSON.stringify({ stats: currentStats(), holds: store.summary() });
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) }).end(payload);
      return;
    }
    // Everything it holds (BrevoSim.state()), for a test that runs the simulator in a process of its own.
    if (path === '/sim/state' && method === 'GET') {
      const payload = JSON.stringify(store.snapshot());
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) }).end(payload);
      return;
    }
    // Turns failures on and off while the connector runs (an outage and its end); answers the faults now in force.
    if (path === '/sim/faults' && method === 'POST') {
      const body = await readBody(req, 64 * 1024);
      if (!body) return;
      let reply: Reply;
      try {
        const asked = JSON.parse(body.buf.toString('utf8') || '{}') as Partial<BrevoFaults>;
        const unknown = Object.keys(asked ?? {}).filter((k) => !FAULT_KEYS.includes(k));
        if (unknown.length) throw new TypeError(`unknown ${unknown.join(', ')}`);
        setFaults(asked);
        reply = { status: 200, body: faults };
      } catch (e) {
        reply = fail(400, 'invalid_parameter', `Expected a JSON object of faults (${FAULT_KEYS.join(', ')}): ${(e as Error).message}`);
      }
      res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(reply.body));
      return;
    }
    // One contact as the simulator holds it, for tests that check the outcome without spending the budget they are testing.
    const simContact = /^\/sim\/contacts\/([^/]+)$/.exec(path);
    if (simContact && method === 'GET') {
      const found = store.findContact(decodeURIComponent(simContact[1] ?? ''));
      const payload = JSON.stringify(found ? store.contactView(found) : { code: 'document_not_found', message: 'Contact does not exist' });
      res.writeHead(found ? 200 : 404, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) }).end(payload);
      return;
    }
    const csv = /^\/sim\/processes\/(\d+)\/([a-z_]+)\.csv$/.exec(path);
    if (csv && method === 'GET') {
      const text = reportCsv(store, Number(csv[1]), csv[2] ?? '');
      if (text === undefined) send(res, fail(404, 'document_not_found', 'No such report'), undefined);
      else send(res, { status: 200, text, contentType: 'text/csv; charset=utf-8' }, undefined);
      return;
    }

    const body = await readBody(req, keepUpTo);
    if (!body) return;
    stats.requests++;
    const bucket = bucketFor(path, opts.eventsBatchBucket);
    inc(stats.byBucket, bucket);
    const match = matchRoute(method, path);
    const routeKey = match && 'route' in match ? match.route.key : 'UNMATCHED';
    inc(stats.byRoute, routeKey);

    if (req.headers['api-key'] !== apiKey) {
      send(res, fail(401, 'unauthorized', 'Key not found'), limiter.peek(bucket));
      return;
    }
    if (faults.outageUntil > now()) {
      inc(stats.faults, 'outage');
      send(res, fail(503, 'internal_error', 'Simulated outage'), undefined);
      return;
    }
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);

    const rl = limiter.take(bucket, arrivedAt);
    if (!rl.allowed) {
      stats.throttled++;
      inc(stats.throttledByRoute, routeKey);
      send(res, fail(429, 'too_many_requests', `Rate limit exceeded for the ${bucket} bucket; retry in ${rl.resetSeconds}s`), rl);
      return;
    }
    peaks.record(bucket, arrivedAt);
    if (chance(faults.dropRate)) return drop(req, 'dropped');
    if (chance(faults.hangRate)) return hang(req);
    if (chance(faults.errorRate)) {
      const status = INJECTED_ERROR_STATUSES[Math.floor(random() * INJECTED_ERROR_STATUSES.length)] ?? 500;
      inc(stats.faults, 'error');
      send(res, fail(status, 'internal_error', 'Simulated server error'), rl);
      return;
    }
    if (chance(faults.throttleRate)) {
      stats.throttled++;
      inc(stats.throttledByRoute, routeKey);
      inc(stats.faults, 'throttle');
      send(res, fail(429, 'too_many_requests', 'Simulated burst throttling'), { ...rl, remaining: 0 });
      return;
    }
    if (chance(faults.throttleBareRate)) {
      stats.throttled++;
      inc(stats.throttledByRoute, routeKey);
      inc(stats.faults, 'throttle_bare');
      send(res, fail(429, 'too_many_requests', 'Simulated throttling without rate-limit headers'), undefined);
      return;
    }

    if (!match) {
      send(res, fail(404, 'document_not_found', `No route for ${method} ${path}`), rl);
      return;
    }
    if ('methodNotAllowed' in match) {
      send(res, fail(405, 'method_not_allowed', `${method} is not allowed on ${path}`), rl);
      return;
    }
    const limit = match.route.isImport ? importMaxBytes : MAX_BODY_BYTES;
    if (body.size > limit) {
      send(res, fail(413, 'invalid_parameter', `Request body of ${body.size} bytes exceeds the ${limit} byte limit of ${match.route.key}`), rl);
      return;
    }
    let parsed: unknown;
    if (body.size > 0) {
      const ct = req.headers['content-type'] ?? '';
      if (!/^application\/json\b/i.test(ct)) {
        send(res, fail(400, 'invalid_parameter', 'Content-Type must be application/json'), rl);
        return;
      }
      try {
        parsed = JSON.parse(body.buf.toString('utf8'));
      } catch {
        send(res, fail(400, 'invalid_parameter', 'Malformed JSON body'), rl);
        return;
      }
    }

    let reply: Reply;
    try {
      reply = match.route.handler({ store, params: match.params, query, body: parsed, origin, scheduleImport });
    } catch (e) {
      reply = e instanceof ApiError ? fail(e.status, e.code, e.message) : fail(500, 'internal_error', `Simulator bug: ${(e as Error).message}`);
    }
    if (chance(faults.dropAfterApplyRate)) return drop(req, 'dropped_after_apply');
    if (reply.status >= 200 && reply.status < 300 && reply.text === undefined && chance(faults.malformedRate)) return sendMalformed(res, reply);
    send(res, reply, rl);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, fail(500, 'internal_error', `Simulator bug: ${(e as Error).message}`), undefined);
      else req.socket.destroy();
    });
  });

  const listening = await listenOn(server, { port: opts.port, host: opts.host });
  origin = listening.origin;

  return {
    url: `${origin}/v3`,
    port: listening.port,
    apiKey,
    setFaults,
    state: () => store.snapshot(),
    contact(email) {
      const c = store.findContact(email);
      return c ? store.contactView(c) : undefined;
    },
    stats: () => structuredClone(currentStats()),
    summary: () => store.summary(),
    async settle() {
      while (pending.size > 0) await Promise.all([...pending].map((j) => j.done));
    },
    reset() {
      cancelImports();
      store.reset();
      limiter.reset();
      peaks.reset();
      stats = emptyStats();
      if (faults.seed !== undefined) random = seededRandom(faults.seed);
    },
    async close() {
      cancelImports();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
