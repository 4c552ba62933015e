// Amazon SES v2 API simulator for tests, the demo and benchmarks. It speaks the
// REST-JSON protocol closely enough that the real @aws-sdk/client-sesv2 parses every
// response and maps every error to its named exception class.

import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';

import { SesState } from './model.js';
import type { SesSimData, SesSimSeed } from './model.js';
import { generate } from './generate.js';
import type { SesSimGenerateOptions } from './generate.js';
import { TokenBucket, TokenRegistry } from './paging.js';
import { SesApiError, operations } from './operations.js';
import type { Operation, OperationContext } from './operations.js';
import { listenOn } from '../listen.js';

export type {
  SesSimSeed,
  SesSimAccount,
  SesSimContactListSeed,
  SesSimTopicSeed,
  SesSimContactSeed,
  SesSimSuppressionSeed,
  SesSimIdentitySeed,
  SesSimConfigurationSetSeed,
  SesSimEventDestinationSeed,
  SesSimData,
  SesSimContact,
  SesSimContactList,
  SesSimSuppression,
  SubscriptionStatus,
  SuppressionReason,
} from './model.js';
export type { SesSimGenerateOptions } from './generate.js';

export interface SesSimOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Account-wide requests per second across all operations. Default 1, like SES; Infinity disables throttling. */
  rps?: number;
  /** NextToken lifetime. Default 5 minutes. */
  tokenTtlMs?: number;
  /** Clock for throttling, token expiry and default timestamps (epoch ms). */
  now?: () => number;
  seed?: SesSimSeed;
}

export interface SesSim {
  /** `http://127.0.0.1:PORT`, for `new SESv2Client({ endpoint, region, credentials })`. */
  endpoint: string;
  port: number;
  /** Adds or updates data; can be called at any time, also between paged calls. */
  seed(data: SesSimSeed): void;
  /** Removes a contact from a contact list, as SES DeleteContact does; false when it was not there. */
  deleteContact(list: string, email: string): boolean;
  /** Deterministic bulk data; see SesSimGenerateOptions for names and distributions. */
  generate(opts: SesSimGenerateOptions): void;
  /** Accepted calls per operation name; throttled calls are only counted by `throttled()`. */
  calls(): Record<string, number>;
  throttled(): number;
  resetCalls(): void;
  setRps(rps: number): void;
  /** Invalidates every NextToken issued so far. */
  expireTokens(): void;
  setTokenTtl(ms: number): void;
  data(): SesSimData;
  close(): Promise<void>;
}

interface Route {
  op: Operation;
  segments: string[];
}

const MAX_BODY_BYTES = 1024 * 1024;

function compileRoutes(): Route[] {
  return operations.map((op) => ({ op, segments: op.path.split('/').slice(1) }));
}

function match(routes: Route[], method: string, pathname: string): { op: Operation; params: Record<string, string> } | undefined {
  // Split before decoding so an encoded '/' (%2F) stays inside its label, as in SES.
  const parts = pathname.split('/').slice(1);
  for (const r of routes) {
    if (r.op.method !== method || r.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let k = 0; k < parts.length && ok; k++) {
      const seg = r.segments[k] ?? '';
      const part = parts[k] ?? '';
      if (seg.startsWith('{')) {
        try {
          params[seg.slice(1, -1)] = decodeURIComponent(part);
        } catch {
          ok = false;
        }
      } else if (seg !== part) {
        ok = false;
      }
    }
    if (ok) return { op: r.op, params };
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new SesApiError(413, 'BadRequestException', 'Request body too large.'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const json = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
    'x-amzn-requestid': randomUUID(),
  };
  // The SDK's REST-JSON error parser reads the exception name from this header.
  if (errorType) headers['x-amzn-errortype'] = errorType;
  res.writeHead(status, headers);
  res.end(json);
}

export async function startSesSim(opts: SesSimOptions = {}): Promise<SesSim> {
  const now = opts.now ?? Date.now;
  const state = new SesState(now);
  const tokens = new TokenRegistry(now, opts.tokenTtlMs ?? 5 * 60_000);
  const bucket = new TokenBucket(now, opts.rps ?? 1);
  const ctx: OperationContext = { state, tokens, now };
  const routes = compileRoutes();
  let counts: Record<string, number> = {};
  let throttledCount = 0;
  if (opts.seed) state.seed(opts.seed);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://ses-sim.invalid');
    const raw = await readBody(req);
    // Signatures are not checked (any credentials work), but a request without one is
    // a client bug that real SES rejects, so the simulator does too.
    if (!req.headers.authorization) {
      throw new SesApiError(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
    }
    const found = match(routes, req.method ?? 'GET', url.pathname);
    if (!found) throw new SesApiError(404, 'UnknownOperationException', `No SES v2 operation at ${req.method} ${url.pathname} in this simulator.`);
    if (!bucket.take()) {
      throttledCount++;
      throw new SesApiError(429, 'TooManyRequestsException', 'Too Many Requests');
    }
    counts[found.op.name] = (counts[found.op.name] ?? 0) + 1;
    let body: Record<string, unknown> = {};
    if (raw.trim() !== '') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new SesApiError(400, 'BadRequestException', 'The request body is not valid JSON.');
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new SesApiError(400, 'BadRequestException', 'The request body must be a JSON object.');
      }
      body = parsed as Record<string, unknown>;
    }
    send(res, 200, found.op.handle(ctx, { params: found.params, query: url.searchParams, body }));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return;
      if (err instanceof SesApiError) send(res, err.status, { message: err.message }, err.type);
      else send(res, 500, { message: err instanceof Error ? err.message : String(err) }, 'InternalServiceErrorException');
    });
  });
  const { port, origin } = await listenOn(server, { port: opts.port, host: opts.host });

  return {
    endpoint: origin,
    port,
    seed: (data) => state.seed(data),
    deleteContact: (list, email) => state.deleteContact(list, email),
    generate: (g) => generate(state, now(), g),
    calls: () => ({ ...counts }),
    throttled: () => throttledCount,
    resetCalls: () => {
      counts = {};
      throttledCount = 0;
    },
    setRps: (rps) => bucket.setRate(rps),
    expireTokens: () => tokens.expireAll(),
    setTokenTtl: (ms) => {
      tokens.ttlMs = ms;
    },
    data: () => state.data(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // The SDK keeps connections alive; without this, close() would wait for them to time out.
        server.closeAllConnections();
      }),
  };
}
