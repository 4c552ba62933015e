// A thin typed client over fetch for the Brevo v3 endpoints the connector uses. It never
// retries by itself: the delivery engine decides, from the classified error, whether and
// when to try again, so a POST is never resent behind the engine's back.
import type { Logger } from 'pino';
import { TajoError } from '../core/errors.js';
import type { EventPayload } from '../core/plan.js';
import { bucketOf, routeKey, type Governor, type BrevoBucket } from './governor.js';

export type BrevoErrorCode =
  | 'too_many_requests'
  | 'server_error'
  | 'network_error'
  | 'timeout'
  | 'unauthorized'
  | 'invalid_parameter'
  | 'missing_parameter'
  | 'document_not_found'
  | 'duplicate_parameter'
  | 'not_acceptable'
  | 'permission_denied'
  | 'bad_response'
  | (string & {});

export class BrevoError extends TajoError<BrevoErrorCode> {
  readonly status: number;
  /** How long Brevo asked us to wait (429 `x-sib-ratelimit-reset`). */
  readonly retryAfterMs: number | undefined;
  readonly bucket: BrevoBucket;
  constructor(code: BrevoErrorCode, message: string, status: number, bucket: BrevoBucket, retryable: boolean, retryAfterMs?: number) {
    super(code, message, { retryable });
    this.name = 'BrevoError';
    this.status = status;
    this.bucket = bucket;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Which failures are worth another try, in one place: throttling, Brevo's own faults,
 * 425 Too Early, and anything where the request may not have reached Brevo.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 425 || status === 408 || status >= 500;
}

export interface BrevoClientOptions {
  baseUrl: string;
  apiKey: string;
  timeoutMs?: number;
  governor?: Governor;
  fetchImpl?: typeof fetch;
  userAgent?: string;
  /** At debug level, one line per call: method, route, status, ms, Brevo's request id (never the key or a body). */
  log?: Logger;
}

/**
 * A path as a log may show it: no query, and a segment that names a contact (an email, an id)
 * replaced, so that a debug trace carries no address.
 */
export function routeOf(path: string): string {
  return path
    .split('?')[0]!
    .split('/')
    .map((seg) => (/^\d+$/.test(seg) ? '{id}' : /@|%40/.test(seg) ? '{identifier}' : seg))
    .join('/');
}

export interface BrevoResponse<T> {
  status: number;
  data: T;
}

export interface ContactUpsert {
  email: string;
  attributes?: Record<string, string | number | boolean>;
  /** Only ever true: see CONTRACT.md section 4. */
  emailBlacklisted?: true;
  listIds?: number[];
}

/** A contact as GET /contacts and a list's contacts return it (the fields the connector reads). */
export interface BrevoContact {
  email: string;
  id?: number;
  emailBlacklisted?: boolean;
  modifiedAt?: string;
  attributes?: Record<string, unknown>;
  listIds?: number[];
}

function contactsQuery(q: { limit: number; offset: number; modifiedSince?: string }): string {
  const p = new URLSearchParams({ limit: String(q.limit), offset: String(q.offset), sort: 'asc' });
  if (q.modifiedSince) p.set('modifiedSince', q.modifiedSince);
  return p.toString();
}

export interface ImportRequest {
  jsonBody: Array<{ email: string; attributes?: Record<string, string | number | boolean> }>;
  listIds?: number[];
  updateExistingContacts: boolean;
  emptyContactsAttributes: boolean;
  emailBlacklist?: boolean;
  disableNotification?: boolean;
}

export interface BrevoProcess {
  id: number;
  status: 'queued' | 'in_process' | 'completed' | string;
  name?: string;
  [k: string]: unknown;
}

export interface BatchEventsResult {
  status?: string;
  errors?: Array<{ eventIndex?: number[] | number; message?: string }>;
}

function num(h: string | null): number | undefined {
  if (h === null || h === '') return undefined;
  const n = Number(h);
  return Number.isFinite(n) ? n : undefined;
}

export class BrevoClient {
  private readonly base: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  readonly governor: Governor | undefined;
  private readonly ua: string;
  private readonly log: Logger | undefined;

  constructor(opts: BrevoClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.fetchImpl = opts.fetchImpl ?? fetch;
    this.governor = opts.governor;
    this.ua = opts.userAgent ?? 'tajo-connector-amazon-ses';
    this.log = opts.log;
  }

  async request<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<BrevoResponse<T>> {
    const sentOn = this.governor ? this.governor.bucketFor(method, path) : bucketOf(path);
    let bucket = sentOn;
    const seq = this.governor ? await this.governor.acquire(bucket, signal) : 0;
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), this.timeoutMs);
    const onAbort = () => ctrl.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let res: Response;
    const t0 = performance.now();
    const trace = (status: number | string, requestId?: string | null) =>
      this.log?.isLevelEnabled('debug') &&
      this.log.debug(
        { call: 'brevo', method, route: routeOf(path), status, ms: Math.round(performance.now() - t0), ...(requestId ? { requestId } : {}) },
        'Brevo call',
      );
    try {
      res = await this.fetchImpl(this.base + path, {
        method,
        headers: {
          'api-key': this.apiKey,
          accept: 'application/json',
          'user-agent': this.ua,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctrl.signal,
      });
    } catch (err) {
      const timedOut = ctrl.signal.aborted && !signal?.aborted;
      trace(timedOut ? 'timeout' : 'network_error');
      // The request may or may not have reached Brevo: retryable (a duplicate keeps its event_key).
      throw new BrevoError(
        timedOut ? 'timeout' : 'network_error',
        `${method} ${path}: ${timedOut ? `no answer within ${this.timeoutMs} ms` : (err as Error).message}`,
        0,
        bucket,
        true,
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    trace(res.status, res.headers.get('x-sib-request-id') ?? res.headers.get('x-request-id'));
    const resetSec = num(res.headers.get('x-sib-ratelimit-reset'));
    if (this.governor) {
      const headers = {
        limit: num(res.headers.get('x-sib-ratelimit-limit')),
        remaining: num(res.headers.get('x-sib-ratelimit-remaining')),
        resetSec,
      };
      bucket = this.governor.observe(sentOn, seq, res.status, headers, routeKey(method, path));
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new BrevoError('network_error', `${method} ${path}: response cut off: ${(err as Error).message}`, res.status, bucket, true);
    }
    let data: unknown = undefined;
    if (text.length > 0) {
      try {
        data = JSON.parse(text);
      } catch {
        // A success whose body cannot be read (a proxy cut it, a gateway page): what Brevo
        // did is unknown, and an id or process id the caller needs is missing. Retryable:
        // every write is an upsert, a list or folder is looked up by name before it is
        // created, and a retried event is looked up by its event_key first.
        if (res.ok)
          throw new BrevoError(
            'bad_response',
            `${method} ${path} -> ${res.status} with a body that is not JSON: ${text.slice(0, 100)}`,
            res.status,
            bucket,
            true,
          );
        data = text;
      }
    }
    if (res.ok) return { status: res.status, data: data as T };
    const obj = data && typeof data === 'object' ? (data as { code?: unknown; message?: unknown }) : {};
    const code = typeof obj.code === 'string' ? obj.code : res.status === 429 ? 'too_many_requests' : res.status >= 500 ? 'server_error' : `http_${res.status}`;
    const message = typeof obj.message === 'string' ? obj.message : typeof data === 'string' ? data.slice(0, 300) : res.statusText;
    const retryAfterMs = res.status === 429 ? Math.max(resetSec ?? 1, 0.25) * 1000 : undefined;
    throw new BrevoError(code, `${method} ${path} -> ${res.status} ${code}: ${message}`, res.status, bucket, isRetryableStatus(res.status), retryAfterMs);
  }

  getAccount(signal?: AbortSignal) {
    return this.request<Record<string, unknown>>('GET', '/account', undefined, signal);
  }

  /** Creates or updates one contact (POST /contacts with updateEnabled). */
  upsertContact(c: ContactUpsert, signal?: AbortSignal) {
    // Only `true` is ever sent: payloads come back from the store untyped, and a `false`
    // would unblock a contact in Brevo (CONTRACT.md section 4).
    const { emailBlacklisted, ...rest } = c;
    const body = emailBlacklisted === true ? { ...rest, emailBlacklisted: true, updateEnabled: true } : { ...rest, updateEnabled: true };
    return this.request<{ id?: number } | undefined>('POST', '/contacts', body, signal);
  }

  importContacts(req: ImportRequest, signal?: AbortSignal) {
    return this.request<{ processId: number }>('POST', '/contacts/import', req, signal);
  }

  getProcess(id: number | string, signal?: AbortSignal) {
    return this.request<BrevoProcess>('GET', `/processes/${encodeURIComponent(String(id))}`, undefined, signal);
  }

  listProcesses(limit: number, offset: number, signal?: AbortSignal) {
    return this.request<{ processes?: BrevoProcess[]; count?: number }>('GET', `/processes?limit=${limit}&offset=${offset}&sort=desc`, undefined, signal);
  }

  /** One contact by email; 404 (document_not_found) when Brevo has none. */
  getContact(email: string, signal?: AbortSignal) {
    return this.request<{ id: number; email?: string }>('GET', `/contacts/${encodeURIComponent(email)}?identifierType=email_id`, undefined, signal);
  }

  /**
   * GET /events (custom events only), newest first: of some contacts (or all), some event
   * names, between two dates (RFC 3339; both or neither), `limit` from `offset`.
   */
  listEvents(q: { contactIds?: number[]; eventNames: string[]; startDate?: string; endDate?: string; limit: number; offset?: number }, signal?: AbortSignal) {
    const p = new URLSearchParams();
    for (const id of q.contactIds ?? []) p.append('contact_id', String(id));
    for (const name of q.eventNames) p.append('event_name', name);
    if (q.startDate !== undefined && q.endDate !== undefined) {
      p.set('startDate', q.startDate);
      p.set('endDate', q.endDate);
    }
    p.set('limit', String(q.limit));
    if (q.offset) p.set('offset', String(q.offset));
    return this.request<{ events?: Array<{ event_name?: string; event_properties?: Record<string, unknown> }>; count?: number }>(
      'GET',
      `/events?${p.toString()}`,
      undefined,
      signal,
    );
  }

  sendEvent(ev: EventPayload, signal?: AbortSignal) {
    return this.request<undefined>('POST', '/events', ev, signal);
  }

  /**
   * POST /events/batch takes `{events: [...]}` (up to 200). 202: all accepted; 207: some
   * refused, listed by index in `errors`, the others applied; 400: none applied.
   */
  sendEvents(evs: EventPayload[], signal?: AbortSignal) {
    return this.request<BatchEventsResult | undefined>('POST', '/events/batch', { events: evs }, signal);
  }

  listAttributes(signal?: AbortSignal) {
    return this.request<{ attributes: Array<{ name: string; category: string; type?: string }> }>('GET', '/contacts/attributes', undefined, signal);
  }

  createAttribute(category: string, name: string, type: string, signal?: AbortSignal) {
    return this.request<undefined>('POST', `/contacts/attributes/${encodeURIComponent(category)}/${encodeURIComponent(name)}`, { type }, signal);
  }

  listFolders(limit: number, offset: number, signal?: AbortSignal) {
    return this.request<{ folders?: Array<{ id: number; name: string }>; count?: number }>(
      'GET',
      `/contacts/folders?limit=${limit}&offset=${offset}`,
      undefined,
      signal,
    );
  }

  createFolder(name: string, signal?: AbortSignal) {
    return this.request<{ id: number }>('POST', '/contacts/folders', { name }, signal);
  }

  listFolderLists(folderId: number, limit: number, offset: number, signal?: AbortSignal) {
    return this.request<{ lists?: Array<{ id: number; name: string }>; count?: number }>(
      'GET',
      `/contacts/folders/${folderId}/lists?limit=${limit}&offset=${offset}`,
      undefined,
      signal,
    );
  }

  createList(name: string, folderId: number, signal?: AbortSignal) {
    return this.request<{ id: number }>('POST', '/contacts/lists', { name, folderId }, signal);
  }

  /**
   * Takes at most 150 emails (Brevo's limit per call). Brevo answers 400 when none of them
   * was in the list (or exists): for a removal that is done, not an error.
   */
  async removeFromList(listId: number, emails: string[], signal?: AbortSignal) {
    try {
      return await this.request<{ contacts?: { success?: string[]; failure?: string[] } }>(
        'POST',
        `/contacts/lists/${listId}/contacts/remove`,
        { emails },
        signal,
      );
    } catch (err) {
      if (err instanceof BrevoError && err.status === 400 && /not in (the )?list|already removed|does not exist/i.test(err.message)) {
        return { status: 400, data: { contacts: { success: [], failure: emails } } };
      }
      throw err;
    }
  }

  /** GET /contacts: one page (Brevo takes at most 1000 a page), oldest first, optionally only those modified since `since`. */
  listContacts(q: { limit: number; offset: number; modifiedSince?: string }, signal?: AbortSignal) {
    return this.request<{ contacts?: BrevoContact[]; count?: number }>('GET', `/contacts?${contactsQuery(q)}`, undefined, signal);
  }

  /** GET /contacts/lists/{id}/contacts: one page of a list's members (Brevo takes at most 500 a page), oldest first. */
  listMembers(listId: number, q: { limit: number; offset: number; modifiedSince?: string }, signal?: AbortSignal) {
    return this.request<{ contacts?: BrevoContact[]; count?: number }>('GET', `/contacts/lists/${listId}/contacts?${contactsQuery(q)}`, undefined, signal);
  }

  addToList(listId: number, emails: string[], signal?: AbortSignal) {
    return this.request<{ contacts?: { success?: string[]; failure?: string[] } }>('POST', `/contacts/lists/${listId}/contacts/add`, { emails }, signal);
  }
}
