// Backfill: what SES already knows (contact lists, topics, contacts, the suppression list,
// account status), read page by page at SES's pace and written to Brevo in bulk.
// Commit-then-checkpoint: a page's token is saved only after Brevo has accepted every
// record read before it, so a SIGKILL at any moment costs at most a re-read, and every
// write is an idempotent upsert (nothing is written twice to lists, no events are made).
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type { Logger } from 'pino';
import type { Store } from '../store/port.js';
import type { SesConnectorConfig } from '../config/schema.js';
import { planBrevoOperations, planContact, type PlannedOp } from '../core/plan.js';
import type { SesContactRecord, SesSuppressionRecord } from '../core/types.js';
import { isExpiredToken, readAccount, readContactLists, readContactsPage, readSuppressionsPage, explainSesError, type SesContactList } from '../ses/streams.js';
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

export interface BackfillSummary {
  streams: Partial<Record<StreamName, { read: number; written: number; pages: number; restarts: number }>>;
  dryRun: boolean;
  /** With --dry-run: what would be written. */
  plan?: { contacts: number; blocklisted: number; lists: Record<string, number>; suppressions: number; sample: unknown[] };
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

export interface BackfillOptions {
  streams?: StreamName[];
  full?: boolean;
  dryRun?: boolean;
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
}

export async function runBackfill(deps: BackfillDeps, opts: BackfillOptions = {}): Promise<BackfillSummary> {
  const now = deps.now ?? Date.now;
  const started = now();
  const callsAtStart = deps.limiter.calls;
  const streams = opts.streams && opts.streams.length > 0 ? opts.streams : enabledStreams(deps.cfg);
  const summary: BackfillSummary = { streams: {}, dryRun: opts.dryRun === true, sesCalls: 0, seconds: 0 };
  if (opts.dryRun) summary.plan = { contacts: 0, blocklisted: 0, lists: {}, suppressions: 0, sample: [] };
  const ses = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    fn().catch((err: unknown) => {
      if (isExpiredToken(err)) throw err;
      throw explainSesError(err, what);
    });

  const progress = (stream: StreamName, read: number, written: number, detail?: string) => {
    const secs = Math.max(0.001, (now() - started) / 1000);
    deps.onProgress?.({ stream, read, written, sesCalls: deps.limiter.calls - callsAtStart, ratePerSec: read / secs, ...(detail ? { detail } : {}) });
  };

  // A dry run reads from the saved cursors like a real run would, but never moves them.
  const setCursor: typeof deps.store.setCursor = opts.dryRun ? async () => undefined : (...a) => deps.store.setCursor(...a);

  const enqueue = async (ops: PlannedOp[]) => {
    if (ops.length === 0) return;
    await deps.store.enqueue(ops, now());
    deps.onQueued?.();
  };

  const record = (stream: StreamName) => (summary.streams[stream] ??= { read: 0, written: 0, pages: 0, restarts: 0 });
  let contactLists: SesContactList[] | undefined;
  const loadLists = async () => {
    if (contactLists) return contactLists;
    const saved = await deps.store.getState('ses:contact_lists');
    contactLists =
      saved && !streams.includes('contact_lists') ? (JSON.parse(saved) as SesContactList[]) : await ses('ListContactLists', () => readContactLists(deps.ses));
    return contactLists;
  };

  for (const stream of streams) {
    if (deps.signal?.aborted) break;
    try {
      if (stream === 'account') {
        const snap = await ses('GetAccount', () => readAccount(deps.ses, new Date(now())));
        if (!opts.dryRun) await deps.store.setState('ses:account', JSON.stringify(snap), now());
        record('account').read = 1;
        await setCursor('account', snap.at, now(), 'complete');
      } else if (stream === 'contact_lists') {
        contactLists = await ses('ListContactLists', () => readContactLists(deps.ses));
        const r = record('contact_lists');
        r.read = contactLists.length;
        if (!opts.dryRun) {
          await deps.store.setState('ses:contact_lists', JSON.stringify(contactLists), now());
          await deps.lists?.ensureAll(contactLists);
          r.written = contactLists.reduce((a, l) => a + 1 + l.topics.length, 0);
        }
        await setCursor('contact_lists', String(contactLists.length), now(), 'complete', contactLists.map((l) => l.name).join(', '));
      } else if (stream === 'contacts') {
        await backfillContacts(await loadLists());
      } else if (stream === 'suppressions') {
        await backfillSuppressions();
      }
    } catch (err) {
      await setCursor(stream, (await deps.store.getCursor(stream))?.value ?? null, now(), 'failed', (err as Error).message.slice(0, 500));
      throw err;
    }
  }
  summary.sesCalls = deps.limiter.calls - callsAtStart;
  summary.seconds = (now() - started) / 1000;
  return summary;

  async function backfillContacts(lists: SesContactList[]): Promise<void> {
    const r = record('contacts');
    if (deps.cfg.contacts.fetch_attributes) {
      deps.log.warn(
        `contacts.fetch_attributes is on: one extra SES call per contact at ${deps.cfg.ses_rate_limit} req/s (about ${(deps.limiter.secondsFor(100_000) / 3600).toFixed(1)} h per 100,000 contacts)`,
      );
    }
    const saved = await deps.store.getCursor('contacts');
    let cur: ContactsCursor = { list: '', token: null, done: [] };
    if (!opts.full && saved?.value && saved.status !== 'complete') cur = JSON.parse(saved.value) as ContactsCursor;
    for (const list of lists) {
      if (cur.done.includes(list.name)) continue;
      let token: string | undefined = cur.list === list.name && cur.token ? cur.token : undefined;
      let readWith = token;
      for (;;) {
        if (deps.signal?.aborted) return;
        let page;
        try {
          page = await ses('ListContacts', () => readContactsPage(deps.ses, list, readWith, { fetchAttributes: deps.cfg.contacts.fetch_attributes }));
        } catch (err) {
          if (!isExpiredToken(err)) throw err;
          // The saved token expired: read the list again from its start (writes are idempotent).
          deps.log.info({ list: list.name }, 'SES paging token expired; reading the contact list again from the start');
          r.restarts++;
          readWith = undefined;
          continue;
        }
        r.pages++;
        r.read += page.records.length;
        await deps.waitAccepted();
        await setCursor(
          'contacts',
          JSON.stringify({ list: list.name, token: readWith ?? null, done: cur.done }),
          now(),
          'running',
          `${list.name}: ${r.read} read`,
        );
        r.written += await writeContacts(list, page.records);
        progress('contacts', r.read, r.written, list.name);
        token = page.nextToken;
        if (!token) break;
        readWith = token;
      }
      await deps.waitAccepted();
      cur = { list: '', token: null, done: [...cur.done, list.name] };
      await setCursor('contacts', JSON.stringify(cur), now(), 'running', `${list.name}: done`);
    }
    await setCursor('contacts', JSON.stringify(cur), now(), 'complete', `${r.read} contacts in ${lists.length} list(s)`);
  }

  async function writeContacts(list: SesContactList, records: SesContactRecord[]): Promise<number> {
    if (opts.dryRun) {
      const plan = summary.plan!;
      for (const c of records) {
        plan.contacts++;
        if (c.unsubscribeAll) plan.blocklisted++;
        const names = [
          list.name,
          ...list.topics.filter((t) => !c.unsubscribeAll && c.topics[t.name] === 'OPT_IN').map((t) => topicListName(list.name, t.name)),
        ];
        for (const n of names) plan.lists[n] = (plan.lists[n] ?? 0) + 1;
        if (plan.sample.length < 5) plan.sample.push({ email: c.email, lists: names, blocklist: c.unsubscribeAll, unsubscribeAll: c.unsubscribeAll });
      }
      return 0;
    }
    if (!deps.lists) throw new TajoError('backfill_misconfigured', 'backfill needs Brevo lists unless --dry-run');
    const ops: PlannedOp[] = [];
    for (const c of records) ops.push(planContact(c, await deps.lists.idsFor(list, c.topics, c.unsubscribeAll), deps.cfg.field_mapping, 'backfill'));
    await enqueue(ops);
    return ops.length;
  }

  async function backfillSuppressions(): Promise<void> {
    const r = record('suppressions');
    const saved = await deps.store.getCursor('suppressions');
    let cur: SuppressionCursor = saved?.value ? (JSON.parse(saved.value) as SuppressionCursor) : { hw: null };
    if (opts.full) cur = { hw: null };
    const window = cur.window
      ? { start: new Date(cur.window.start), end: new Date(cur.window.end) }
      : { start: cur.hw ? new Date(cur.hw) : EPOCH, end: new Date(now()) };
    let readWith: string | undefined = cur.window ? cur.token : undefined;
    const suppressionList = opts.dryRun ? -1 : await deps.lists!.ensure(SUPPRESSION_LIST);
    for (;;) {
      if (deps.signal?.aborted) return;
      let page;
      try {
        page = await ses('ListSuppressedDestinations', () => readSuppressionsPage(deps.ses, window, readWith));
      } catch (err) {
        if (!isExpiredToken(err)) throw err;
        deps.log.info({ window }, 'SES paging token expired; reading the suppression window again from its start');
        r.restarts++;
        readWith = undefined;
        continue;
      }
      r.pages++;
      r.read += page.records.length;
      await deps.waitAccepted();
      await setCursor(
        'suppressions',
        JSON.stringify({
          hw: cur.hw,
          window: { start: window.start.toISOString(), end: window.end.toISOString() },
          ...(readWith ? { token: readWith } : {}),
        } satisfies SuppressionCursor),
        now(),
        'running',
        `${r.read} read`,
      );
      r.written += await writeSuppressions(page.records, suppressionList);
      progress('suppressions', r.read, r.written);
      if (!page.nextToken) break;
      readWith = page.nextToken;
    }
    await deps.waitAccepted();
    if (!opts.dryRun)
      await setCursor(
        'suppressions',
        JSON.stringify({ hw: window.end.toISOString() } satisfies SuppressionCursor),
        now(),
        'complete',
        `${r.read} read up to ${window.end.toISOString()}`,
      );
  }

  async function writeSuppressions(records: SesSuppressionRecord[], listId: number): Promise<number> {
    if (opts.dryRun) {
      const plan = summary.plan!;
      plan.suppressions += records.length;
      plan.blocklisted += records.length;
      for (const s of records) if (plan.sample.length < 10) plan.sample.push({ email: s.email, blocklist: true, reason: s.reason, lastUpdated: s.lastUpdated });
      return 0;
    }
    const ops = planBrevoOperations(records, deps.cfg, 'backfill');
    for (const op of ops) if (op.kind === 'contact') op.payload.listIds = [listId];
    await enqueue(ops);
    return ops.length;
  }
}

export function enabledStreams(cfg: SesConnectorConfig): StreamName[] {
  const out: StreamName[] = [];
  if (cfg.sync.account) out.push('account');
  if (cfg.sync.contacts) out.push('contact_lists', 'contacts');
  if (cfg.sync.suppressions) out.push('suppressions');
  return out;
}
