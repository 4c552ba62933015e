// `tajo-ses`: each command is a thin layer over engine functions.
import { ConfigError, configWarnings, loadConfig, maskSecrets, resolveConfigPath } from '../config/load.js';
import { stringify } from 'yaml';
import { formatDuration, parseDuration } from '../config/duration.js';
import { DRIFT_KINDS, type ReconcileReport } from '../engine/reconcile.js';
import { makeOut, pad, type Out } from './output.js';
import { DEMO_INTAKES, formatDemo, runDemo } from './demo.js';
import { openStore } from '../store/index.js';
import { CHECK_MAX_LAG_SECONDS, collectStatus, operatorReasons, type StatusReport } from '../engine/status.js';
import { failureView, refusedView } from '../engine/failures.js';
import { createConnector, defaultLogger, type Connector } from '../engine/connector.js';
import { isOwnerGone } from '../engine/owner.js';
import { buildServer } from '../server/app.js';
import { InboxRetention, retentionPolicy } from '../engine/retention.js';
import type { TajoConfig } from '../config/schema.js';
import { errorMessage, TajoError } from '../core/errors.js';
import type { BucketStatus } from '../brevo/governor.js';
import { Scheduler } from '../engine/scheduler.js';
import { enabledStreams, STREAMS, type StreamName, type BackfillSummary } from '../engine/backfill.js';
import { runChecks } from '../engine/check.js';
import type { OpRow, OpState, Store } from '../store/port.js';
import { commandHelp, helpName, USAGE, wantsHelp } from './help.js';
import { initCommand } from './init.js';
import { simCommand } from './sim.js';
import { choiceFlag, intFlag, parse, UsageError, type Flags } from './args.js';
import { untilSignal } from './signals.js';
import type { AddressInfo } from 'node:net';

/** The thing named does not exist or is not in the state the command needs (exit 1). */
class NotFoundError extends TajoError<'not_found'> {
  constructor(message: string) {
    super('not_found', message);
  }
}

/** What each operation state means, for messages and `status`. */
export const OP_STATE_MEANING: Record<OpState, string> = {
  pending: 'waiting for its turn to be sent to Brevo',
  inflight: 'being sent to Brevo by a worker right now',
  awaiting: 'accepted by Brevo in an import that Brevo has not finished applying',
  done: 'delivered to Brevo',
  dead: 'refused by Brevo for good, or after delivery.max_attempts tries: a dead letter',
  discarded: 'a dead letter dropped by an operator',
  superseded: 'replaced by a newer write for the same contact before it was sent',
};

function load(flags: Flags, requireBrevoKey = true): TajoConfig {
  return loadConfig(resolveConfigPath(flags.config as string | undefined), { requireBrevoKey });
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const json = rest.includes('--json');
  const out = makeOut(json);
  try {
    if (cmd === undefined || cmd === '-h' || cmd === '--help' || (cmd === 'help' && rest[0] === undefined)) {
      out.line(USAGE);
      return cmd === undefined ? 2 : 0;
    }
    // `tajo-ses serve --help` and `tajo-ses help serve`: the command's help, and nothing else.
    if (cmd === 'help' || wantsHelp(rest)) {
      const name = cmd === 'help' ? helpName(rest[0]!, rest.slice(1)) : helpName(cmd, rest);
      const help = commandHelp(name);
      if (help === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}; run 'tajo-ses --help'`);
      out.line(help);
      return 0;
    }
    switch (cmd) {
      case 'demo':
        return await demo(rest, out);
      case 'serve':
        return await serve(rest, out);
      case 'backfill':
        return await backfill(rest, out);
      case 'check':
        return await check(rest, out);
      case 'reconcile':
        return await reconcile(rest, out);
      case 'status':
        return await status(rest, out);
      case 'failures':
        return await failures(rest, out);
      case 'config':
        return await configCmd(rest, out);
      case 'init':
        return await initCommand(rest, out);
      case 'sim':
        return await simCommand(rest, out);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(cmd)}; run 'tajo-ses --help'`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      if (json) out.emit({ ok: false, error: 'invalid_config', problems: err.problems }, () => '');
      else for (const p of err.problems) out.err(p);
      return 2;
    }
    if (err instanceof UsageError) {
      out.err(err.message);
      return 2;
    }
    out.err(`error: ${errorMessage(err)}`);
    return 1;
  }
}

async function demo(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, { events: { type: 'string' }, contacts: { type: 'string' }, intake: { type: 'string' }, keep: { type: 'boolean' } });
  const events = intFlag(flags.events, 'events', 300, 14, 1_000_000);
  const contacts = intFlag(flags.contacts, 'contacts', 60, 1, 1_000_000);
  const intake = choiceFlag(flags.intake, 'intake', 'sns', DEMO_INTAKES);
  if (!out.json) out.line(`Starting the Brevo and SNS simulators and the connector on loopback (${events} SES events over ${contacts} contacts)...`);
  const r = await runDemo({ events, contacts, out, keep: flags.keep === true, intake });
  out.emit(r, () => formatDemo(r));
  return r.ok ? 0 : 1;
}

async function serve(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, {});
  const cfg = load(flags);
  const log = defaultLogger(cfg.log.level, 1, cfg.log.format);
  for (const w of configWarnings(cfg)) log.warn(w);
  const threaded = cfg.server.engine_thread;
  const connector = await createConnector(cfg, {
    logger: log,
    role: 'serve',
    defaultMetrics: true,
    engine: threaded ? 'thread' : 'inline',
    // Exit so a supervisor restarts serve: SNS retries what was not acknowledged, the rest is stored.
    onEngineFailure: () => process.exit(1),
  });
  // SQLite is one process: a second serve on the same file would share it behind the first one's back.
  const single = connector.store.kind === 'sqlite' ? await holdSqliteServe(connector) : undefined;
  if (single && 'refused' in single) {
    out.err(single.refused);
    await connector.stop(0).catch(() => undefined);
    return 1;
  }
  const app = buildServer(connector);
  await connector.start();
  const host = cfg.server.host;
  await app.listen({ port: cfg.server.port, host });
  // With server.port 0 the system picks the port: log the one bound.
  const port = (app.server.address() as AddressInfo | null)?.port ?? cfg.server.port;
  const ses = cfg.connectors['amazon-ses'];
  // With the engine on its own thread, the scheduled syncs run there.
  const scheduler = ses.enabled && !threaded ? new Scheduler(connector, log) : undefined;
  await scheduler?.start();
  // With the engine on its own thread, retention runs there too.
  const retention = threaded ? undefined : new InboxRetention({ store: connector.store, log, policy: retentionPolicy(cfg) });
  retention?.start();
  // Every process may poll: SQS hands each message to one receiver at a time, and the inbox dedupes.
  const sqs = ses.enabled && ses.sync.events ? connector.createSqsIntake() : undefined;
  await sqs?.start();
  log.info(
    { host, port, store: connector.store.kind, topics: cfg.connectors['amazon-ses'].sns.topic_arns.length },
    'tajo-ses serving: POST /webhooks/amazon-ses',
  );
  if (!cfg.server.admin_token) log.warn('server.admin_token is not set: /admin and /ui answer loopback clients only');
  const sig = await untilSignal();
  log.info({ signal: sig }, 'stopping: no new requests, finishing in-flight work');
  await sqs?.stop();
  await app.close();
  await scheduler?.stop();
  await retention?.stop();
  await single?.release();
  await connector.stop();
  log.info('stopped cleanly');
  void out;
  return 0;
}

/** The store lease a `serve` holds on a SQLite store (renewed every third of its term). */
const SQLITE_SERVE_LEASE = 'serve';
const SQLITE_SERVE_LEASE_MS = 15_000;

/**
 * Takes the SQLite store's `serve` lease, or says which live process holds it. A holder that
 * died on this host (its pid is gone) does not count; one that stopped answering elsewhere
 * counts until its lease runs out.
 */
async function holdSqliteServe(connector: Connector): Promise<{ refused: string } | { release(): Promise<void> }> {
  const { store, owner } = connector;
  await store.migrate();
  const take = () => store.tryLease({ name: SQLITE_SERVE_LEASE, owner, ttlMs: SQLITE_SERVE_LEASE_MS });
  let r = await take();
  if (!r.acquired && isOwnerGone(r.holder)) {
    await store.releaseLease({ name: SQLITE_SERVE_LEASE, owner: r.holder });
    r = await take();
  }
  if (!r.acquired) {
    const [host, pid] = r.holder.split(':');
    return {
      refused:
        `serve: another 'tajo-ses serve' (pid ${pid} on ${host}) already runs on this SQLite store (${connector.config.store.url}); ` +
        'a SQLite store belongs to one process. Stop that one first, or run several instances on one PostgreSQL store (store.url: postgres://...).',
    };
  }
  const timer = setInterval(() => void take().catch(() => undefined), SQLITE_SERVE_LEASE_MS / 3);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await store.releaseLease({ name: SQLITE_SERVE_LEASE, owner }).catch(() => undefined);
    },
  };
}

function formatCluster(c: StatusReport['cluster']): string[] {
  const parts: string[] = ['', 'Processes on this store:'];
  parts.push(
    c.processes.length
      ? pad([
          ['owner', 'role', 'host', 'pid', 'last heartbeat', 'state'],
          ...c.processes.map((p) => [p.owner, p.role ?? '-', p.host, String(p.pid), `${p.secondsAgo.toFixed(0)} s ago`, p.alive ? 'alive' : 'silent']),
        ])
      : '  none running',
  );
  parts.push(`Scheduler (scheduled syncs, SES limiter): ${c.scheduler ? `${c.scheduler.owner} until ${c.scheduler.expiresAt}` : 'no holder'}`);
  if (c.backfill) parts.push(`Backfill running: ${c.backfill.owner} (since ${c.backfill.since})`);
  if (c.budget.length) {
    parts.push(
      '',
      'Shared Brevo budget (every process):',
      pad([
        ['bucket', 'used', 'paused until'],
        ...c.budget.map((b) => [b.bucket, b.windows.map((w) => `${w.used}/${w.limit} per ${Math.round(w.windowMs / 1000)}s`).join(', '), b.pausedUntil ?? '-']),
      ]),
    );
  }
  if (c.routes.length)
    parts.push('Routes learned from Brevo: ' + c.routes.map((r) => `${r.route} -> ${r.bucket} (${r.limit} per ${Math.round(r.windowMs / 1000)}s)`).join('; '));
  return parts;
}

function fmtBuckets(b: BucketStatus[]): string[][] {
  return b.map((x) => [x.bucket, x.windows.map((w) => `${w.used}/${w.limit} per ${Math.round(w.windowMs / 1000)}s`).join(', '), String(x.throttled)]);
}

export function formatStatus(s: StatusReport): string {
  const parts: string[] = [`Store: ${s.store}   at ${s.at}`, ''];
  parts.push(
    'Inbox (SNS envelopes): ' +
      (Object.entries(s.inbox)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'empty'),
  );
  parts.push('', 'Queues:');
  parts.push(
    s.queues.length
      ? pad([['kind', 'lane', 'state', 'class', 'count'], ...s.queues.map((q) => [q.kind, q.lane, q.state, q.class, String(q.count)])])
      : '  (no operations)',
  );
  parts.push('', 'Lag (oldest open operation):');
  parts.push(
    s.lag.length
      ? pad([['kind', 'class', 'open', 'seconds'], ...s.lag.map((l) => [l.kind, l.class, String(l.open), l.seconds.toFixed(1)])])
      : '  nothing waiting',
  );
  parts.push('', ...formatRetention(s));
  parts.push('', `Dead letters: ${s.deadLetters}${s.deadLetters > 0 ? "  (see 'tajo-ses failures list')" : ''}`);
  parts.push('', 'Streams:');
  parts.push(
    s.streams.length
      ? pad([
          ['stream', 'cursor', 'status', 'updated'],
          ...s.streams.map((c) => [c.stream, c.value ?? '', c.status ?? '', new Date(c.updatedAt).toISOString()]),
        ])
      : '  no backfill has run',
  );
  if (s.syncRuns.length) {
    const iso = (ms: number) => new Date(ms).toISOString();
    parts.push(
      '',
      'Sync runs (newest first):',
      pad([
        ['streams', 'started', 'seconds', 'read', 'written', 'error'],
        ...s.syncRuns
          .slice(0, 5)
          .map((r) => [
            r.streams.join(','),
            iso(r.startedAt),
            ((r.endedAt - r.startedAt) / 1000).toFixed(1),
            String(r.read),
            String(r.written),
            shorten(r.error ?? '', 60),
          ]),
      ]),
    );
  }
  parts.push('', ...formatBrevoHealth(s));
  if (s.rateLimit.length) parts.push('', 'Brevo rate-limit budget (last seen by serve):', pad([['bucket', 'used', '429s'], ...fmtBuckets(s.rateLimit)]));
  parts.push(...formatCluster(s.cluster));
  return parts.join('\n');
}

/** What the inbox holds and serve's last retention pass. */
function formatRetention(s: StatusReport): string[] {
  const r = s.retention;
  const now = Date.parse(s.at);
  const oldest = r.oldestBodyAt === null ? 'none' : `${new Date(r.oldestBodyAt).toISOString()} (${formatDuration(Math.max(0, now - r.oldestBodyAt))} old)`;
  const p = r.lastPass;
  const iso = (ms: number) => new Date(ms).toISOString();
  return [
    `Inbox retention: ${r.rows} message id(s) held (a replay of one is a duplicate), ${r.bodies} with their raw body; oldest body: ${oldest}`,
    p
      ? `  last pass: ${iso(p.at)} (bodies kept ${formatDuration(p.policy.bodiesMs)}, message ids ${formatDuration(p.policy.dedupeKeysMs)}); last prune: ` +
        (p.lastPrune ? `${iso(p.lastPrune.at)}, ${p.lastPrune.bodies} body(ies) and ${p.lastPrune.rows} row(s) dropped` : 'nothing dropped yet')
      : '  last pass: never (serve prunes every store.retention.every)',
  ];
}

/** Brevo's health as serve last saved it, and the last error on waiting work. */
function formatBrevoHealth(s: StatusReport): string[] {
  const iso = (ms: number | null) => (ms === null ? 'never' : new Date(ms).toISOString());
  const answer = (status: number | null | undefined, code: string) => (status ? `${status} ${code}` : code);
  const lines = ['Brevo health:'];
  const h = s.brevo;
  if (!h) lines.push('  not known yet (saved by serve once it calls Brevo)');
  else {
    lines.push(`  last success: ${iso(h.lastSuccessAt)}`);
    const e = h.lastError;
    lines.push(`  last error:   ${e ? `${answer(e.status, e.code)} on ${e.endpoint} at ${iso(e.at)}: ${e.message}` : 'none'}`);
    lines.push(
      `  streak:       ${h.streak ? `FAILING for ${h.streak.seconds.toFixed(0)} s, ${h.streak.calls} call(s) in a row (since ${iso(h.streak.since)})` : 'none'}   (saved ${iso(h.savedAt)})`,
    );
  }
  const w = s.waitingErrors;
  lines.push(
    w.newest
      ? `Waiting work with an error: ${w.count} operation(s); newest: ${answer(w.newest.status, w.newest.code)} at ${iso(w.newest.at)}: ${w.newest.message ?? ''}`
      : 'Waiting work with an error: none',
  );
  return lines;
}

async function withStore<T>(flags: Flags, fn: (store: Awaited<ReturnType<typeof openStore>>, cfg: TajoConfig) => Promise<T>): Promise<T> {
  const cfg = load(flags, false);
  const store = await openStore(cfg.store.url);
  try {
    await store.migrate();
    return await fn(store, cfg);
  } finally {
    await store.close();
  }
}

async function status(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, { check: { type: 'boolean' }, 'max-lag': { type: 'string' } });
  const maxLagSeconds = intFlag(flags['max-lag'], 'max-lag', CHECK_MAX_LAG_SECONDS, 1, 365 * 86_400);
  return withStore(flags, async (store) => {
    const s = await collectStatus(store, undefined, undefined, Date.now());
    const saved = await store.getState('governor');
    if (saved) s.rateLimit = JSON.parse(saved) as BucketStatus[];
    if (!flags.check) {
      out.emit(s, () => formatStatus(s));
      return 0;
    }
    // For monitoring: the exit code says whether an operator is needed, the lines say why.
    const reasons = operatorReasons(s, { maxLagSeconds });
    out.emit({ ok: reasons.length === 0, reasons }, () =>
      reasons.length ? reasons.map((r) => `NEEDS AN OPERATOR: ${r}`).join('\n') : 'OK: nothing needs an operator',
    );
    return reasons.length ? 1 : 0;
  });
}

/** Dead letters, optionally only those whose last Brevo code is `code`. */
async function deadLetters(store: Store, code: string | undefined, limit = 100_000): Promise<OpRow[]> {
  const rows = await store.listFailures({ limit });
  return code === undefined ? rows : rows.filter((r) => r.lastCode === code);
}

async function failures(argv: string[], out: Out): Promise<number> {
  const { flags, positionals } = parse(argv, { all: { type: 'boolean' }, limit: { type: 'string' }, code: { type: 'string' } });
  const [sub, idText] = positionals;
  const code = flags.code as string | undefined;
  const id = () => {
    const n = Number(idText);
    if (!idText || !Number.isInteger(n) || n <= 0) throw new UsageError(`failures ${sub}: give the id of a dead letter (see 'tajo-ses failures list')`);
    return n;
  };
  // One dead letter by id; anything else (unknown, delivered, waiting) is an error that says what it is.
  const deadLetter = async (store: Store): Promise<number> => {
    const n = id();
    const op = await store.getOp(n);
    if (!op) throw new NotFoundError(`no operation with id ${n} (see 'tajo-ses failures list')`);
    if (op.state !== 'dead') throw new NotFoundError(`operation ${n} is not a dead letter: its state is ${op.state} (${OP_STATE_MEANING[op.state]})`);
    return n;
  };
  const many = async (store: Store): Promise<number[]> => {
    if (!flags.all && code === undefined) return [await deadLetter(store)];
    if (idText !== undefined) throw new UsageError(`failures ${sub}: give either an id or --all / --code, not both`);
    return (await deadLetters(store, code)).map((r) => r.id);
  };
  return withStore(flags, async (store) => {
    switch (sub ?? 'list') {
      case 'list': {
        const limit = intFlag(flags.limit, 'limit', 100, 1, 100_000);
        const rows = (await deadLetters(store, code, limit)).map(failureView);
        const refused = (await store.listRefusedMessages({ limit })).filter((r) => code === undefined || r.reason === code).map(refusedView);
        if (out.json) for (const r of [...rows, ...refused]) out.emit(r, () => '');
        else if (rows.length === 0) out.line(code === undefined ? 'No dead letters.' : `No dead letters with code ${code}.`);
        else
          out.line(
            pad([
              ['id', 'kind', 'email', 'code', 'status', 'attempts', 'message'],
              ...rows.map((r) => [
                String(r.id),
                r.kind,
                r.email,
                r.error.code ?? '',
                String(r.error.status ?? ''),
                String(r.attempts),
                shorten(r.error.message ?? '', 80),
              ]),
            ]),
          );
        if (!out.json && refused.length > 0) {
          out.line('');
          out.line(`Messages refused at intake (never stored, nothing to retry; fix the cause, then redrive the dead-letter queue): ${refused.length}`);
          out.line(
            pad([
              ['id', 'source', 'reason', 'sqs message id', 'at', 'message'],
              ...refused.map((r) => [String(r.id), r.source, r.reason, r.sqsMessageId ?? '', r.at, shorten(r.message, 80)]),
            ]),
          );
        }
        return 0;
      }
      case 'show': {
        const r = await store.getOp(id());
        if (!r) throw new NotFoundError(`no operation with id ${idText} (see 'tajo-ses failures list')`);
        const v = failureView(r);
        out.emit(v, () => stringify(v));
        return 0;
      }
      case 'retry': {
        const ids = await many(store);
        const n = ids.length ? await store.retryFailures(ids, Date.now()) : 0;
        out.emit({ retried: n }, () => `${n} dead letter(s) queued again; a running 'serve' delivers them.`);
        return 0;
      }
      case 'discard': {
        const ids = await many(store);
        const n = ids.length ? await store.discardFailures(ids, Date.now()) : 0;
        out.emit({ discarded: n }, () => `Discarded ${n} dead letter(s).`);
        return 0;
      }
      default:
        throw new UsageError(`failures: unknown subcommand ${JSON.stringify(sub)}; use list, show ID, retry ID|--all, discard ID|--all`);
    }
  });
}

/** Cuts at a word boundary and says so, instead of mid-word. */
export function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > max / 2 ? cut.slice(0, space) : cut}…`;
}

async function configCmd(argv: string[], out: Out): Promise<number> {
  const { flags, positionals } = parse(argv, {});
  if (positionals[0] !== 'validate') throw new UsageError(`config: unknown subcommand ${JSON.stringify(positionals[0] ?? '')}; use 'tajo-ses config validate'`);
  const cfg = load(flags);
  const masked = maskSecrets(cfg);
  out.emit({ ok: true, config: masked, warnings: configWarnings(cfg) }, () =>
    [`# valid; effective configuration (secrets masked)`, ...configWarnings(cfg).map((w) => `# warning: ${w}`), stringify(masked)].join('\n'),
  );
  return 0;
}

async function backfill(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, { stream: { type: 'string', multiple: true }, full: { type: 'boolean' }, 'dry-run': { type: 'boolean' } });
  const streams = (flags.stream as string[] | undefined) ?? [];
  for (const s of streams)
    if (!(STREAMS as readonly string[]).includes(s)) throw new UsageError(`--stream: found ${JSON.stringify(s)}; allowed: ${STREAMS.join(', ')}`);
  const dryRun = flags['dry-run'] === true;
  const cfg = load(flags, !dryRun);
  if (streams.length === 0 && enabledStreams(cfg.connectors['amazon-ses']).length === 0)
    throw new UsageError('nothing to back fill: every stream is off in connectors.amazon-ses.sync; turn one on or name it with --stream');
  const log = defaultLogger(cfg.log.level === 'info' ? 'warn' : cfg.log.level, 2, cfg.log.format);
  const connector = await createConnector(cfg, { logger: log, role: 'backfill', ensureAttributes: !dryRun });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let summary: BackfillSummary | undefined;
  let awaitingImports = 0;
  try {
    if (dryRun) await connector.store.migrate();
    else await connector.start();
    if (!out.json)
      out.line(
        `Backfill of ${streams.length ? streams.join(', ') : 'all enabled streams'} from SES ${cfg.connectors['amazon-ses'].region} at ${cfg.connectors['amazon-ses'].ses_rate_limit} req/s${dryRun ? ' (dry run: nothing is written)' : ''}`,
      );
    summary = await connector.backfill(
      { streams: streams as StreamName[], full: flags.full === true, dryRun },
      {
        signal: abort.signal,
        onProgress: (p) =>
          out.progress(
            p.stream,
            p.read,
            undefined,
            `read, ${p.written} queued, ${p.ratePerSec.toFixed(0)}/s, ${p.sesCalls} SES calls${p.detail ? ` (${p.detail})` : ''}`,
          ),
      },
    );
    out.endProgress();
    if (abort.signal.aborted) {
      out.err("backfill interrupted; the cursor is kept: run 'tajo-ses backfill' again to resume.");
      return 130;
    }
    if (!dryRun) {
      // Follow the imports Brevo accepted while they keep settling (their invalid rows become
      // dead letters); following spends the scarce hourly budget, paced, so what Brevo has not
      // confirmed by then stays accepted and `serve` (or the next run) settles it. Never an
      // hour's wait.
      if (!out.json) out.line('Waiting for Brevo to take the writes and finish the imports...');
      awaitingImports = await connector
        .waitIdle(5 * 60_000, { includeAwaiting: true, awaitingForMs: IMPORT_FOLLOW_GRACE_MS })
        .then((r) => r.awaiting)
        .catch((err: unknown) => {
          out.err(`note: ${errorMessage(err)}; 'serve' or the next backfill finishes the writes`);
          return 0;
        });
      if (awaitingImports > 0)
        out.err(
          `note: Brevo accepted ${awaitingImports} contact write(s) in imports it has not confirmed yet; ` +
            "'serve' (or the next backfill) follows them within the hourly budget, and 'tajo-ses status' shows them as awaiting",
        );
    }
    const s = summary;
    out.emit({ ok: true, ...s, awaitingImports, deadLetters: (await connector.status()).deadLetters }, () => formatBackfill(s));
    return 0;
  } catch (err) {
    out.endProgress();
    if (abort.signal.aborted) {
      out.err("backfill interrupted; the cursor is kept: run 'tajo-ses backfill' again to resume.");
      return 130;
    }
    out.err(`backfill failed: ${errorMessage(err)}`);
    out.err("The cursor is kept: run 'tajo-ses backfill' again to resume ('tajo-ses status' shows where it stopped).");
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await connector.stop(5_000);
  }
}

/** `backfill` and `reconcile --fix` follow accepted imports while one settles at least this often. */
const IMPORT_FOLLOW_GRACE_MS = 10_000;

async function reconcile(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, { fix: { type: 'boolean' }, since: { type: 'string' }, samples: { type: 'string' } });
  const samples = intFlag(flags.samples, 'samples', 10, 0, 1000);
  let since: number | undefined;
  if (flags.since !== undefined) {
    const ms = parseDuration(String(flags.since));
    if (ms === undefined || ms <= 0) throw new UsageError(`--since: found ${JSON.stringify(flags.since)}; expected a duration such as 24h or 7d`);
    since = Date.now() - ms;
  }
  const fix = flags.fix === true;
  const cfg = load(flags);
  const log = defaultLogger(cfg.log.level === 'info' ? 'warn' : cfg.log.level, 2, cfg.log.format);
  const connector = await createConnector(cfg, { logger: log, role: 'reconcile', ensureAttributes: fix });
  try {
    // Only --fix starts the workers: a plain reconcile reads and writes nothing to Brevo.
    if (fix) await connector.start();
    else await connector.store.migrate();
    const report = await connector.reconcile({ fix, samples, ...(since !== undefined ? { since } : {}) });
    if (fix && report.queued) {
      if (!out.json) out.line(`Queued ${report.queued} correction(s); waiting for Brevo to take them...`);
      await connector.waitIdle(5 * 60_000, { includeAwaiting: true, awaitingForMs: IMPORT_FOLLOW_GRACE_MS });
    }
    out.emit(report, () => formatReconcile(report));
    return report.total > 0 ? 1 : 0;
  } finally {
    await connector.stop(5_000);
  }
}

function formatReconcile(r: ReconcileReport): string {
  const lines = [
    `Compared ${r.checked.ledger} contact(s) the connector wrote with ${r.checked.brevoContacts} read from Brevo${r.since ? ` (modified since ${r.since})` : ''}, ` +
      `and ${r.checked.lists} list(s); ${r.brevoCalls} Brevo read(s).`,
  ];
  if (r.total === 0) lines.push('No drift: Brevo holds what the connector wrote.');
  else {
    lines.push(pad([['drift', 'count'], ...DRIFT_KINDS.filter((k) => r.drift[k].count > 0).map((k) => [k, String(r.drift[k].count)])]));
    for (const k of DRIFT_KINDS) for (const d of r.drift[k].samples) lines.push(`  ${k}: ${JSON.stringify({ ...d, kind: undefined })}`);
    lines.push(
      r.queued !== undefined
        ? `${r.queued} correction(s) delivered through the outbox; run 'tajo-ses reconcile' again to confirm.`
        : `${r.total} drift(s); 'tajo-ses reconcile --fix' corrects them.`,
    );
  }
  return lines.join('\n');
}

function formatBackfill(s: BackfillSummary): string {
  const rows = Object.entries(s.streams).map(([k, v]) => [k, String(v?.read ?? 0), String(v?.written ?? 0), String(v?.pages ?? 0), String(v?.restarts ?? 0)]);
  const lines = [pad([['stream', 'read', 'queued', 'pages', 'restarts'], ...rows]), `${s.sesCalls} SES calls in ${s.seconds.toFixed(1)} s`];
  if (s.plan) {
    lines.push('', `Dry run: would write ${s.plan.contacts} contacts and ${s.plan.suppressions} suppressions; ${s.plan.blocklisted} blocklisted`);
    for (const [l, n] of Object.entries(s.plan.lists).sort()) lines.push(`  list ${l}: ${n}`);
    lines.push('Sample:', ...s.plan.sample.map((x) => `  ${JSON.stringify(x)}`));
  }
  return lines.join('\n');
}

async function check(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, { fix: { type: 'boolean' } });
  const cfg = load(flags, false);
  const connector = await createConnector(cfg, { logger: defaultLogger('silent', 2), ensureAttributes: false });
  try {
    await connector.store.migrate();
    const results = await runChecks(connector, { fix: flags.fix === true });
    const failed = results.filter((r) => !r.ok && !r.warning);
    if (out.json) for (const r of results) out.emit(r, () => '');
    else {
      for (const r of results) {
        out.line(`${r.ok ? (r.warning ? '!' : '✓') : '✗'} ${r.name}: ${r.detail}`);
        if (r.fix && (!r.ok || r.warning)) out.line(`    fix: ${r.fix}`);
      }
      out.line(failed.length ? `${failed.length} check(s) failed.` : 'All checks passed.');
    }
    return failed.length ? 1 : 0;
  } finally {
    await connector.stop();
  }
}
