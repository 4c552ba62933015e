// Numbered migrations, applied in order, each once, inside a transaction.
export const SQLITE_MIGRATIONS: Array<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'inbox, ops, ledger, cursors',
    sql: `
CREATE TABLE inbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  topic_arn TEXT,
  received_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  note TEXT,
  lease_owner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX inbox_state ON inbox(state, id);

CREATE TABLE ops (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  email TEXT NOT NULL,
  lane TEXT NOT NULL,
  priority INTEGER NOT NULL,
  payload TEXT NOT NULL,
  sources TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0,
  ref TEXT,
  last_code TEXT,
  last_message TEXT,
  last_status INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX ops_event_key ON ops(key) WHERE kind = 'event';
CREATE UNIQUE INDEX ops_contact_pending ON ops(key) WHERE kind = 'contact' AND state = 'pending';
CREATE INDEX ops_due ON ops(kind, state, priority, id);
CREATE INDEX ops_ref ON ops(ref) WHERE ref IS NOT NULL;
CREATE INDEX ops_inflight ON ops(state, lease_until) WHERE state = 'inflight';

CREATE TABLE contact_ledger (
  email TEXT PRIMARY KEY,
  attrs TEXT NOT NULL,
  blocklisted INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
);

CREATE TABLE cursors (
  stream TEXT PRIMARY KEY,
  value TEXT,
  status TEXT,
  note TEXT,
  updated_at INTEGER NOT NULL
);

CREATE TABLE kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'narrow queue of pending envelopes',
    // Claiming and closing an envelope used to rewrite its (large) row twice; a narrow queue
    // table keeps those writes to a few bytes, and the raw envelope is written once.
    sql: `
CREATE TABLE inbox_pending (
  id INTEGER PRIMARY KEY,
  lease_owner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0
);
INSERT INTO inbox_pending (id, lease_owner, lease_until) SELECT id, lease_owner, lease_until FROM inbox WHERE state = 'pending';
ALTER TABLE inbox ADD COLUMN outcome TEXT;
UPDATE inbox SET outcome = 'unparseable' WHERE state = 'unparseable';
CREATE INDEX inbox_outcome ON inbox(outcome) WHERE outcome IS NOT NULL;
`,
  },
  {
    version: 3,
    name: 'drop the unused inbox state index',
    // Since v2 every envelope keeps state 'stored' (the queue is inbox_pending), so the index
    // answered no query and cost a page write on every acknowledged webhook.
    sql: `
DROP INDEX IF EXISTS inbox_state;
`,
  },
  {
    version: 4,
    name: 'several processes: registry, leases, shared rate budget, open imports',
    // Grants are one row per take (bucket, running total `cum`, time, count), pruned past the
    // bucket's longest window (horizon_ms), so a 36,000/h window keeps at most ~36,000 small
    // rows; a window's use is read through budget_grants_at (see grantOf in rows.ts). The
    // bucket row is what a take locks (on PostgreSQL); it keeps the running total and the
    // latest grant's time, the pause, and the windows of the latest take, for status.
    // route_buckets: one learned window per route and window length.
    // ops_awaiting_email answers contactsWithOpenImports (see the adapters).
    sql: `
CREATE TABLE processes (
  owner TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  role TEXT,
  started_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
);

CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  acquired_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE budget_buckets (
  bucket TEXT PRIMARY KEY,
  paused_until INTEGER NOT NULL DEFAULT 0,
  horizon_ms INTEGER NOT NULL DEFAULT 0,
  windows TEXT NOT NULL DEFAULT '[]',
  granted INTEGER NOT NULL DEFAULT 0,
  last_at INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE budget_grants (
  bucket TEXT NOT NULL,
  cum INTEGER NOT NULL,
  at INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (bucket, cum)
);
CREATE INDEX budget_grants_at ON budget_grants(bucket, at, cum);

CREATE TABLE route_buckets (
  route TEXT NOT NULL,
  window_ms INTEGER NOT NULL,
  bucket TEXT NOT NULL,
  limit_count INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (route, window_ms)
);

CREATE INDEX ops_awaiting_email ON ops(email) WHERE kind = 'contact' AND state = 'awaiting';
`,
  },
  {
    version: 5,
    name: 'inbox retention: bodies dropped, then rows',
    // A closed row first loses its raw body (body_pruned = 1, body ''), later the row itself;
    // one index serves both steps and status: held bodies by age, pruned rows by age.
    sql: `
ALTER TABLE inbox ADD COLUMN body_pruned INTEGER NOT NULL DEFAULT 0;
CREATE INDEX inbox_retention ON inbox(body_pruned, received_at);
`,
  },
  {
    version: 6,
    name: 'soft bounces counted per recipient (bounce_policy)',
    sql: `
CREATE TABLE soft_bounces (
  key TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX soft_bounces_email ON soft_bounces(email, at);
`,
  },
  {
    version: 7,
    name: 'Brevo list membership written by the contacts backfill (removals on a later full pass)',
    sql: `
CREATE TABLE list_members (
  list TEXT NOT NULL,
  email TEXT NOT NULL,
  pass TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (list, email)
);
`,
  },
  {
    version: 8,
    name: 'attempts history of an operation',
    sql: `ALTER TABLE ops ADD COLUMN history TEXT NOT NULL DEFAULT '[]';`,
  },
  {
    version: 9,
    name: 'messages an intake refused for good (poison SQS messages)',
    sql: `
CREATE TABLE refused_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  reason TEXT NOT NULL,
  message TEXT NOT NULL,
  external_id TEXT,
  body TEXT NOT NULL,
  at INTEGER NOT NULL
);
`,
  },
];
