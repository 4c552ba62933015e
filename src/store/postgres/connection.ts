// Turning store.url into pg settings, and pg failures into errors an operator can act on.
// The password never leaves this file: messages name the target as user@host:port/db.
import { TajoError } from '../../core/errors.js';

export interface PgTarget {
  /** The URL without `schema`, which is ours and not a libpq parameter. */
  connectionString: string;
  schema: string;
  /** user@host:port/db, safe to print. */
  label: string;
}

const MAX_IDENT_BYTES = 63;

export function parsePostgresUrl(url: string, schemaOverride?: string): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Not echoing the input: it may hold a password.
    throw new TajoError(
      'invalid_store_url',
      'store.url is not a valid PostgreSQL URL; use postgres://user:password@host:5432/db[?schema=NAME] (percent-encode special characters in the password)',
    );
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new TajoError('invalid_store_url', `store.url: expected postgres:// or postgresql://, got ${u.protocol}//`);
  }
  const fromUrl = u.searchParams.get('schema');
  u.searchParams.delete('schema');
  const schema = schemaOverride ?? (fromUrl === null || fromUrl === '' ? 'public' : fromUrl);
  if (schema.length === 0 || Buffer.byteLength(schema) > MAX_IDENT_BYTES || schema.includes('\0')) {
    throw new TajoError('invalid_store_url', `store.url: schema must be 1 to ${MAX_IDENT_BYTES} bytes without NUL characters`);
  }
  return { connectionString: u.toString(), schema, label: labelOf(u) };
}

function labelOf(u: URL): string {
  const user = u.username ? decodeURIComponent(u.username) : '(default user)';
  const host = u.hostname || u.searchParams.get('host') || 'localhost';
  const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
  return `${user}@${host}:${u.port || '5432'}/${db}`;
}

/** A double-quoted identifier: the schema name is used exactly as given, case included. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

interface PgLikeError {
  code?: unknown;
  message?: unknown;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * What to check when `err` means the database cannot be reached or used right now
 * (network, authentication, missing database, server shutting down, no free slots);
 * undefined for errors of the statement itself, which retrying cannot fix.
 */
export function availabilityHint(err: unknown, label: string): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as PgLikeError;
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  const reach = `check that PostgreSQL is running and reachable at ${label} (host, port, firewall) and that store.url names it`;
  if (code === '28P01' || code === '28000') return `check the user and password in store.url and the server's pg_hba.conf for ${label}`;
  if (code === '3D000') return `check the database name in store.url: it must already exist on the server (${label})`;
  if (code === '53300') return 'the server has no free connection slots: lower the number of connector processes or their pool size, or raise max_connections';
  if (code.startsWith('08') || code.startsWith('57P') || code === '53100' || code === '53200') return reach;
  if (NETWORK_CODES.has(code)) return reach;
  if (TLS_CODES.has(code) || /SSL|TLS/i.test(message)) return `check the TLS settings (sslmode, certificates) in store.url for ${label}`;
  if (
    /Connection terminated|timeout exceeded when trying to connect|Connection terminated due to connection timeout|Client has encountered a connection error|connection ended|not queryable/i.test(
      message,
    )
  )
    return reach;
  return undefined;
}

export function unavailable(what: string, err: unknown, hint: string): TajoError<'store_unavailable'> {
  const detail = err instanceof Error ? err.message : String(err);
  return new TajoError('store_unavailable', `PostgreSQL store: ${what}: ${detail}; ${hint}`, { cause: err, retryable: true });
}

/** The error to throw for `err`: availability problems become store_unavailable, the rest pass through. */
export function translate(what: string, err: unknown, label: string): unknown {
  if (err instanceof TajoError) return err;
  const hint = availabilityHint(err, label);
  return hint === undefined ? err : unavailable(what, err, hint);
}
