// Delivery workers: claim due operations, call Brevo under the governor, record the
// outcome (done, retry at a time, or dead with Brevo's code and message).
import type { Logger } from 'pino';
import { NotPersisted, persist, PERSIST_LEASE_MARGIN_MS } from './persist.js';
import type { Store, OpRow, LedgerEntry, OpKind, DueSummary } from '../store/port.js';
import { UNANSWERED_CODES } from '../store/port.js';
import type { BrevoClient } from '../brevo/client.js';
import { BrevoError, type BatchEventsResult } from '../brevo/client.js';
import type { ContactPayload, EventPayload, Lane } from '../core/plan.js';
import { PRIORITY, PRIORITY_NAMES } from '../core/plan.js';
import type { Metrics } from './metrics.js';
import { errorMessage, TajoError } from '../core/errors.js';
import { contactBody, ledgerOf, nothingToSend, resolveListChanges, type ListResolver } from './contact-body.js';
import { removeFromLists } from './list-removals.js';
import { attemptCall, type CallContext, type Outcome } from './outcome.js';
import { BrevoHealth } from './brevo-health.js';
import { ContactImports, FOLLOW_SHARE } from './imports.js';
import { DEFAULT_MAX_DEFER_MS, PollLoop, type Hold } from './loop.js';
import { isOwnerGone } from './owner.js';

export interface DeliveryOptions {
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Events per /events/batch call (Brevo takes up to 200). */
  eventBatchSize: number;
  /** Contacts claimed per round; written in parallel within the governor's budget. */
  contactBatchSize: number;
  contactConcurrency: number;
  leaseMs: number;
  /** True while webhooks saturate the process: delivery yields (at most `maxDeferMs`). */
  underPressure?: () => boolean;
  maxDeferMs?: number;
  /** Lanes written one contact at a time (POST /contacts) and whose events are sent. */
  lanes?: Lane[];
  /**
   * Fuller calls for the whole cluster: a round that would find less than a full claim waits
   * until the oldest of its operations has been due this long, as every process reads it
   * from the store (so three processes on a live stream send one call where each would have
   * sent its own). A full claim goes at once; a blocklisting waits at most
   * BLOCKLIST_LINGER_MS. 0: claim whatever is due at once. Default DEFAULT_LINGER_MS
   * (`delivery.linger`).
   */
  lingerMs?: number;
  /**
   * Looking up events in doubt by time window (Deliverer.lookupByWindow): GET /events page
   * size and the most events a window may hold. Defaults WINDOW_PAGE and WINDOW_MAX_EVENTS.
   */
  lookupWindow?: { page: number; maxEvents: number };
  /** Brevo lists by name (topic lists of Subscription events). Without it, topic membership is not written. */
  listId?: ListResolver;
  /** Lanes written in bulk through /contacts/import (backfill). */
  bulk?: {
    lanes: Lane[];
    /** Contacts per claim; split further by list set and by body size. */
    claimLimit: number;
    /** Brevo's import needs a list for every row: rows with none go to this one. */
    defaultListId: (op: OpRow) => Promise<number>;
    /** How often the bulk worker asks to follow accepted imports (imports.ts paces the calls). */
    reconcileEveryMs: number;
    /**
     * Fuller imports: rows wait until `rows` are pending, the oldest is `lingerMs` old, or a
     * backfill waits for them to be accepted (the BULK_FLUSH_KEY store state, set by any
     * process of the cluster less than FLUSH_FRESH_MS ago). Unset: claim at once.
     */
    fill?: { rows: number; lingerMs: number };
  };
}

export interface DelivererOptions {
  store: Store;
  client: BrevoClient;
  delivery: DeliveryOptions;
  /** This process's lease owner id (owner.ts). */
  owner: string;
  log: Logger;
  metrics: Metrics;
  now?: () => number;
}

/** How long in-flight Brevo calls get to finish at stop before they are cut (their leases then bring them back). */
export const DEFAULT_STOP_GRACE_MS = 20_000;

/** Wait after a delivery round that found nothing (new work cuts it short). */
const DELIVERY_IDLE_MS = 250;

/** How long a partial round waits for more (DeliveryOptions.lingerMs, `delivery.linger`). */
export const DEFAULT_LINGER_MS = 1_000;
/** A due blocklisting waits at most this long for others to share its call: Brevo must stop mailing the address soon. */
export const BLOCKLIST_LINGER_MS = 1_000;

/** How often leases that ran out are looked for: a dead worker's operations come back within this after their lease. */
const LEASE_RECOVERY_EVERY_MS = 15_000;

/**
 * When the batch endpoint spends the hourly "other" budget: the share event batches may use.
 * Following imports has FOLLOW_SHARE of it, and a tenth stays for lists and folders.
 */
const BATCH_SHARE = 1 - FOLLOW_SHARE - 0.1;

/** When the batch endpoint spends a scarcer budget: this many events or fewer go one call each. */
const SINGLE_EVENTS_PER_ROUND = 10;

/** The least a partial round of events waits while batches spend the hourly budget (see eventRoute). */
const SCARCE_BATCH_LINGER_MS = 1_000;

/** Store state: when a backfill last asked the bulk workers of every process to write what is pending now. */
export const BULK_FLUSH_KEY = 'bulk_flush_at';
/** A flush request is heard for this long (the waiting backfill renews it). */
export const FLUSH_FRESH_MS = 3_000;

/** Realtime contacts per round: large enough to batch a backlog, small enough not to stall the event loop. */
export const REALTIME_BULK_CLAIM = 500;

/**
 * Is a realtime round worth claiming now (DeliveryOptions.lingerMs)? `undefined`: yes (a full
 * claim, or the oldest due operation has waited `lingerMs` and the cluster's last round was
 * that long ago; a blocklisting BLOCKLIST_LINGER_MS); 0: nothing is due (idle); a hold: how
 * long until it will be.
 */
export function fillWait(due: DueSummary, o: { full: number; lingerMs: number; now: number }): 0 | Hold | undefined {
  if (due.count === 0) return 0;
  if (due.count >= o.full || o.lingerMs <= 0) return undefined;
  const linger = due.topPriority !== null && due.topPriority <= PRIORITY.blocklist ? Math.min(o.lingerMs, BLOCKLIST_LINGER_MS) : o.lingerMs;
  // From the oldest operation's due time, or from the cluster's last round if that is later:
  // operations a slow transaction made visible late look long due, and would otherwise go in
  // a round of their own right after the last one.
  const from = Math.max(due.oldestDueAt ?? o.now, due.lastClaimAt ?? -Infinity);
  const left = from + linger - o.now;
  return left > 0 ? { holdMs: left } : undefined;
}

/** A failed lookup must not read as a refused send (mayBeInBrevo): the doubt stays (`lookup_*`). */
function lookupError(e: unknown): BrevoError {
  return e instanceof BrevoError
    ? new BrevoError(`lookup_${e.code}`, `looking up whether Brevo holds it: ${e.message}`, e.status, e.bucket, true, e.retryAfterMs)
    : new BrevoError('lookup_error', `looking up whether Brevo holds it: ${errorMessage(e)}`, 0, 'events', true);
}

/** A GET /events answer, checked: its events and its count (when Brevo gave one). */
function eventList(res: Awaited<ReturnType<BrevoClient['listEvents']>>['data']): {
  events: NonNullable<NonNullable<typeof res>['events']>;
  count: number | undefined;
} {
  if (!res || typeof res !== 'object' || (res.events !== undefined && !Array.isArray(res.events)))
    throw new BrevoError('bad_response', 'GET /events: the answer is not a list of events', 200, 'events', true);
  return { events: res.events ?? [], count: typeof res.count === 'number' ? res.count : undefined };
}

/** Events in doubt of this many contacts or more are looked up by time window (Deliverer.lookupByWindow). */
export const WINDOW_LOOKUP_CONTACTS = 3;
/** Brevo's largest GET /events page. */
export const WINDOW_PAGE = 10_000;
/** A window holding more events than this is looked up contact by contact instead. */
export const WINDOW_MAX_EVENTS = 30_000;
/** Clock differences allowed for between SES, this host and Brevo. */
export const WINDOW_SKEW_MS = 5 * 60_000;

/** Exponential backoff with full jitter between half and all of the step. */
export function backoffMs(attempts: number, baseMs: number, maxMs: number, rand: () => number = Math.random): number {
  const step = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(step / 2 + (step / 2) * rand());
}

/**
 * Could an earlier attempt of this operation have reached Brevo unseen? Only when it was
 * tried and its last attempt got no readable answer (a reset, a timeout, a garbled body, a
 * worker that died in flight: `interrupted`), or when the lookup itself failed (`lookup_*`).
 * An answered refusal (429, 5xx) is taken to mean Brevo applied nothing: looking up every
 * event after a 5xx storm would cost two reads each.
 */
export function mayBeInBrevo(op: Pick<OpRow, 'attempts' | 'lastCode'>): boolean {
  if (op.attempts <= 1) return false;
  return op.lastCode === null || UNANSWERED_CODES.has(op.lastCode) || op.lastCode.startsWith('lookup_');
}

/** The Brevo call an operation stands for, as shown to an operator in `failures show`. */
export function plannedCall(op: Pick<OpRow, 'kind' | 'email' | 'payload'>): { method: string; path: string; body: unknown } {
  if (op.kind === 'event') return { method: 'POST', path: '/v3/events', body: op.payload };
  const p = op.payload as ContactPayload;
  return { method: 'POST', path: '/v3/contacts', body: contactBody(op.email, p, undefined) };
}

export class Deliverer {
  private running = false;
  private loops: { realtime: PollLoop[]; bulk: PollLoop | undefined; all: PollLoop[] } | undefined;
  private readonly abort = new AbortController();
  private inflight = 0;
  /** The /contacts/import path: bulk writes and following their processes to the end. */
  readonly imports: ContactImports;
  /** Brevo's health as these calls see it (brevo-health.ts). */
  readonly health: BrevoHealth;
  private readonly call: CallContext;

  private readonly opts: DeliveryOptions;
  private readonly now: () => number;

  constructor(private readonly o: DelivererOptions) {
    this.opts = o.delivery;
    this.now = o.now ?? Date.now;
    this.health = new BrevoHealth({ log: o.log, metrics: o.metrics, store: o.store, now: this.now });
    this.call = { metrics: o.metrics, health: this.health };
    this.imports = new ContactImports({ store: o.store, client: o.client, log: o.log, call: this.call, signal: this.abort.signal, now: this.now });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const realtime = [this.deliveryLoop('event'), this.deliveryLoop('contact')];
    const bulk = this.opts.bulk ? this.bulkLoop(this.opts.bulk.reconcileEveryMs) : undefined;
    this.loops = { realtime, bulk, all: [...realtime, this.maintenanceLoop(), ...(bulk ? [bulk] : [])] };
    for (const l of this.loops.all) l.start();
  }

  /**
   * New work arrived: stop idling. `realtime` (what planning webhooks produces) leaves the
   * bulk loop of the backfill lane asleep: waking it would only cost an empty claim.
   * `urgent` (a blocklisting was planned) also ends a realtime loop's wait for a fuller round.
   */
  wake(scope: 'all' | 'realtime' = 'all', o: { urgent?: boolean } = {}): void {
    for (const l of this.loops?.realtime ?? []) l.wake(o);
    if (scope === 'all') this.loops?.bulk?.wake();
  }

  /**
   * Stops claiming and waits for in-flight calls to finish (they are recorded as done or
   * retried). After `graceMs` the calls are cut; their leases then expire and a restart
   * delivers them again. Brevo does not deduplicate events, so a call whose answer was
   * lost can arrive twice; each carries its `event_key` for automations to dedupe on.
   */
  async stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    if (!this.running) return;
    this.running = false;
    const timer = setTimeout(() => this.abort.abort(new TajoError('shutting_down', 'shutdown', { retryable: true })), graceMs);
    try {
      await Promise.all((this.loops?.all ?? []).map((l) => l.stop()));
    } finally {
      clearTimeout(timer);
      await this.health.flush();
    }
  }

  get busy(): number {
    return this.inflight;
  }

  /** Work whose worker died (lease expired) becomes due again, also in a long-running process. */
  private maintenanceLoop(): PollLoop {
    return new PollLoop({
      round: async () => {
        const n = await this.o.store.recoverExpired(this.now());
        if (n > 0) this.o.log.info({ operations: n }, 'resumed operations whose lease expired');
        // Another process of this host that died (SIGKILL): its work comes back now, not at its leases' end.
        for (const owner of await this.o.store.leaseOwners()) {
          if (!isOwnerGone(owner)) continue;
          const back = await this.o.store.releaseOwner(owner);
          if (back > 0) this.o.log.info({ owner, operations: back }, 'resumed operations of a process that died on this host');
        }
        return 0; // one round per LEASE_RECOVERY_EVERY_MS, whatever it found
      },
      onError: (err) => this.o.log.warn({ err: errorMessage(err) }, 'lease recovery failed; will retry'),
      idleMs: LEASE_RECOVERY_EVERY_MS,
      retryMs: 0,
      idleFirst: true,
    });
  }

  private deliveryLoop(kind: OpKind): PollLoop {
    return new PollLoop({
      round: () => this.realtimeRound(kind),
      onError: (err) => this.o.log.error({ err: errorMessage(err), kind }, 'delivery round failed; will retry'),
      idleMs: DELIVERY_IDLE_MS,
      ...(this.opts.underPressure ? { defer: { underPressure: this.opts.underPressure, maxDeferMs: this.opts.maxDeferMs ?? DEFAULT_MAX_DEFER_MS } } : {}),
      now: this.now,
    });
  }

  /** Operations of a kind one realtime round claims. */
  private realtimeClaim(kind: OpKind): number {
    if (kind === 'event') return this.opts.eventBatchSize;
    // A backlog is written in bulk: one import call per list instead of one call per contact.
    return this.opts.bulk ? Math.max(this.opts.contactBatchSize, REALTIME_BULK_CLAIM) : this.opts.contactBatchSize;
  }

  /**
   * One realtime round of `kind`: claims what is due once it is worth a call (fillWait, judged
   * by the store for the whole cluster: the process that finds a partial round due takes all
   * of it, and the others judge what is left), or returns the hold until it will be.
   */
  private async realtimeRound(kind: OpKind): Promise<number | Hold> {
    let lingerMs = this.opts.lingerMs ?? DEFAULT_LINGER_MS;
    if (kind === 'event' && this.scarceBatches()) lingerMs = Math.max(lingerMs, SCARCE_BATCH_LINGER_MS);
    const full = this.realtimeClaim(kind);
    const now = this.now();
    const judged: { wait?: 0 | Hold } = {};
    const ops = await this.o.store.claimOps({
      kind,
      lanes: this.opts.lanes,
      limit: full,
      owner: this.o.owner,
      leaseMs: this.opts.leaseMs,
      now,
      ...(lingerMs > 0 ? { when: (due: DueSummary) => (judged.wait = fillWait(due, { full, lingerMs, now })) === undefined } : {}),
    });
    if (judged.wait !== undefined) return judged.wait;
    if (ops.length === 0) return 0;
    return kind === 'event' ? this.deliverEvents(ops) : this.deliverContacts(ops);
  }

  private bulkLoop(reconcileEveryMs: number): PollLoop {
    let lastReconcile = 0;
    return new PollLoop({
      round: async () => {
        const n = await this.deliverContactsBulk();
        if (this.now() - lastReconcile >= reconcileEveryMs) {
          lastReconcile = this.now();
          await this.imports.reconcile();
        }
        return n;
      },
      onError: (err) => this.o.log.error({ err: errorMessage(err) }, 'bulk contact round failed; will retry'),
      idleMs: DELIVERY_IDLE_MS,
      now: this.now,
    });
  }

  /** One round of claimed events; returns how many operations it handled. */
  private deliverEvents(ops: OpRow[]): Promise<number> {
    return this.guarded(ops, async () => {
      // An operation tried before may already be in Brevo (an answer lost to a reset or a
      // timeout, a 5xx from a gateway after Brevo applied it, or a process killed between
      // Brevo's answer and the store's commit): Brevo does not deduplicate events, so it is
      // looked up by its event_key before a resend.
      const known = await this.alreadyInBrevo(ops.filter(mayBeInBrevo));
      const send = ops.filter((o) => !known.has(o.id));
      const sent = send.length > 0 ? await this.sendEventOps(send) : [];
      const byId = new Map(send.map((o, i) => [o.id, sent[i]!]));
      await this.settle(
        ops,
        ops.map((o) => known.get(o.id) ?? byId.get(o.id)!),
      );
      return ops.length;
    });
  }

  /**
   * How claimed events go out. When Brevo counts POST /events/batch in the same budget as
   * POST /events (its published table), in one batch call. When the batch endpoint spends
   * another budget (learned from Brevo's headers: the hourly 100 of "other endpoints", which
   * import follow-ups also need), a few events go one call each on the events budget, and a
   * backlog in batches only while that other budget is free and less than BATCH_SHARE spent
   * (the rest is for following imports and for lists); then one by one, so that neither
   * budget waits while the other has room.
   */
  /** Does POST /events/batch spend another (scarcer) budget than POST /events? */
  private scarceBatches(): boolean {
    const g = this.o.client.governor;
    return g !== undefined && g.bucketFor('POST', '/events/batch') !== g.bucketFor('POST', '/events');
  }

  eventRoute(count: number): 'batch' | 'single' {
    if (count === 1) return 'single';
    const g = this.o.client.governor;
    if (!g) return 'batch';
    const batch = g.bucketFor('POST', '/events/batch');
    if (batch === g.bucketFor('POST', '/events')) return 'batch';
    if (count <= SINGLE_EVENTS_PER_ROUND) return 'single';
    return g.waitMs(batch) === 0 && g.spent(batch) < BATCH_SHARE ? 'batch' : 'single';
  }

  /** One POST /events per event, `contactConcurrency` at a time (the governor paces them). */
  private async sendEventsOneByOne(ops: OpRow[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array<Outcome>(ops.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < ops.length; i = next++) {
        outcomes[i] = await attemptCall(this.call, 'events', () => this.o.client.sendEvent(ops[i]!.payload as EventPayload, this.abort.signal));
      }
    };
    await Promise.all(Array.from({ length: Math.min(ops.length, Math.max(1, this.opts.contactConcurrency)) }, worker));
    return outcomes;
  }

  /**
   * For event operations that were tried before: `done` for those Brevo already holds (same
   * event_key), `retry` for those the lookup could not settle (Brevo failing). The others are
   * absent from the map: send them. Events of a few contacts are looked up contact by contact
   * (GET /contacts/{email}, then GET /events of that contact: two small reads each); those of
   * more contacts (a round a dead process left in doubt) by the time window they can be in
   * (lookupByWindow: one read for all of them, unless the window holds too many events).
   */
  private async alreadyInBrevo(ops: OpRow[]): Promise<Map<number, Outcome>> {
    if (ops.length === 0) return new Map();
    if (new Set(ops.map((o) => (o.payload as EventPayload).identifiers.email_id)).size >= WINDOW_LOOKUP_CONTACTS) {
      const found = await this.lookupByWindow(ops);
      if (found) return found;
    }
    return this.lookupByContact(ops);
  }

  /**
   * GET /events of the event names in doubt over the window in which Brevo can hold them,
   * whichever date Brevo filters on: the event's own date (event_date, sent as is) or when
   * Brevo received it (after the operation was created, by our clock): from the earliest of
   * both, less WINDOW_SKEW_MS, to now plus WINDOW_SKEW_MS. Paged by `offset`; events that
   * arrive meanwhile only push others to later pages, so none is skipped. Undefined when the
   * window holds more than WINDOW_MAX_EVENTS (looking up contact by contact is then cheaper).
   */
  private async lookupByWindow(ops: OpRow[]): Promise<Map<number, Outcome> | undefined> {
    const { page, maxEvents } = this.opts.lookupWindow ?? { page: WINDOW_PAGE, maxEvents: WINDOW_MAX_EVENTS };
    const payloads = ops.map((o) => o.payload as EventPayload);
    const from = Math.min(...ops.map((o, i) => Math.min(o.createdAt, Date.parse(payloads[i]!.event_date) || o.createdAt))) - WINDOW_SKEW_MS;
    const q = {
      eventNames: [...new Set(payloads.map((p) => p.event_name))].sort(),
      startDate: new Date(from).toISOString(),
      endDate: new Date(this.now() + WINDOW_SKEW_MS).toISOString(),
      limit: page,
    };
    const keys = new Set<string>();
    let tooMany = false;
    const outcome = await attemptCall(this.call, 'events_lookup', async () => {
      for (let offset = 0; ; offset += page) {
        const { events, count } = eventList((await this.o.client.listEvents({ ...q, offset }, this.abort.signal)).data);
        if (offset === 0 && count !== undefined && count > maxEvents) {
          tooMany = true;
          return;
        }
        for (const e of events) {
          const key = e?.event_properties?.event_key;
          if (typeof key === 'string') keys.add(`${e.event_name ?? ''}\n${key}`);
        }
        if (events.length < page || (count !== undefined && offset + page >= count)) return;
        if (offset + page >= maxEvents) {
          tooMany = true; // no count, and more pages than that: not seen whole
          return;
        }
      }
    });
    if (tooMany) return undefined;
    const out = new Map<number, Outcome>();
    if (outcome.kind === 'retry') {
      const err = lookupError(outcome.err);
      for (const op of ops) out.set(op.id, { ...outcome, err });
      return out;
    }
    // A lookup Brevo refuses for good (`dead`) cannot tell: the events are sent (at least once wins).
    if (outcome.kind !== 'done') return out;
    ops.forEach((op, i) => {
      if (keys.has(`${payloads[i]!.event_name}\n${payloads[i]!.event_properties.event_key}`)) out.set(op.id, { kind: 'done' });
    });
    return out;
  }

  /** alreadyInBrevo for events of a few contacts: the contact's id, then its events of that name. */
  private async lookupByContact(ops: OpRow[]): Promise<Map<number, Outcome>> {
    const out = new Map<number, Outcome>();
    const contactIds = new Map<string, number | null>();
    // One GET /events per contact and event name in a round (a batch cut off holds several).
    const keysOf = new Map<string, Set<unknown>>();
    for (const op of ops) {
      const p = op.payload as EventPayload;
      let found = false;
      const outcome = await attemptCall(this.call, 'events_lookup', async () => {
        const email = p.identifiers.email_id;
        let id = contactIds.get(email);
        if (id === undefined) {
          try {
            const c = (await this.o.client.getContact(email, this.abort.signal)).data;
            if (typeof c?.id !== 'number') throw new BrevoError('bad_response', `GET /contacts/{email}: no contact id in the answer`, 200, 'contacts', true);
            id = c.id;
          } catch (err) {
            if (!(err instanceof BrevoError && err.status === 404)) throw err;
            id = null;
          }
          contactIds.set(email, id);
        }
        if (id === null) return;
        const listed = `${id}\n${p.event_name}`;
        let keys = keysOf.get(listed);
        if (!keys) {
          const { events } = eventList((await this.o.client.listEvents({ contactIds: [id], eventNames: [p.event_name], limit: 1000 }, this.abort.signal)).data);
          keys = new Set(events.map((e) => e?.event_properties?.event_key));
          keysOf.set(listed, keys);
        }
        found = keys.has(p.event_properties.event_key);
      });
      if (outcome.kind === 'retry') out.set(op.id, { ...outcome, err: lookupError(outcome.err) });
      else if (outcome.kind === 'done' && found) out.set(op.id, { kind: 'done' });
      // A lookup Brevo refuses for good (`dead`) cannot tell: the event is sent (at least once wins).
    }
    return out;
  }

  /** Sends event operations (one call, or a batch); one outcome per operation. */
  private async sendEventOps(ops: OpRow[]): Promise<Outcome[]> {
    if (this.eventRoute(ops.length) === 'single') return this.sendEventsOneByOne(ops);
    let partial: BatchEventsResult | undefined;
    const outcome = await attemptCall(this.call, 'events_batch', async () => {
      const res = await this.o.client.sendEvents(
        ops.map((o) => o.payload as EventPayload),
        this.abort.signal,
      );
      if (res.status === 207) partial = res.data;
    });
    if (outcome.kind === 'dead') {
      // One bad event must not sink the batch: send them one by one to find it.
      this.o.log.warn({ count: ops.length, err: errorMessage(outcome.err) }, 'event batch refused; isolating the bad event(s) one by one');
      const outcomes: Outcome[] = [];
      for (const op of ops) outcomes.push(await attemptCall(this.call, 'events', () => this.o.client.sendEvent(op.payload as EventPayload, this.abort.signal)));
      return outcomes;
    }
    if (partial) {
      // 207: Brevo applied the others; only the listed indexes are refused, for good.
      const refused = new Map<number, string>();
      for (const e of partial.errors ?? []) {
        for (const i of Array.isArray(e.eventIndex) ? e.eventIndex : e.eventIndex === undefined ? [] : [e.eventIndex])
          refused.set(i, e.message ?? 'refused in batch');
      }
      return ops.map((_, i): Outcome =>
        refused.has(i)
          ? { kind: 'dead', err: new BrevoError('invalid_parameter', `POST /events/batch refused event ${i}: ${refused.get(i)}`, 207, 'events', false) }
          : { kind: 'done' },
      );
    }
    return ops.map(() => outcome);
  }

  /** One round of claimed contact operations: single writes, or imports for a backlog. */
  private async deliverContacts(ops: OpRow[]): Promise<number> {
    const bulk = this.opts.bulk;
    if (bulk && (await this.imports.preferred(ops))) return this.importOps(ops, bulk.defaultListId);
    return this.guarded(ops, async () => {
      const ledger = await this.o.store.getLedger(ops.map((o) => o.email));
      const lists = await resolveListChanges(ops, ledger, this.opts.listId);
      const outcomes: Outcome[] = new Array(ops.length);
      let next = 0;
      const worker = async () => {
        while (next < ops.length) {
          const i = next++;
          const op = ops[i]!;
          const body = contactBody(op.email, op.payload as ContactPayload, ledger.get(op.email), lists[i]!.add);
          if (nothingToSend(body)) {
            outcomes[i] = { kind: 'done', ledger: ledgerOf(op) };
            continue;
          }
          const o = await attemptCall(this.call, 'contacts', () => this.o.client.upsertContact(body, this.abort.signal));
          outcomes[i] = o.kind === 'done' ? { kind: 'done', ledger: ledgerOf(op) } : o;
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.opts.contactConcurrency, ops.length) }, worker));
      await removeFromLists(this.o.client, this.call, ops, lists, outcomes, this.abort.signal);
      await this.settle(ops, outcomes);
      return ops.length;
    });
  }

  /** One round of bulk contact writes through /contacts/import; returns how many operations it handled. */
  async deliverContactsBulk(): Promise<number> {
    const bulk = this.opts.bulk;
    if (!bulk) return 0;
    if (bulk.fill && !(await this.bulkDue(bulk.lanes, bulk.fill))) return 0;
    const ops = await this.o.store.claimOps({
      kind: 'contact',
      lanes: bulk.lanes,
      limit: bulk.claimLimit,
      owner: this.o.owner,
      leaseMs: this.opts.leaseMs,
      now: this.now(),
    });
    if (ops.length === 0) return 0;
    return this.importOps(ops, bulk.defaultListId);
  }

  /** Are the pending bulk contacts worth an import now (see DeliveryOptions.bulk.fill)? */
  private async bulkDue(lanes: Lane[], fill: { rows: number; lingerMs: number }): Promise<boolean> {
    const now = this.now();
    const due = await this.o.store.pendingDue({ kind: 'contact', lanes, now, limit: fill.rows });
    if (due.count === 0) return false;
    if (due.count >= fill.rows) return true;
    if (now - (due.oldestDueAt ?? now) >= fill.lingerMs) return true;
    const flush = Number((await this.o.store.getState(BULK_FLUSH_KEY)) ?? 0);
    return this.now() - flush < FLUSH_FRESH_MS;
  }

  /** Writes claimed contact operations through /contacts/import (see imports.ts). */
  private importOps(ops: OpRow[], defaultListId: (op: OpRow) => Promise<number>): Promise<number> {
    return this.guarded(ops, async () => {
      await this.settle(ops, await this.imports.write(ops, defaultListId, this.opts.listId));
      return ops.length;
    });
  }

  /**
   * Runs one round on claimed operations. If the round itself fails (store error, a list
   * that cannot be created), its operations go back to the queue instead of waiting for
   * their lease to run out.
   */
  private async guarded(ops: OpRow[], fn: () => Promise<number>): Promise<number> {
    this.inflight += ops.length;
    try {
      return await fn();
    } catch (err) {
      if (err instanceof NotPersisted) {
        this.o.log.error(
          { err: errorMessage(err.cause), operations: ops.length },
          'the store did not take the outcome of delivered operations; their lease brings them back (they may be sent again)',
        );
        return ops.length;
      }
      this.o.log.error({ err: errorMessage(err), operations: ops.length }, 'delivery round failed; its operations are queued again');
      const now = this.now();
      const at = now + backoffMs(1, this.opts.backoffBaseMs, this.opts.backoffMaxMs);
      await this.o.store
        .retryOps(
          ops.map((o) => ({ id: o.id, nextAt: at, code: 'internal_error', message: errorMessage(err) })),
          now,
        )
        .catch(() => undefined);
      return ops.length;
    } finally {
      this.inflight -= ops.length;
    }
  }

  private async settle(ops: OpRow[], outcomes: Outcome[]): Promise<void> {
    const now = this.now();
    const done: number[] = [];
    const ledger: LedgerEntry[] = [];
    const accepted = new Map<string, { ids: number[]; ledger: LedgerEntry[] }>();
    const retry: Array<{ id: number; nextAt: number; code: string; message: string; status?: number }> = [];
    const dead: Array<{ id: number; code: string; message: string; status?: number }> = [];
    // A batch's operations share one outcome: its streak is announced once.
    const announced = new Set<Outcome>();
    const announce = (o: Outcome, retry: { attempts: number; nextAt: number | undefined }) => {
      if (announced.has(o)) return;
      announced.add(o);
      this.health.announce(retry);
    };
    ops.forEach((op, i) => {
      const o = outcomes[i]!;
      if (o.kind === 'done') {
        done.push(op.id);
        if (o.ledger) ledger.push(o.ledger);
        this.o.metrics.delivered.inc({ kind: op.kind });
        return;
      }
      if (o.kind === 'accepted') {
        const a = accepted.get(o.ref) ?? { ids: [], ledger: [] };
        a.ids.push(op.id);
        if (o.ledger) a.ledger.push(o.ledger);
        accepted.set(o.ref, a);
        return;
      }
      const be = o.err instanceof BrevoError ? o.err : undefined;
      const code = be?.code ?? 'error';
      const message = errorMessage(o.err);
      const status = be?.status;
      if (o.kind === 'dead' || op.attempts >= this.opts.maxAttempts) {
        if (o.streakStart) announce(o, { attempts: op.attempts, nextAt: undefined });
        dead.push({ id: op.id, code, message, ...(status ? { status } : {}) });
        this.o.metrics.dead.inc({ kind: op.kind, code });
        this.o.log.warn(
          { op: op.id, kind: op.kind, key: op.key, code, status, attempts: op.attempts, priority: PRIORITY_NAMES[op.priority] },
          `dead letter: ${message}`,
        );
      } else {
        const wait = Math.max(be?.retryAfterMs ?? 0, backoffMs(op.attempts, this.opts.backoffBaseMs, this.opts.backoffMaxMs));
        if (o.streakStart) announce(o, { attempts: op.attempts, nextAt: now + wait });
        retry.push({ id: op.id, nextAt: now + wait, code, message, ...(status ? { status } : {}) });
        this.o.metrics.retried.inc({ kind: op.kind, code });
      }
    });
    // Brevo has answered: the record must not be lost to a store that is briefly away.
    const deadline = Math.min(...ops.map((o) => o.updatedAt)) + this.opts.leaseMs - PERSIST_LEASE_MARGIN_MS;
    const { store } = this.o;
    if (done.length > 0 || ledger.length > 0) await this.record(() => store.completeOps(done, now, ledger), deadline);
    for (const [ref, a] of accepted) await this.record(() => store.awaitOps(a.ids, ref, now, a.ledger), deadline);
    if (retry.length > 0) await this.record(() => store.retryOps(retry, now), deadline);
    if (dead.length > 0) await this.record(() => store.deadOps(dead, now), deadline);
  }

  /**
   * Records outcomes of calls Brevo has answered (persist.ts): while the store cannot take
   * them they are tried again, the operations staying leased to this worker; queueing them
   * again instead would send what Brevo already applied a second time. Gives up when the
   * lease runs short or at the end of stop's grace period (the lease then brings the
   * operations back, and they may be sent again).
   */
  private record(write: () => Promise<void>, deadline: number): Promise<void> {
    return persist(write, {
      what: 'delivery outcomes',
      deadline,
      now: this.now,
      log: this.o.log,
      stopped: () => this.abort.signal.aborted,
      signal: this.abort.signal,
    });
  }
}
