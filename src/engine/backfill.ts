// Backfill: what SES already knows (contact lists, topics, contacts, the suppression list,
// account status), read page by page at SES's pace and written to Brevo in bulk.
// Commit-then-checkpoint: a page's token is saved only after Brevo has accepted every
// record read before it, so a SIGKILL at any moment costs at most a re-read, and every
// write is an idempotent upsert (nothing is written twice to lists, no events are made).
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type { Logger } from 'pino';
import type { Store } from '../store/port.js';
import type { SesConnectorConfig } from '../config/schema.js';
import { PRIORITY, planBrevoOperations, planContact, type PlannedOp } from '../core/plan.js';
import type { SesContactRecord, SesSuppressionRecord } from '../core/types.js';
import {
  isExpiredToken,
  readAccount,
  readContactLists,
  readContactsPage,
  readSuppressionsPage,
  explainSesError,
  sesPages,
  type SesAccountSnapshot,
  type SesContactList,
  type SesPage,
} from '../ses/streams.js';
import type { BrevoLists } from './lists.js';
import { SUPPRESSION_LIST, topicListName } from './lists.js';
import type { RateLimiter } from '../ses/client.js';
import { TajoError } from '../core/errors.js';

export const STREAMS = ['contact_lists', 'contacts', 'suppressions', 'account'] as const;
export type StreamName = (typeof STREAMS)[number];

export interface BackfillProgress {
  stream: StreamName;
  detail?: string;
  read: number;
  written: number;
  sesCalls: number;
  ratePerSec: number;
}

type DryRunPlan = { contacts: number; blocklisted: number; lists: Record<string, number>; suppressions: number; sample: unknown[] };

export interface BackfillSummary {
  streams: Partial<Record<StreamName, { read: number; written: number; pages: number; restarts: number }>>;
  dryRun: boolean;
  /** With --dry-run: what would be written. */
  plan?: DryRunPlan;
  sesCalls: number;
  seconds: number;
}

export interface BackfillDeps {
  store: Store;
  ses: SESv2Client;
  limiter: RateLimiter;
  /** Absent on --dry-run (nothing is created in Brevo). */
  lists?: BrevoLists;
  cfg: SesConnectorConfig;
  log: Logger;
  now?: () => number;
  /** Resolves when Brevo has accepted every backfill operation queued so far. */
  waitAccepted: () => Promise<void>;
  /** New operations were queued. */
  onQueued?: () => void;
  onProgress?: (p: BackfillProgress) => void;
  signal?: AbortSignal;
}

/** A place in a stream: the cursor value a run resumed from there reads again from. */
export interface BackfillPoint {
  stream: StreamName;
  cursor: string;
}

/**
 * Named points between the steps of commit-then-checkpoint, where a test stops a run
 * deterministically (by throwing) or looks at what Brevo holds. Unset in production, where
 * each costs one property check. Never called on --dry-run (nothing is queued or saved).
 */
export interface BackfillCheckpointHooks {
  /** A page's operations are queued; `cursor` (saved just before) still points at the page. */
  afterEnqueue?: (p: BackfillPoint & { emails: string[] }) => void | Promise<void>;
  /** A cursor was saved; on a page, before that page is queued. */
  afterCheckpoint?: (p: BackfillPoint & { status: 'running' | 'complete' }) => void | Promise<void>;
}

export interface BackfillOptions {
  streams?: StreamName[];
  full?: boolean;
  dryRun?: boolean;
  checkpointHooks?: BackfillCheckpointHooks;
  /**
   * Rows queued between two checkpoints of a stream (its first page is always checkpointed).
   * Waiting for Brevo to accept every page would make one import per page; a run stopped
   * between checkpoints reads at most this many rows again. Default `backfill.checkpoint_rows`; 0: every page.
   */
  checkpointRows?: number;
}

/** Where the records read go: queued for Brevo, or on --dry-run only counted and sampled. */
export interface BackfillSink {
  account(snap: SesAccountSnapshot): Promise<void>;
  /** The SES contact lists and their topics as Brevo lists; returns how many lists were written. */
  contactLists(lists: SesContactList[]): Promise<number>;
  /** Returns how many operations were queued. `pass` names the full listing of `list` the records come from. */
  contacts(list: SesContactList, records: SesContactRecord[], pass: string): Promise<number>;
  /**
   * The listing `pass` of `list` was read to its end: the members the connector wrote before
   * that this pass did not see leave the Brevo lists. Returns how many removals were queued.
   */
  listingDone(list: SesContactList, pass: string): Promise<number>;
  suppressions(records: SesSuppressionRecord[]): Promise<number>;
  /** Resolves when Brevo has accepted every operation queued so far. */
  accepted(): Promise<void>;
  saveCursor(stream: StreamName, value: string | null, status: string, note?: string): Promise<void>;
}

/** A very early start: the first run reads the whole suppression list. */
const EPOCH = new Date(Date.UTC(2010, 0, 1));

interface SuppressionCursor {
  /** Everything updated before this instant has been written to Brevo. */
  hw: string | null;
  /** The window being read, and the token of its next page, when a run was interrupted. */
  window?: { start: string; end: string };
  token?: string;
}

interface ContactsCursor {
  list: string;
  token: string | null;
  done: string[];
  /** The full listing of `list` under way (kept across a resumed run). */
  pass?: string;
}

/** The Brevo lists a backfilled contact belongs to: its list, and each topic it is opted in to (none under UnsubscribeAll). */
function memberLists(list: SesContactList, c: SesContactRecord): string[] {
  return [list.name, ...list.topics.filter((t) => !c.unsubscribeAll && c.topics[t.name] === 'OPT_IN').map((t) => topicListName(list.name, t.name))];
}

export async function runBackfill(deps: BackfillDeps, opts: BackfillOptions = {}): Promise<BackfillSummary> {
  const now = deps.now ?? Date.now;
  if (opts.dryRun) {
    const sink = new DryRunSink();
    return new BackfillRun({ deps, opts, sink, now }).run(sink.plan);
  }
  if (!deps.lists) throw new TajoError('backfill_misconfigured', 'backfill needs Brevo lists unless --dry-run');
  return new BackfillRun({ deps, opts, sink: new BrevoSink(deps, deps.lists, now), now }).run();
}

/** Queues every page for Brevo's bulk lane and moves the cursors. */
class BrevoSink implements BackfillSink {
  private suppressionListId: number | undefined;

  constructor(
    private readonly deps: BackfillDeps,
    private readonly lists: BrevoLists,
    private readonly now: () => number,
  ) {}

  async account(snap: SesAccountSnapshot): Promise<void> {
    await this.deps.store.setState('ses:account', JSON.stringify(snap), this.now());
  }

  async contactLists(lists: SesContactList[]): Promise<number> {
    await this.deps.store.setState('ses:contact_lists', JSON.stringify(lists), this.now());
    await this.lists.ensureAll(lists);
    return lists.reduce((a, l) => a + 1 + l.topics.length, 0);
  }

  async contacts(list: SesContactList, records: SesContactRecord[], pass: string): Promise<number> {
    const ops: PlannedOp[] = [];
    const members = new Map<string, string[]>();
    for (const c of records) {
      ops.push(planContact(c, await this.lists.idsFor(list, c.topics, c.unsubscribeAll), this.deps.cfg.field_mapping, 'backfill'));
      for (const name of memberLists(list, c)) members.set(name, [...(members.get(name) ?? []), c.email]);
    }
    const n = await this.enqueue(ops);
    for (const [name, emails] of members) await this.deps.store.markListMembers(name, emails, pass, this.now());
    return n;
  }

  /**
   * Only what an earlier pass wrote and this one did not see is removed: a member an operator
   * added to the Brevo list by hand was never recorded, so it stays.
   */
  async listingDone(list: SesContactList, pass: string): Promise<number> {
    const at = this.now();
    const ops: PlannedOp[] = [];
    for (const name of [list.name, ...list.topics.map((t) => topicListName(list.name, t.name))]) {
      for (const email of await this.deps.store.takeStaleListMembers(name, pass, at)) {
        ops.push({
          kind: 'contact',
          key: `contact:${email}`,
          email,
          priority: PRIORITY.bulk,
          lane: 'backfill',
          sources: [`ses-contact:${list.name}:${email}`],
          payload: { attrs: {}, blocklist: false, lists: { [name]: { v: false, at } } },
        });
      }
    }
    return this.enqueue(ops);
  }

  async suppressions(records: SesSuppressionRecord[]): Promise<number> {
    this.suppressionListId ??= await this.lists.ensure(SUPPRESSION_LIST);
    const ops = planBrevoOperations(records, this.deps.cfg, 'backfill');
    for (const op of ops) if (op.kind === 'contact') op.payload.listIds = [this.suppressionListId];
    return this.enqueue(ops);
  }

  accepted(): Promise<void> {
    return this.deps.waitAccepted();
  }

  saveCursor(stream: StreamName, value: string | null, status: string, note?: string): Promise<void> {
    return this.deps.store.setCursor(stream, value, this.now(), status, note);
  }

  private async enqueue(ops: PlannedOp[]): Promise<number> {
    if (ops.length === 0) return 0;
    await this.deps.store.enqueue(ops, this.now());
    this.deps.onQueued?.();
    return ops.length;
  }
}

/** --dry-run: counts and samples what would be written; reads from the saved cursors like a real run, never moves them. */
class DryRunSink implements BackfillSink {
  readonly plan: DryRunPlan = { contacts: 0, blocklisted: 0, lists: {}, suppressions: 0, sample: [] };

  async account(): Promise<void> {}

  async contactLists(): Promise<number> {
    return 0;
  }

  /** Removals are not counted: a dry run does not know which members an earlier pass wrote without taking them. */
  async listingDone(): Promise<number> {
    return 0;
  }

  async contacts(list: SesContactList, records: SesContactRecord[]): Promise<number> {
    const plan = this.plan;
    for (const c of records) {
      plan.contacts++;
      if (c.unsubscribeAll) plan.blocklisted++;
      const names = memberLists(list, c);
      for (const n of names) plan.lists[n] = (plan.lists[n] ?? 0) + 1;
      if (plan.sample.length < 5) plan.sample.push({ email: c.email, lists: names, blocklist: c.unsubscribeAll, unsubscribeAll: c.unsubscribeAll });
    }
    return 0;
  }

  async suppressions(records: SesSuppressionRecord[]): Promise<number> {
    const plan = this.plan;
    plan.suppressions += records.length;
    plan.blocklisted += records.length;
    for (const s of records) if (plan.sample.length < 10) plan.sample.push({ email: s.email, blocklist: true, reason: s.reason, lastUpdated: s.lastUpdated });
    return 0;
  }

  /** Nothing was queued: a dry run never waits on (or for) the delivery workers. */
  async accepted(): Promise<void> {}

  async saveCursor(): Promise<void> {}
}

/** One page read, to be committed (Brevo accepts what came before) and then checkpointed. */
interface PageCommit<R extends { email: string }> {
  stream: 'contacts' | 'suppressions';
  page: SesPage<R>;
  /** The cursor that points at this page: a resumed run reads it again. */
  cursor: string;
  note: (read: number) => string;
  write: (records: R[]) => Promise<number>;
  detail?: string;
}

class BackfillRun {
  private readonly deps: BackfillDeps;
  private readonly opts: BackfillOptions;
  private readonly sink: BackfillSink;
  private readonly now: () => number;
  private readonly hooks: BackfillCheckpointHooks | undefined;
  private readonly streams: StreamName[];
  private readonly started: number;
  private readonly callsAtStart: number;
  private readonly summary: BackfillSummary;
  private sesLists: SesContactList[] | undefined;
  /** Rows queued per stream since its last checkpoint in this run (absent: none yet). */
  private readonly unchecked = new Map<StreamName, number>();

  constructor(p: { deps: BackfillDeps; opts: BackfillOptions; sink: BackfillSink; now: () => number }) {
    this.deps = p.deps;
    this.opts = p.opts;
    this.sink = p.sink;
    this.now = p.now;
    this.hooks = p.opts.dryRun ? undefined : p.opts.checkpointHooks;
    this.streams = p.opts.streams && p.opts.streams.length > 0 ? p.opts.streams : enabledStreams(p.deps.cfg);
    this.started = p.now();
    this.callsAtStart = p.deps.limiter.calls;
    this.summary = { streams: {}, dryRun: p.opts.dryRun === true, sesCalls: 0, seconds: 0 };
  }

  async run(plan?: DryRunPlan): Promise<BackfillSummary> {
    if (plan) this.summary.plan = plan;
    for (const stream of this.streams) {
      if (this.deps.signal?.aborted) break;
      try {
        if (stream === 'account') await this.account();
        else if (stream === 'contact_lists') await this.contactLists();
        else if (stream === 'contacts') await this.contacts(await this.loadLists());
        else if (stream === 'suppressions') await this.suppressions();
      } catch (err) {
        const kept = (await this.deps.store.getCursor(stream))?.value ?? null;
        await this.sink.saveCursor(stream, kept, 'failed', (err as Error).message.slice(0, 500));
        throw err;
      }
    }
    this.summary.sesCalls = this.deps.limiter.calls - this.callsAtStart;
    this.summary.seconds = (this.now() - this.started) / 1000;
    return this.summary;
  }

  private async account(): Promise<void> {
    const snap = await this.ses('GetAccount', () => readAccount(this.deps.ses, new Date(this.now())));
    await this.sink.account(snap);
    this.record('account').read = 1;
    await this.checkpoint('account', snap.at, 'complete');
  }

  private async contactLists(): Promise<void> {
    const lists = await this.ses('ListContactLists', () => readContactLists(this.deps.ses));
    this.sesLists = lists;
    const r = this.record('contact_lists');
    r.read = lists.length;
    r.written = await this.sink.contactLists(lists);
    await this.checkpoint('contact_lists', String(lists.length), 'complete', lists.map((l) => l.name).join(', '));
  }

  /** The lists read by this run, else (contacts alone) the ones the last contact_lists run saved. */
  private async loadLists(): Promise<SesContactList[]> {
    if (this.sesLists) return this.sesLists;
    const saved = await this.deps.store.getState('ses:contact_lists');
    this.sesLists =
      saved && !this.streams.includes('contact_lists')
        ? (JSON.parse(saved) as SesContactList[])
        : await this.ses('ListContactLists', () => readContactLists(this.deps.ses));
    return this.sesLists;
  }

  private async contacts(lists: SesContactList[]): Promise<void> {
    const { deps } = this;
    const r = this.record('contacts');
    if (deps.cfg.contacts.fetch_attributes) {
      deps.log.warn(
        `contacts.fetch_attributes is on: one extra SES call per contact at ${deps.cfg.ses_rate_limit} req/s (about ${(deps.limiter.secondsFor(100_000) / 3600).toFixed(1)} h per 100,000 contacts)`,
      );
    }
    const saved = await deps.store.getCursor('contacts');
    let cur: ContactsCursor = { list: '', token: null, done: [] };
    if (!this.opts.full && saved?.value && saved.status !== 'complete') cur = JSON.parse(saved.value) as ContactsCursor;
    for (const list of lists) {
      if (cur.done.includes(list.name)) continue;
      const pass = cur.list === list.name && cur.pass ? cur.pass : `${list.name}@${this.now()}`;
      const pages = sesPages({
        read: (token) => this.ses('ListContacts', () => readContactsPage(deps.ses, list, token, { fetchAttributes: deps.cfg.contacts.fetch_attributes })),
        from: cur.list === list.name && cur.token ? cur.token : undefined,
        onRestart: () => {
          deps.log.info({ list: list.name }, 'SES paging token expired; reading the contact list again from the start');
          r.restarts++;
        },
        ...(deps.signal ? { signal: deps.signal } : {}),
      });
      let finished = false;
      for await (const page of pages) {
        await this.commitPage({
          stream: 'contacts',
          page,
          cursor: JSON.stringify({ list: list.name, token: page.token ?? null, done: cur.done, pass } satisfies ContactsCursor),
          note: (read) => `${list.name}: ${read} read`,
          write: (records) => this.sink.contacts(list, records, pass),
          detail: list.name,
        });
        finished = !page.nextToken;
      }
      if (!finished) return; // stopped by the signal: the cursor stays on the page to read next
      await this.sink.listingDone(list, pass);
      await this.sink.accepted();
      cur = { list: '', token: null, done: [...cur.done, list.name] };
      await this.checkpoint('contacts', JSON.stringify(cur), 'running', `${list.name}: done`);
      // The next list's first page is checkpointed too: its listing pass is named from there.
      this.unchecked.delete('contacts');
    }
    await this.checkpoint('contacts', JSON.stringify(cur), 'complete', `${r.read} contacts in ${lists.length} list(s)`);
  }

  private async suppressions(): Promise<void> {
    const { deps } = this;
    const r = this.record('suppressions');
    const saved = await deps.store.getCursor('suppressions');
    let cur: SuppressionCursor = saved?.value ? (JSON.parse(saved.value) as SuppressionCursor) : { hw: null };
    if (this.opts.full) cur = { hw: null };
    const window = cur.window
      ? { start: new Date(cur.window.start), end: new Date(cur.window.end) }
      : { start: cur.hw ? new Date(cur.hw) : EPOCH, end: new Date(this.now()) };
    const pages = sesPages({
      read: (token) => this.ses('ListSuppressedDestinations', () => readSuppressionsPage(deps.ses, window, token)),
      from: cur.window ? cur.token : undefined,
      onRestart: () => {
        deps.log.info({ window }, 'SES paging token expired; reading the suppression window again from its start');
        r.restarts++;
      },
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    let finished = false;
    for await (const page of pages) {
      const cursor: SuppressionCursor = {
        hw: cur.hw,
        window: { start: window.start.toISOString(), end: window.end.toISOString() },
        ...(page.token ? { token: page.token } : {}),
      };
      await this.commitPage({
        stream: 'suppressions',
        page,
        cursor: JSON.stringify(cursor),
        note: (read) => `${read} read`,
        write: (records) => this.sink.suppressions(records),
      });
      finished = !page.nextToken;
    }
    if (!finished) return; // stopped by the signal
    await this.sink.accepted();
    const end = window.end.toISOString();
    await this.checkpoint('suppressions', JSON.stringify({ hw: end } satisfies SuppressionCursor), 'complete', `${r.read} read up to ${end}`);
  }

  /**
   * Commit-then-checkpoint for one page: the cursor moves to this page only once Brevo has
   * accepted every page queued before it, and only then is this page queued. A run stopped
   * anywhere in between reads this page again (idempotent upserts) and never skips one.
   */
  private async commitPage<R extends { email: string }>(c: PageCommit<R>): Promise<void> {
    const r = this.record(c.stream);
    r.pages++;
    r.read += c.page.records.length;
    const since = this.unchecked.get(c.stream);
    if (since === undefined || since >= (this.opts.checkpointRows ?? this.deps.cfg.backfill.checkpoint_rows)) {
      await this.sink.accepted();
      await this.checkpoint(c.stream, c.cursor, 'running', c.note(r.read));
    }
    r.written += await c.write(c.page.records);
    this.unchecked.set(c.stream, (this.unchecked.get(c.stream) ?? 0) + c.page.records.length);
    if (this.hooks?.afterEnqueue) await this.hooks.afterEnqueue({ stream: c.stream, cursor: c.cursor, emails: c.page.records.map((x) => x.email) });
    this.progress(c.stream, r.read, r.written, c.detail);
  }

  private async checkpoint(stream: StreamName, cursor: string, status: 'running' | 'complete', note?: string): Promise<void> {
    await this.sink.saveCursor(stream, cursor, status, note);
    this.unchecked.set(stream, 0);
    if (this.hooks?.afterCheckpoint) await this.hooks.afterCheckpoint({ stream, cursor, status });
  }

  /** An SES call; an expired paging token passes through untouched (sesPages starts over on it). */
  private ses<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return fn().catch((err: unknown) => {
      if (isExpiredToken(err)) throw err;
      throw explainSesError(err, what);
    });
  }

  private record(stream: StreamName) {
    return (this.summary.streams[stream] ??= { read: 0, written: 0, pages: 0, restarts: 0 });
  }

  private progress(stream: StreamName, read: number, written: number, detail?: string): void {
    const secs = Math.max(0.001, (this.now() - this.started) / 1000);
    const sesCalls = this.deps.limiter.calls - this.callsAtStart;
    this.deps.onProgress?.({ stream, read, written, sesCalls, ratePerSec: read / secs, ...(detail ? { detail } : {}) });
  }
}

export function enabledStreams(cfg: SesConnectorConfig): StreamName[] {
  const out: StreamName[] = [];
  if (cfg.sync.account) out.push('account');
  if (cfg.sync.contacts) out.push('contact_lists', 'contacts');
  if (cfg.sync.suppressions) out.push('suppressions');
  return out;
}
