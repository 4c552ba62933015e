// Public types of the Brevo API v3 simulator. Kept apart from the server so callers
// (tests, demo, benchmarks) can import them without pulling in node:http.

export type BrevoPlan = 'general' | 'advanced' | 'extended' | 'unlimited';

export type RateLimitBucket = 'contacts' | 'events' | 'other';

export interface BrevoFaults {
  /** 0..1 fraction of requests answered 500/502/503 (picked at random), body `{code:'internal_error', message}`; nothing is applied. */
  errorRate: number;
  /** 0..1 fraction answered 429 even within budget (a "burst"); nothing is applied. */
  throttleRate: number;
  /** Added latency per request, in milliseconds. */
  latencyMs: number;
  /** 0..1 fraction where the socket is destroyed BEFORE the request is applied (a lost request). */
  dropRate: number;
  /**
   * 0..1 fraction where the request IS applied and then the socket is destroyed without a
   * response (a lost response: the client cannot tell it from a lost request, so its retry
   * must be idempotent). Independent of `dropRate`. Default 0.
   */
  dropAfterApplyRate?: number;
  /** 0..1 fraction answered 429 within budget WITHOUT any x-sib-ratelimit-* header (a gateway's 429); nothing is applied. Default 0. */
  throttleBareRate?: number;
  /**
   * 0..1 fraction that is never answered: the request is held (not applied) for `hangMs`, then
   * its socket is destroyed, so a client with a shorter timeout gives up first. Default 0.
   */
  hangRate?: number;
  /** How long a hung request is held before its socket is destroyed. Default 60000. */
  hangMs?: number;
  /**
   * 0..1 fraction where the request IS applied and answered 200 with a body that is not JSON
   * (cut short), as a broken proxy would. Default 0.
   */
  malformedRate?: number;
  /**
   * Seconds from now during which every API call is answered 503 and nothing is applied (an
   * outage window); 0 ends a running one. Write-only: `POST /sim/faults` answers the end as
   * `outageUntil` (ms since epoch).
   */
  outageSeconds?: number;
  /** Seed of a deterministic PRNG; without it faults use Math.random. */
  seed?: number;
}

export interface BrevoSimOptions {
  /** Default 0 (ephemeral). */
  port?: number;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Default 'sim-key'; requests must send it in the `api-key` header. */
  apiKey?: string;
  /** Rate-limit table; 'unlimited' disables limits. Default 'general'. */
  plan?: BrevoPlan;
  /** How long a /contacts/import process stays queued/in_process before it is applied. Default 50. */
  importDelayMs?: number;
  /**
   * Largest accepted /contacts/import request body in bytes. Default 8 MB: Brevo documents a
   * 10 MB maximum but recommends staying around 8 MB, and the connector promises the latter.
   */
  importMaxBytes?: number;
  faults?: Partial<BrevoFaults>;
  /**
   * The rate-limit bucket POST /v3/events/batch counts in: 'events' (default, with POST
   * /v3/events) or 'other' (the hourly budget of endpoints outside Brevo's table, with
   * /v3/processes).
   */
  eventsBatchBucket?: 'events' | 'other';
  /** Clock (ms since epoch) for rate-limit windows and timestamps. Default Date.now. */
  now?: () => number;
}

export interface SimContact {
  email: string;
  id: number;
  attributes: Record<string, unknown>;
  emailBlacklisted: boolean;
  listIds: number[];
  createdAt: string;
  modifiedAt: string;
}

export interface SimEvent {
  event_name: string;
  event_date?: string;
  identifiers: Record<string, string>;
  contact_properties?: Record<string, unknown>;
  event_properties?: Record<string, unknown>;
  receivedAt: string;
}

export interface SimProcess {
  id: number;
  status: string;
  name: string;
  createdAt: string;
  completedAt?: string;
  notifyUrl?: string;
  /** Simulator-only: what a completed import did not apply (see routes.ts, GET /v3/processes/{id}). */
  import_report?: { invalid: Array<{ email: string; reason: string }> };
}

export interface SimDroppedValue {
  email: string;
  attribute: string;
  value: unknown;
  reason: string;
  /** The route or mechanism that carried the value (e.g. 'PUT /v3/contacts', 'import', 'event'). */
  source: string;
}

/** Every request that carried `emailBlacklisted: false` (or changed a contact's email, which Brevo also treats as an unblock). */
export interface SimUnblock {
  email: string;
  source: string;
  wasBlacklisted: boolean;
  at: string;
}

export interface BrevoSimState {
  contacts: Record<string /* lower-case email */, SimContact>;
  attributes: Array<{ category: string; name: string; type: string }>;
  folders: Array<{ id: number; name: string }>;
  lists: Array<{ id: number; name: string; folderId: number }>;
  events: SimEvent[];
  processes: SimProcess[];
  /** Values Brevo would silently drop (unknown attribute, wrong type); the request still succeeded. */
  dropped: SimDroppedValue[];
  unblocks: SimUnblock[];
}

/** Counts of what the simulator holds (GET /sim/stats and BrevoSim.summary()). */
export interface BrevoSimSummary {
  contacts: number;
  blocklisted: number;
  events: number;
  lists: number;
  /** /contacts/import processes accepted, and those not applied yet. */
  imports: number;
  importsOpen: number;
  /** Attribute values Brevo would have dropped silently, and requests that unblocked a contact. */
  dropped: number;
  unblocks: number;
}

export interface BrevoSimStats {
  requests: number;
  /** Keyed by `METHOD /v3/route/:param`; unmatched paths count under 'UNMATCHED'. */
  byRoute: Record<string, number>;
  /** Keyed by HTTP status; destroyed sockets count under 'dropped' and 'dropped_after_apply'. */
  status: Record<string, number>;
  /** 429 answers, over budget or injected. */
  throttled: number;
  /** The same 429 answers by route (`METHOD /v3/route/:param`). */
  throttledByRoute: Record<string, number>;
  byBucket: Record<string, number>;
  /**
   * Per bucket, the most requests that took its budget within any 1 s (a sliding window of
   * 1000 ms, so whatever the alignment of Brevo's own windows): what a client must keep
   * under the plan's per-second limit. Answers not counted against the budget (401, 429,
   * outage 503s) are not in it.
   */
  peakPerSecond: Record<string, number>;
  /**
   * Injected faults by kind: error, throttle, throttle_bare, dropped, dropped_after_apply, hang,
   * malformed, outage (429s from the real budget are not faults: see `throttled`).
   */
  faults: Record<string, number>;
}

export interface BrevoSim {
  /** Base URL including /v3, e.g. http://127.0.0.1:PORT/v3 */
  url: string;
  port: number;
  apiKey: string;
  setFaults(f: Partial<BrevoFaults>): void;
  /** Deep copy; safe to keep and compare. */
  state(): BrevoSimState;
  /** One contact by email (any case), or undefined. Cheaper than state() in hot loops. */
  contact(email: string): SimContact | undefined;
  stats(): BrevoSimStats;
  summary(): BrevoSimSummary;
  /** Resolves once every import accepted so far has been applied. */
  settle(): Promise<void>;
  /** Clears data, stats, rate-limit windows and pending imports; faults and options are kept (a seeded PRNG restarts from its seed). */
  reset(): void;
  close(): Promise<void>;
}
