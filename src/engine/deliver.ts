// Delivery workers: claim due operations, call Brevo under the governor, record the
// outcome (done, retry at a time, or dead with Brevo's code and message).
import type { Logger } from 'pino';
import type { Store, OpRow, LedgerEntry, OpKind } from '../store/port.js';
import type { BrevoClient } from '../brevo/client.js';
import { BrevoError, type BatchEventsResult } from '../brevo/client.js';
import type { ContactPayload, EventPayload, Lane } from '../core/plan.js';
import { PRIORITY_NAMES } from '../core/plan.js';
import type { Metrics } from './metrics.js';
import { errorMessage } from '../core/errors.js';

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
  lanes?: Lane[];
}

/** Exponential backoff with full jitter between half and all of the step. */
export function backoffMs(attempts: number, baseMs: number, maxMs: number, rand: () => number = Math.random): number {
  const step = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(step / 2 + (step / 2) * rand());
}

/** The Brevo call an operation stands for, as shown to an operator in `failures show`. */
export function plannedCall(op: Pick<OpRow, 'kind' | 'email' | 'payload'>): { method: string; path: string; body: unknown } {
  if (op.kind === 'event') return { method: 'POST', path: '/v3/events', body: op.payload };
  const p = op.payload as ContactPayload;
  return { method: 'POST', path: '/v3/contacts', body: contactBody(op.email, p, undefined) };
}

function contactBody(email: string, p: ContactPayload, ledger: LedgerEntry | undefined): { email: string; attributes?: Record<string, string | number | boolean>; emailBlacklisted?: true; listIds?: number[] } {
  const attributes: Record<string, string | number | boolean> = {};
  for (const [name, ch] of Object.entries(p.attrs)) {
    const held = ledger?.attrs[name];
    if (held === undefined || ch.at > held) attributes[name] = ch.v;
  }
  const body: { email: string; attributes?: Record<string, string | number | boolean>; emailBlacklisted?: true; listIds?: number[] } = { email };
  if (Object.keys(attributes).length > 0) body.attributes = attributes;
  if (p.blocklist && !ledger?.blocklisted) body.emailBlacklisted = true;
  if (p.listIds && p.listIds.length > 0) body.listIds = p.listIds;
  return body;
}

type Outcome = { kind: 'done'; ledger?: LedgerEntry } | { kind: 'retry'; err: BrevoError | Error } | { kind: 'dead'; err: BrevoError | Error };

export class Deliverer {
  private running = false;
  private loops: Promise<void>[] = [];
  private wakeups = new Set<() => void>();
  private readonly abort = new AbortController();
  private inflight = 0;

  constructor(
    private readonly store: Store,
    private readonly client: BrevoClient,
    private readonly opts: DeliveryOptions,
    private readonly owner: string,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = [this.loop('event'), this.loop('contact')];
  }

  /** New work arrived: stop idling. */
  wake(): void {
    for (const w of this.wakeups) w();
  }

  /**
   * Stops claiming and waits for in-flight calls to finish (they are recorded as done or
   * retried). After `graceMs` the calls are cut; their leases then expire and a restart
   * delivers them again, safely, because event keys make the retry idempotent downstream.
   */
  async stop(graceMs = 20_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    const timer = setTimeout(() => this.abort.abort(new Error('shutdown')), graceMs);
    try {
      await Promise.all(this.loops);
    } finally {
      clearTimeout(timer);
    }
  }

  get busy(): number {
    return this.inflight;
  }

  private async idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakeups.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakeups.add(done);
    });
  }

  private async loop(kind: OpKind): Promise<void> {
    while (this.running) {
      let n = 0;
      try {
        n = kind === 'event' ? await this.deliverEvents() : await this.deliverContacts();
      } catch (err) {
        this.log.error({ err: errorMessage(err), kind }, 'delivery round failed; will retry');
        await this.idle(1000);
      }
      if (n === 0 && this.running) await this.idle(250);
    }
  }

  /** One round of events; returns how many operations it handled. */
  async deliverEvents(): Promise<number> {
    const ops = await this.store.claimOps({ kind: 'event', lanes: this.opts.lanes, limit: this.opts.eventBatchSize, owner: this.owner, leaseMs: this.opts.leaseMs, now: this.now() });
    if (ops.length === 0) return 0;
    this.inflight += ops.length;
    try {
      if (ops.length === 1) {
        await this.settle(ops, [await this.call(ops[0]!, () => this.client.sendEvent(ops[0]!.payload as EventPayload, this.abort.signal), 'events')]);
        return 1;
      }
      let partial: BatchEventsResult | undefined;
      const outcome = await this.attempt(async () => {
        const res = await this.client.sendEvents(ops.map((o) => o.payload as EventPayload), this.abort.signal);
        if (res.status === 207) partial = res.data;
      }, 'events_batch');
      if (outcome.kind === 'dead') {
        // One bad event must not sink the batch: send them one by one to find it.
        this.log.warn({ count: ops.length, err: errorMessage(outcome.err) }, 'event batch refused; isolating the bad event(s) one by one');
        const outcomes: Outcome[] = [];
        for (const op of ops) outcomes.push(await this.call(op, () => this.client.sendEvent(op.payload as EventPayload, this.abort.signal), 'events'));
        await this.settle(ops, outcomes);
      } else if (partial) {
        // 207: Brevo applied the others; only the listed indexes are refused, for good.
        const refused = new Map<number, string>();
        for (const e of partial.errors ?? []) {
          for (const i of Array.isArray(e.eventIndex) ? e.eventIndex : e.eventIndex === undefined ? [] : [e.eventIndex]) refused.set(i, e.message ?? 'refused in batch');
        }
        await this.settle(
          ops,
          ops.map((_, i): Outcome => (refused.has(i) ? { kind: 'dead', err: new BrevoError('invalid_parameter', `POST /events/batch refused event ${i}: ${refused.get(i)}`, 207, 'events', false) } : { kind: 'done' })),
        );
      } else {
        await this.settle(ops, ops.map(() => outcome));
      }
      return ops.length;
    } finally {
      this.inflight -= ops.length;
    }
  }

  async deliverContacts(): Promise<number> {
    const ops = await this.store.claimOps({ kind: 'contact', lanes: this.opts.lanes, limit: this.opts.contactBatchSize, owner: this.owner, leaseMs: this.opts.leaseMs, now: this.now() });
    if (ops.length === 0) return 0;
    this.inflight += ops.length;
    try {
      const ledger = await this.store.getLedger(ops.map((o) => o.email));
      const outcomes: Outcome[] = new Array(ops.length);
      let next = 0;
      const worker = async () => {
        while (next < ops.length) {
          const i = next++;
          const op = ops[i]!;
          const p = op.payload as ContactPayload;
          const body = contactBody(op.email, p, ledger.get(op.email));
          const entry: LedgerEntry = { email: op.email, attrs: Object.fromEntries(Object.entries(p.attrs).map(([k, c]) => [k, c.at])), blocklisted: p.blocklist };
          if (!body.attributes && !body.emailBlacklisted && !body.listIds) {
            // Brevo already holds newer values for everything: nothing to send.
            outcomes[i] = { kind: 'done', ledger: entry };
            continue;
          }
          const o = await this.call(op, () => this.client.upsertContact(body, this.abort.signal), 'contacts');
          outcomes[i] = o.kind === 'done' ? { kind: 'done', ledger: entry } : o;
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.opts.contactConcurrency, ops.length) }, worker));
      await this.settle(ops, outcomes);
      return ops.length;
    } finally {
      this.inflight -= ops.length;
    }
  }

  private async attempt(fn: () => Promise<unknown>, endpoint: string): Promise<Outcome> {
    try {
      await fn();
      this.metrics.brevoCalls.inc({ endpoint, status: 'ok' });
      return { kind: 'done' };
    } catch (err) {
      const status = err instanceof BrevoError ? String(err.status) : 'error';
      this.metrics.brevoCalls.inc({ endpoint, status });
      if (err instanceof BrevoError && !err.retryable) return { kind: 'dead', err };
      return { kind: 'retry', err: err as Error };
    }
  }

  private call(_op: OpRow, fn: () => Promise<unknown>, endpoint: string): Promise<Outcome> {
    return this.attempt(fn, endpoint);
  }

  private async settle(ops: OpRow[], outcomes: Outcome[]): Promise<void> {
    const now = this.now();
    const done: number[] = [];
    const ledger: LedgerEntry[] = [];
    const retry: Array<{ id: number; nextAt: number; code: string; message: string; status?: number }> = [];
    const dead: Array<{ id: number; code: string; message: string; status?: number }> = [];
    ops.forEach((op, i) => {
      const o = outcomes[i]!;
      if (o.kind === 'done') {
        done.push(op.id);
        if (o.ledger) ledger.push(o.ledger);
        this.metrics.delivered.inc({ kind: op.kind });
        return;
      }
      const be = o.err instanceof BrevoError ? o.err : undefined;
      const code = be?.code ?? 'error';
      const message = errorMessage(o.err);
      const status = be?.status;
      if (o.kind === 'dead' || op.attempts >= this.opts.maxAttempts) {
        dead.push({ id: op.id, code, message, ...(status ? { status } : {}) });
        this.metrics.dead.inc({ kind: op.kind, code });
        this.log.warn({ op: op.id, kind: op.kind, key: op.key, code, status, attempts: op.attempts, priority: PRIORITY_NAMES[op.priority] }, `dead letter: ${message}`);
      } else {
        const wait = Math.max(be?.retryAfterMs ?? 0, backoffMs(op.attempts, this.opts.backoffBaseMs, this.opts.backoffMaxMs));
        retry.push({ id: op.id, nextAt: now + wait, code, message, ...(status ? { status } : {}) });
        this.metrics.retried.inc({ kind: op.kind, code });
      }
    });
    if (done.length > 0 || ledger.length > 0) await this.store.completeOps(done, now, ledger);
    if (retry.length > 0) await this.store.retryOps(retry, now);
    if (dead.length > 0) await this.store.deadOps(dead, now);
  }
}
