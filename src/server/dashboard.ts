// The operator dashboard: plain server-rendered HTML over the same data as /admin/status.
import { createHash } from 'node:crypto';
import type { StatusReport } from '../engine/status.js';
import type { FailureView } from '../engine/failures.js';

export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function table(headers: string[], rows: unknown[][], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${esc(empty)}</p>`;
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:20px}h2{font-size:16px;margin-top:2rem}
table{border-collapse:collapse;min-width:40rem}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left}
th{background:#f6f8fa}.empty{color:#57606a}.bad{color:#b42318;font-weight:600}
`;

/**
 * Headers of every /admin and /ui answer. The page runs no script at all and its one inline
 * style is allowed by hash; it may not be framed, and neither it nor the JSON (contact
 * addresses) may be cached, sniffed as another type or leak its URL in a Referer.
 */
export const ADMIN_RESPONSE_HEADERS = {
  'content-security-policy': `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

/** The page; its links carry no credential (the browser sends the admin cookie). */
export function renderDashboard(s: StatusReport, failures: FailureView[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>Tajo · Amazon SES connector</title>
<style>${STYLE}</style></head><body>
<h1>Amazon SES → Brevo</h1>
<p>Store: ${esc(s.store)} · at ${esc(s.at)} · <span class="${s.deadLetters > 0 ? 'bad' : ''}" id="dead">${s.deadLetters} dead letter(s)</span> · <a href="/admin/status">JSON</a></p>
<h2>Inbox</h2>
${table(['state', 'envelopes'], Object.entries(s.inbox), 'No SNS message received yet.')}
<h2>Lag by class</h2>
${table(
  ['kind', 'class', 'open', 'oldest (s)'],
  s.lag.map((l) => [l.kind, l.class, l.open, l.seconds.toFixed(1)]),
  'Nothing waiting.',
)}
<h2>Queues</h2>
${table(
  ['kind', 'lane', 'state', 'class', 'count'],
  s.queues.map((x) => [x.kind, x.lane, x.state, x.class, x.count]),
  'No operations yet.',
)}
<h2>Streams</h2>
${table(
  ['stream', 'cursor', 'status', 'updated'],
  s.streams.map((c) => [c.stream, c.value ?? '', c.status ?? '', new Date(c.updatedAt).toISOString()]),
  'No backfill has run.',
)}
<h2>Brevo rate limits</h2>
${table(
  ['bucket', 'windows (used/limit)', 'paused until', '429s'],
  s.rateLimit.map((b) => [
    b.bucket,
    b.windows.map((w) => `${w.used}/${w.limit} per ${Math.round(w.windowMs / 1000)}s`).join(', '),
    b.pausedUntil > Date.now() ? new Date(b.pausedUntil).toISOString() : '-',
    b.throttled,
  ]),
  'No Brevo call yet.',
)}
<h2>Dead letters</h2>
${table(
  ['id', 'kind', 'email', 'Brevo code', 'message', 'attempts', 'retry'],
  failures.map((f) => [f.id, f.kind, f.email, f.error.code ?? '', f.error.message ?? '', f.attempts, `tajo-ses failures retry ${f.id}`]),
  'No dead letters.',
)}
</body></html>`;
}
