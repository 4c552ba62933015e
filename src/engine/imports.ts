// Contact writes in bulk through POST /contacts/import, and following the import processes
// Brevo accepted to their end (GET /processes): rows its report refuses become dead letters.
import type { Logger } from 'pino';
import type { BrevoClient, BrevoProcess, ImportRequest } from '../brevo/client.js';
import type { ContactPayload } from '../core/plan.js';
import { errorMessage } from '../core/errors.js';
import { hadUnansweredAttempt, type LedgerEntry, type OpRow, type Store } from '../store/port.js';
import { contactBody, ledgerOf, nothingToSend, resolveListChanges, type ListResolver } from './contact-body.js';
import { removeFromLists } from './list-removals.js';
import { attemptCall, type CallContext, type Outcome } from './outcome.js';

/** From this many contacts in one claim, an import beats one call per contact. */
export const BULK_THRESHOLD = 20;

/** Rows per /contacts/import call; ~200 bytes a row keeps a call well under Brevo's 8 MB. */
export const IMPORT_MAX_ROWS = 10_000;
export const IMPORT_MAX_BYTES = 7_500_000;

/** Brevo's largest /processes page: one listing call covers this many processes. */
const PROCESSES_PAGE = 50;

/** Accepted imports looked at per reconciliation (each is one process, usually of thousands of rows). */
const AWAITING_SCAN = 1000;

/**
 * Share of the hourly "other" budget (100 calls an hour on Brevo's general plan) that
 * following imports may spend, for the whole cluster; the rest is for lists, folders and
 * event batches.
 */
export const FOLLOW_SHARE = 0.25;

/** The store budget (ClusterStore.takeBudget) the follow-ups spend. */
export const FOLLOW_BUCKET = 'imports_follow';

const HOUR_MS = 3_600_000;
const DEFAULT_OTHER_PER_HOUR = 100;

/** A listing call that takes longer is given up (the imports stay accepted). */
const FOLLOW_CALL_TIMEOUT_MS = 10_000;

/** A report file that does not come within this is skipped: its rows count as imported. */
const REPORT_TIMEOUT_MS = 30_000;

type ImportRow = ImportRequest['jsonBody'][number];

export interface FollowResult {
  /** Imports found finished (their rows done or dead letters). */
  completed: number;
  /** Imports still awaiting Brevo (running, or not looked at this round). */
  open: number;
  /** GET /processes calls made. */
  listed: number;
}

/**
 * Paces the follow-ups of every process on the store within `perHour` calls an hour,
 * spaced by the share spent: with `used` of the last hour's `perHour` calls spent, the next
 * may go (1 h / perHour) × (used / perHour)² after the previous one. The first follow-ups
 * of a quiet hour go at once (an import is usually done within seconds), the gap grows to
 * the even spacing as the share runs down, and spending it all takes at least 20 minutes:
 * a busy hour never spends the share in one burst.
 * Grants are store state (takeBudget): one follow-up for the whole cluster, and a process
 * that dies strands nothing.
 */
export class FollowPacer {
  constructor(private readonly o: { store: Pick<Store, 'takeBudget' | 'budgetStatus'>; perHour: number }) {}

  /** The gap before the next follow-up when `used` of the hour's share is spent. */
  static gapMs(perHour: number, used: number): number {
    if (used >= perHour) return Infinity;
    return Math.ceil((HOUR_MS / perHour) * (used / perHour) ** 2);
  }

  /** Takes one follow-up call if the share and the gap allow it now. `first: false` (a further page of one pass) skips the gap. */
  async take(opts: { first: boolean }): Promise<boolean> {
    const hour = [{ limit: this.o.perHour, windowMs: HOUR_MS }];
    const st = await this.o.store.budgetStatus({ windows: { [FOLLOW_BUCKET]: hour } });
    const used = st.buckets.find((b) => b.bucket === FOLLOW_BUCKET)?.windows[0]?.used ?? 0;
    const gap = FollowPacer.gapMs(this.o.perHour, used);
    if (!Number.isFinite(gap)) return false;
    const windows = opts.first && gap > 0 ? [...hour, { limit: 1, windowMs: gap }] : hour;
    return (await this.o.store.takeBudget({ bucket: FOLLOW_BUCKET, windows })).granted;
  }
}

/** Rows that share one import call: blocklisting and list ids apply to every row of an import. */
interface ImportGroup {
  blocklist: boolean;
  listIds: number[];
  members: Array<{ i: number; row: ImportRow }>;
}

export interface ContactImportsOptions {
  store: Store;
  client: BrevoClient;
  log: Logger;
  /** Metrics and Brevo health, fed by every call. */
  call: CallContext;
  /** Aborted when delivery stops for good (in-flight calls are cut). */
  signal: AbortSignal;
  now: () => number;
}

export class ContactImports {
  constructor(private readonly o: ContactImportsOptions) {}

  /**
   * Do these claimed contacts go by import: a backlog, or one that an import Brevo may not
   * have applied yet still names? Brevo applies imports later, in the order it accepted
   * them: a direct POST for such a contact would land first and the older import would then
   * overwrite it. That import is store state (its operations are `awaiting` until its process
   * is known finished), so every process of a cluster, and this one after a restart, sees it.
   */
  async preferred(ops: OpRow[]): Promise<boolean> {
    if (ops.length >= BULK_THRESHOLD) return true;
    // A write one of whose calls went unanswered (no answer, an unreadable one, or a process
    // that died before it recorded the answer), even if a later one was refused, may have an
    // import Brevo accepted and applies later: an import of ours goes behind it, a direct
    // write would be overtaken by it.
    if (ops.some(hadUnansweredAttempt)) return true;
    return (await this.o.store.contactsWithOpenImports(ops.map((o) => o.email))).size > 0;
  }

  /**
   * Writes claimed contact operations through /contacts/import, blocklisting imports first;
   * returns each one's outcome. An operation in several lists is in one import per list
   * (see `group`); it is accepted once all of them are, under the newest import's process
   * (Brevo applies imports in the order it accepted them: when that one is done, all are).
   */
  async write(ops: OpRow[], defaultListId: (op: OpRow) => Promise<number>, listId?: ListResolver): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(ops.length);
    const ledger = await this.o.store.getLedger(ops.map((o) => o.email));
    const lists = await resolveListChanges(ops, ledger, listId);
    const groups = await this.group(ops, ledger, lists, defaultListId, outcomes);
    const failed = new Map<number, Outcome>();
    const newest = new Map<number, number>();
    const sent = new Set<number>();
    for (const g of groups) {
      for (const chunk of chunkBySize(g.members, IMPORT_MAX_ROWS, IMPORT_MAX_BYTES, (m) => JSON.stringify(m.row).length + 1)) {
        let processId: number | undefined;
        const outcome = await attemptCall(this.o.call, 'contacts_import', async () => {
          const res = await this.o.client.importContacts(
            {
              jsonBody: chunk.map((m) => m.row),
              listIds: g.listIds,
              updateExistingContacts: true,
              emptyContactsAttributes: false,
              disableNotification: true,
              ...(g.blocklist ? { emailBlacklist: true } : {}),
            },
            this.o.signal,
          );
          processId = res.data?.processId;
        });
        for (const m of chunk) {
          sent.add(m.i);
          if (outcome.kind !== 'done') {
            if (!failed.has(m.i)) failed.set(m.i, outcome);
          } else if (processId !== undefined) newest.set(m.i, Math.max(newest.get(m.i) ?? 0, processId));
        }
      }
    }
    for (const i of sent) {
      const op = ops[i]!;
      const id = newest.get(i);
      outcomes[i] =
        failed.get(i) ?? (id !== undefined ? { kind: 'accepted', ref: `import:${id}`, ledger: ledgerOf(op) } : { kind: 'done', ledger: ledgerOf(op) });
    }
    // Brevo's import only adds to lists: opt-outs leave theirs by the remove route.
    await removeFromLists(this.o.client, this.o.call, ops, lists, outcomes, this.o.signal);
    return outcomes;
  }

  /**
   * Groups the rows into imports by (blocklist, list): listIds apply to every row of an
   * import, so one import per list (a handful per claim) rather than per set of lists (as
   * many as the combinations of lists and topics). A contact in several lists is a row of
   * each, its attributes only in the last of them to be sent: an earlier one Brevo accepted
   * before a later one failed (the operation is retried) carries no value to be overtaken.
   * Operations with nothing to send are done at once (in `outcomes`). Blocklisting first.
   */
  private async group(
    ops: OpRow[],
    ledger: Map<string, LedgerEntry>,
    lists: Array<{ add: number[] }>,
    defaultListId: (op: OpRow) => Promise<number>,
    outcomes: Outcome[],
  ): Promise<ImportGroup[]> {
    const groups = new Map<string, ImportGroup>();
    const attributes = new Map<number, NonNullable<ImportRow['attributes']>>();
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const body = contactBody(op.email, op.payload as ContactPayload, ledger.get(op.email), lists[i]!.add);
      if (nothingToSend(body)) {
        outcomes[i] = { kind: 'done', ledger: ledgerOf(op) };
        continue;
      }
      const listIds = body.listIds && body.listIds.length > 0 ? body.listIds : [await defaultListId(op)];
      const blocklist = body.emailBlacklisted === true;
      for (const list of listIds) {
        const key = `${blocklist ? 'B' : '-'}|${list}`;
        const g = groups.get(key) ?? { blocklist, listIds: [list], members: [] };
        g.members.push({ i, row: { email: op.email } });
        groups.set(key, g);
      }
      if (body.attributes) attributes.set(i, body.attributes);
    }
    const ordered = [...groups.values()].sort((a, b) => Number(b.blocklist) - Number(a.blocklist) || a.listIds[0]! - b.listIds[0]!);
    const last = new Map<number, { row: ImportRow }>();
    for (const g of ordered) for (const m of g.members) last.set(m.i, m);
    for (const [i, attrs] of attributes) {
      const m = last.get(i)!;
      m.row = { email: m.row.email, attributes: attrs };
    }
    return ordered;
  }

  /**
   * Follows accepted imports to their end (GET /processes: one listing call covers up to 50
   * processes, for every process of a cluster). The calls come out of a fixed share of the
   * hourly "other" budget (FOLLOW_SHARE), paced across the cluster through the store: the
   * fuller the share, the longer the gap (FollowPacer). When the pacer or the "other"
   * budget says no, nothing waits: the imports stay `awaiting` and a later round settles
   * them. Rows Brevo reports invalid become dead letters; the rest done.
   */
  async reconcile(): Promise<FollowResult> {
    const { store, client, now } = this.o;
    const awaiting = (await store.listAwaiting(AWAITING_SCAN)).filter((a) => a.ref.startsWith('import:'));
    if (awaiting.length === 0) return { completed: 0, open: 0, listed: 0 };
    const pacer = this.pacer();
    const want = new Map(awaiting.map((a) => [Number(a.ref.slice('import:'.length)), a.ref]));
    const minId = Math.min(...want.keys());
    let completed = 0;
    let listed = 0;
    for (let offset = 0; want.size > 0; offset += PROCESSES_PAGE) {
      // Never wait on the "other" budget here: lists, folders and event batches need it too.
      if (client.governor && client.governor.waitMs('other') > 0) break;
      if (!(await pacer.take({ first: offset === 0 }))) break;
      let procs: BrevoProcess[];
      try {
        const { data } = await client.listProcesses(PROCESSES_PAGE, offset, AbortSignal.any([this.o.signal, AbortSignal.timeout(FOLLOW_CALL_TIMEOUT_MS)]));
        procs = data?.processes ?? [];
        listed++;
      } catch (err) {
        if (this.o.signal.aborted) throw err;
        this.o.log.warn(
          { err: errorMessage(err), awaiting: awaiting.length },
          'could not list Brevo import processes; the imports stay accepted and are followed later',
        );
        break;
      }
      for (const p of procs) {
        const ref = want.get(p.id);
        if (!ref) continue;
        if (p.status === 'completed') {
          await this.finish(ref, p);
          completed++;
          want.delete(p.id);
        } else if (p.status === 'failed' || p.status === 'aborted') {
          const rows = await store.opsByRef(ref);
          await store.retryOps(
            rows.map((r) => ({ id: r.id, nextAt: now(), code: 'import_failed', message: `Brevo import process ${p.id} ended ${p.status}` })),
            now(),
          );
          want.delete(p.id);
        } else want.delete(p.id); // still running: look again next round
      }
      if (procs.length < PROCESSES_PAGE || procs.every((p) => p.id < minId)) break;
    }
    return { completed, open: awaiting.length - completed, listed };
  }

  /** The pacer for the hourly "other" limit as the governor knows it (the plan's, or smaller as Brevo announced). */
  private pacer(): FollowPacer {
    const hourly =
      this.o.client.governor
        ?.status()
        .find((b) => b.bucket === 'other')
        ?.windows.find((w) => w.windowMs >= HOUR_MS)?.limit ?? DEFAULT_OTHER_PER_HOUR;
    return new FollowPacer({ store: this.o.store, perHour: Math.max(1, Math.floor(hourly * FOLLOW_SHARE)) });
  }

  /** A completed import: rows its report files list are dead letters, the others done. */
  private async finish(ref: string, p: BrevoProcess): Promise<void> {
    const { store, now } = this.o;
    const { metrics } = this.o.call;
    const invalid = await this.invalidRows(ref, p);
    const rows = await store.opsByRef(ref);
    const done = rows.filter((r) => !invalid.has(r.email)).map((r) => r.id);
    const dead = rows
      .filter((r) => invalid.has(r.email))
      .map((r) => ({ id: r.id, code: 'import_invalid_row', message: `Brevo import ${p.id} refused the row: ${invalid.get(r.email)}` }));
    if (done.length) await store.completeOps(done, now());
    if (dead.length) {
      await store.deadOps(dead, now());
      for (const r of dead) metrics.dead.inc({ kind: 'contact', code: r.code });
    }
    metrics.delivered.inc({ kind: 'contact' }, done.length);
  }

  /** email -> why, from the report files a finished import process links to. */
  private async invalidRows(ref: string, p: BrevoProcess): Promise<Map<string, string>> {
    const invalid = new Map<string, string>();
    const files = ((p.info as { import?: Record<string, unknown> } | undefined)?.import ?? {}) as Record<string, unknown>;
    for (const [name, url] of Object.entries(files)) {
      if (typeof url !== 'string' || !/^https?:\/\//.test(url)) continue;
      try {
        // Report files are plain downloads: never send the API key to them.
        const res = await fetch(url, { signal: AbortSignal.timeout(REPORT_TIMEOUT_MS) });
        if (res.ok) for (const r of parseImportReport(await res.text())) invalid.set(r.email, `${name}: ${r.reason}`);
      } catch (err) {
        this.o.log.warn({ ref, file: name, err: errorMessage(err) }, 'could not read a Brevo import report; its rows are counted as imported');
      }
    }
    return invalid;
  }
}

/** `EMAIL;REASON` lines of a Brevo import report file. */
export function parseImportReport(csv: string): Array<{ email: string; reason: string }> {
  const out: Array<{ email: string; reason: string }> = [];
  for (const line of csv.split(/\r?\n/).slice(1)) {
    if (!line.trim()) continue;
    const [email, ...rest] = line.split(/[;,]/);
    if (email) out.push({ email: email.trim().toLowerCase(), reason: rest.join(';').trim() || 'invalid row' });
  }
  return out;
}

/** Splits items into chunks of at most maxRows and about maxBytes each. */
export function chunkBySize<T>(items: T[], maxRows: number, maxBytes: number, size: (t: T) => number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const it of items) {
    const b = size(it);
    if (cur.length > 0 && (cur.length >= maxRows || bytes + b > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
