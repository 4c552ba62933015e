// Who may use /admin and /ui (README, HTTP routes): the holder of server.admin_token (bearer
// header, or the cookie GET /ui?token= trades it for), or without a token a local client that
// talks to the server directly; and, either way, no state change that another site started.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const ADMIN_COOKIE = 'tajo_admin';

/** Headers a reverse proxy adds: behind one, the socket's loopback address says nothing about the client. */
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip'] as const;
/** Names a browser only sends for this machine: any other Host may be a DNS name rebound to 127.0.0.1. */
const LOOPBACK_HOST = /^(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/i;

interface Refusal {
  status: 401 | 403;
  reason: string;
  message: string;
}

function refuse(reply: FastifyReply, r: Refusal): FastifyReply {
  return reply.code(r.status).send({ ok: false, reason: r.reason, message: r.message });
}

/** Equal strings, compared in a time that depends on neither where they differ nor their lengths. */
export function secretEquals(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The admin cookie's value: derived from the token, so the browser never stores the token itself. */
function cookieValueFor(token: string): string {
  return createHmac('sha256', token).update('tajo-ses admin cookie v1').digest('base64url');
}

function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function cookies(req: FastifyRequest, name: string): string[] {
  const out: string[] = [];
  for (const part of (header(req, 'cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) out.push(part.slice(eq + 1).trim());
  }
  return out;
}

/** The path and the query of a raw URL, the query without its leading '?'. */
function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

/** A URL as it may be logged: its query can carry a token, so it is left out. */
export function pathOnly(url: string | undefined): string {
  return splitUrl(url ?? '').path;
}

/** Does `origin` (scheme://host[:port]) name the host the request was sent to? */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    const o = new URL(origin);
    // Through URL on both sides, so that an explicit default port compares equal to none.
    return (o.protocol === 'http:' || o.protocol === 'https:') && o.host === new URL(`${o.protocol}//${host}`).host;
  } catch {
    return false; // 'null' (a sandboxed or privacy-sensitive context) or garbage
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A state change (any other method) must come from this site: a browser on another site can send
 * a form post (text/plain, urlencoded, multipart) with the admin cookie or to a loopback server,
 * but neither a JSON body nor an Authorization header without a CORS preflight, which this
 * server never grants. `Origin` and `Sec-Fetch-Site`, when the browser sends them, say it outright.
 */
function crossSiteRefusal(req: FastifyRequest): Refusal | undefined {
  if (SAFE_METHODS.has(req.method)) return undefined;
  const refusal = (why: string): Refusal => ({
    status: 403,
    reason: 'cross_site_refused',
    message: `${why}; admin state changes are refused from other sites`,
  });
  const site = header(req, 'sec-fetch-site');
  if (site === 'cross-site' || site === 'same-site') return refusal(`Sec-Fetch-Site is ${site}`);
  const origin = header(req, 'origin');
  if (origin !== undefined && !sameOrigin(origin, header(req, 'host'))) return refusal(`Origin ${origin.slice(0, 100)} is not this server`);
  const type = (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json' && header(req, 'authorization') === undefined) {
    return refusal('send Content-Type: application/json (or an Authorization: Bearer header)');
  }
  return undefined;
}

/** Without a token: a direct client on this machine, addressing the server by a loopback name. */
function loopbackRefusal(req: FastifyRequest): Refusal | undefined {
  if (!isLoopbackAddress(req.socket.remoteAddress)) {
    return {
      status: 403,
      reason: 'admin_loopback_only',
      message: 'server.admin_token is not set: /admin and /ui answer loopback clients only; set TAJO_ADMIN_TOKEN to open them',
    };
  }
  const proxied = PROXY_HEADERS.find((h) => req.headers[h] !== undefined);
  if (proxied) {
    return {
      status: 403,
      reason: 'admin_proxied',
      message: `the request carries ${proxied}: through a reverse proxy every client looks local, so without server.admin_token /admin and /ui refuse proxied requests; set TAJO_ADMIN_TOKEN`,
    };
  }
  if (!LOOPBACK_HOST.test(header(req, 'host') ?? '')) {
    return {
      status: 403,
      reason: 'admin_host_not_loopback',
      message: 'without server.admin_token, /admin and /ui answer Host localhost, 127.0.0.1 or [::1] only (a DNS name may be rebound to this machine)',
    };
  }
  return undefined;
}

/** The hooks of the admin routes, for one token ('' = loopback-only mode). */
export function adminAccess(token: string) {
  const cookieValue = token ? cookieValueFor(token) : '';
  const hasQueryToken = (req: FastifyRequest) => new URLSearchParams(splitUrl(req.url).query).has('token');

  function tokenRefusal(req: FastifyRequest): Refusal | undefined {
    const auth = header(req, 'authorization') ?? '';
    if (auth.startsWith('Bearer ') && secretEquals(auth.slice(7), token)) return undefined;
    if (cookies(req, ADMIN_COOKIE).some((v) => secretEquals(v, cookieValue))) return undefined;
    return {
      status: 401,
      reason: 'unauthorized',
      message: hasQueryToken(req)
        ? '?token= is accepted by GET /ui only (it becomes a cookie); send Authorization: Bearer <server.admin_token>'
        : 'send Authorization: Bearer <server.admin_token>',
    };
  }

  return {
    /** onRequest of every admin route: before the body is read, so a refused client costs nothing. */
    async guard(req: FastifyRequest, reply: FastifyReply) {
      const refusal = (token ? tokenRefusal(req) : loopbackRefusal(req)) ?? crossSiteRefusal(req);
      if (refusal) return refuse(reply, refusal);
    },

    /**
     * onRequest of GET /ui, before `guard`: a link with ?token= (the way to open the dashboard in a
     * browser) is traded for an HttpOnly cookie and a redirect to the same URL without the token,
     * so that the token leaves the address bar, the history and the Referer at once.
     */
    async tokenExchange(req: FastifyRequest, reply: FastifyReply) {
      if (!token || !hasQueryToken(req)) return;
      const params = new URLSearchParams(splitUrl(req.url).query);
      if (!secretEquals(params.get('token') ?? '', token)) {
        return refuse(reply, { status: 401, reason: 'unauthorized', message: 'the ?token= given is not server.admin_token' });
      }
      params.delete('token');
      const rest = params.toString();
      // Secure when a TLS proxy says so; over plain HTTP a browser would drop a Secure cookie.
      const secure = header(req, 'x-forwarded-proto') === 'https' ? '; Secure' : '';
      return reply
        .code(303)
        .header('set-cookie', `${ADMIN_COOKIE}=${cookieValue}; Path=/; HttpOnly; SameSite=Strict${secure}`)
        .header('location', rest ? `/ui?${rest}` : '/ui')
        .send();
    },
  };
}
