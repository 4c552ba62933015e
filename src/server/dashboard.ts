// The operator dashboard (/ui): one screen that answers "is it healthy, how far behind, what
// failed, what do I do". Rendered here, on the server, as HTML sections; the page's one script
// (ui-script.ts, served as /ui/app.js) fetches the same sections as JSON every few seconds
// and sends the buttons' POSTs. Every value goes through esc(); charts are inline SVG.
import { createHash } from 'node:crypto';
import type { EngineStatus } from '../engine/engines.js';
import type { FailureView } from '../engine/failures.js';
import { lastRunsByStream } from '../engine/sync-runs.js';
import type { TimelinePoint } from './timeline.js';
import { UI_SCRIPT_PATH } from './ui-script.js';

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
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1f24;max-width:80rem}
h1{font-size:20px;margin:0 0 .5rem}h2{font-size:16px;margin:1.5rem 0 .5rem}h3{font-size:14px;margin:1rem 0 .25rem}
table{border-collapse:collapse;min-width:30rem}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}.empty{color:#57606a}.bad{color:#b42318;font-weight:600}.ok{color:#1a7f37;font-weight:600}.warn{color:#9a6700;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:.75rem}.card{border:1px solid #d0d7de;border-radius:6px;padding:.5rem .75rem;min-width:13rem}
.card b{display:block;font-size:12px;color:#57606a;font-weight:500}.card small{font-weight:400}.big{font-size:18px}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart{border:1px solid #d0d7de;border-radius:6px;background:#fff}
.chart text{font-size:10px;fill:#57606a}.chart .axis{stroke:#d0d7de}
.line{fill:none;stroke-width:1.5}.received{stroke:#0969da;fill:#0969da}.delivered{stroke:#1a7f37;fill:#1a7f37}.failed{stroke:#cf222e;fill:#cf222e}.lag{stroke:#9a6700;fill:#9a6700}
.legend span{margin-right:1rem}.legend .received,.legend .delivered,.legend .failed,.legend .lag{stroke:none;background:none}
.k-received{color:#0969da}.k-delivered{color:#1a7f37}.k-failed{color:#cf222e}.k-lag{color:#9a6700}
button{font:inherit;padding:1px 8px;margin-right:4px;cursor:pointer}button.danger{color:#b42318}
pre{background:#f6f8fa;padding:.5rem;overflow:auto;max-width:70rem}#note{min-height:1.4em}
.toolbar{display:flex;gap:1rem;align-items:center;margin:.5rem 0}input[type=search]{font:inherit;padding:2px 6px;min-width:18rem}
`;

/**
 * Headers of every /admin and /ui answer. The page's only script is the same-origin file
 * /ui/app.js (no inline script, no eval), its only fetches go to this server, and its one inline
 * style is allowed by hash; it may not be framed, and neither it nor the JSON (contact
 * addresses) may be cached, sniffed as another type or leak its URL in a Referer.
 */
export const ADMIN_RESPONSE_HEADERS = {
  'content-security-policy': `default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

export interface DashboardData {
  status: EngineStatus;
  /** Dead letters (the first ones, oldest first), filtered by `email` when given. */
  failures: FailureView[];
  /** Every dead letter's code, counted (not filtered). */
  byCode: Array<{ code: string | null; count: number }>;
  timeline: TimelinePoint[];
  /** SNS webhook answers since start, by outcome (accepted, duplicate, refusal reasons). */
  webhooks: Record<string, number>;
  email: string;
}

const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace('.000Z', 'Z') : '-');
const ago = (ms: number, now: number) => {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};

function card(title: string, body: string, cls = ''): string {
  return `<div class="card"><b>${esc(title)}</b><span class="big ${cls}">${body}</span></div>`;
}

function healthSection(d: DashboardData, now: number): string {
  const s = d.status;
  const b = s.brevo;
  let brevo: string;
  let brevoCls = 'ok';
  if (s.brevoSetup.state === 'unauthorized') [brevo, brevoCls] = ['key refused (401)', 'bad'];
  else if (b?.streak) {
    const e = b.lastError;
    brevo = `failing for ${Math.round(b.streak.seconds)} s (${b.streak.calls} calls)<br><small>${esc(e ? `${e.status ?? e.code} ${e.message}` : '')}</small>`;
    brevoCls = 'bad';
  } else if (b?.lastSuccessAt) brevo = `reachable<br><small>last success ${esc(ago(b.lastSuccessAt, now))}</small>`;
  else [brevo, brevoCls] = [`no call yet (${esc(s.brevoSetup.state)})`, 'warn'];
  const lag = s.lag.reduce((a, l) => Math.max(a, l.seconds), 0);
  const open = s.lag.reduce((a, l) => a + l.open, 0);
  const dead = s.deadLetters;
  const codes = d.byCode.map((c) => `${esc(c.code ?? 'no code')}: ${c.count}`).join('<br>');
  const refused = Object.entries(d.webhooks).filter(([k]) => !['accepted', 'duplicate', 'subscription_confirmed', 'subscription_pending'].includes(k));
  const sns = `${d.webhooks.accepted ?? 0} accepted${
    d.webhooks.subscription_confirmed ? ', subscription confirmed' : d.webhooks.subscription_pending ? ', subscription pending' : ''
  }${refused.length ? `<br><small class="bad">refused: ${refused.map(([k, n]) => `${esc(k)} ${n}`).join(', ')}</small>` : ''}`;
  const runs = lastRunsByStream(s.syncRuns);
  const syncs = s.streams.length
    ? s.streams
        .map((c) => {
          const r = runs.get(c.stream);
          const failed = r && r.last.error !== null;
          return `<span class="${failed ? 'bad' : ''}">${esc(c.stream)}: ${esc(c.status ?? '-')} ${esc(ago(c.updatedAt, now))}${failed ? ' (last run failed)' : ''}</span>`;
        })
        .join('<br>')
    : 'no sync yet';
  return `<div class="cards">
${card('Brevo', brevo, brevoCls)}
${card('Lag', `${lag.toFixed(1)} s<br><small>${open} open operation(s)${s.waitingErrors.count ? `, ${s.waitingErrors.count} waiting for a retry` : ''}</small>`, lag > 900 ? 'bad' : lag > 60 ? 'warn' : 'ok')}
${card('Dead letters', `<span id="dead">${dead} dead letter(s)</span>${codes ? `<br><small>${codes}</small>` : ''}`, dead > 0 ? 'bad' : 'ok')}
${card('SNS webhook', sns)}
${card('Last sync per stream', `<small>${syncs}</small>`)}
</div>`;
}

const W = 560;
const H = 150;
const PAD = { l: 40, r: 10, t: 10, b: 20 };

/** One SVG chart of some series over the minutes of `points`. */
function chart(id: string, title: string, points: TimelinePoint[], keys: Array<'received' | 'delivered' | 'failed' | 'lag'>, unit: string): string {
  const max = Math.max(1, ...points.flatMap((p) => keys.map((k) => p[k])));
  // The newest minute on the right; at least half an hour shown, so a young process's few points read as recent.
  const t1 = points[points.length - 1]?.t ?? 0;
  const t0 = Math.min(points[0]?.t ?? 0, t1 - 30 * 60_000);
  const x = (t: number) => (PAD.l + ((t - t0) / (t1 - t0)) * (W - PAD.l - PAD.r)).toFixed(1);
  const y = (v: number) => (H - PAD.b - (v / max) * (H - PAD.t - PAD.b)).toFixed(1);
  const series = keys
    .map((k) => {
      const pts = points.map((p) => `${x(p.t)},${y(p[k])}`);
      const dots = points.length <= 90 ? points.map((p) => `<circle class="${k}" cx="${x(p.t)}" cy="${y(p[k])}" r="3"/>`).join('') : '';
      return `<polyline class="line ${k}" points="${pts.join(' ')}"/>${dots}`;
    })
    .join('');
  const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
  const legend = keys.map((k) => `<span class="k-${k}">■ ${k}</span>`).join('');
  // Each series' total (the lag's peak) as data attributes: what the chart shows, for scripts and tests.
  const sums = keys
    .map((k) => ` data-${k}="${k === 'lag' ? Math.max(0, ...points.map((p) => p.lag)).toFixed(1) : points.reduce((a, p) => a + p[k], 0)}"`)
    .join('');
  return `<div><h3>${esc(title)}</h3><div class="legend">${legend}</div>
<svg id="${id}" class="chart" data-points="${points.length}"${sums} width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">
<line class="axis" x1="${PAD.l}" y1="${H - PAD.b}" x2="${W - PAD.r}" y2="${H - PAD.b}"/><line class="axis" x1="${PAD.l}" y1="${PAD.t}" x2="${PAD.l}" y2="${H - PAD.b}"/>
<text x="2" y="${PAD.t + 8}">${esc(`${Number(max.toFixed(1))}${unit}`)}</text><text x="2" y="${H - PAD.b}">0</text>
${points.length ? `<text x="${PAD.l}" y="${H - 5}">${hhmm(t0)} UTC</text><text x="${W - PAD.r - 60}" y="${H - 5}">${hhmm(t1)} UTC</text>` : `<text x="${PAD.l + 10}" y="${H / 2}">no sample yet</text>`}
${series}</svg></div>`;
}

function chartsSection(d: DashboardData): string {
  return `<div class="charts">${chart('chart-flow', 'Per minute: received, delivered, failed', d.timeline, ['received', 'delivered', 'failed'], '')}${chart(
    'chart-lag',
    'Lag (oldest open operation)',
    d.timeline,
    ['lag'],
    ' s',
  )}</div><p class="empty">Kept in this process's memory for ${Math.round(d.timeline.length)} minute(s) so far (6 hours at most); /metrics has the long history.</p>`;
}

function syncsSection(s: EngineStatus): string {
  return table(
    ['streams', 'started', 'ended', 'seconds', 'read', 'written', 'error'],
    s.syncRuns
      .slice(0, 15)
      .map((r) => [r.streams.join(', '), iso(r.startedAt), iso(r.endedAt), ((r.endedAt - r.startedAt) / 1000).toFixed(1), r.read, r.written, r.error ?? '']),
    'No sync has run (tajo-ses backfill, or schedule: in serve).',
  );
}

const button = (action: string, label: string, data: Record<string, string | number>, cls = '') =>
  `<button type="button" class="${cls}" data-action="${action}"${Object.entries(data)
    .map(([k, v]) => ` data-${k}="${esc(v)}"`)
    .join('')}>${esc(label)}</button>`;

function deadSection(d: DashboardData): string {
  if (d.status.deadLetters === 0) return '<p class="empty">No dead letters.</p>';
  const groups = new Map<string, FailureView[]>();
  for (const f of d.failures) {
    const k = f.error.code ?? '';
    groups.set(k, [...(groups.get(k) ?? []), f]);
  }
  const out: string[] = [];
  const loaded = d.byCode.reduce((a, c) => a + c.count, 0);
  if (loaded < d.status.deadLetters)
    out.push(`<p class="warn">Showing the oldest ${loaded} of ${d.status.deadLetters} dead letters; 'tajo-ses failures list --limit N' lists them all.</p>`);
  if (d.email) out.push(`<p>Dead letters of addresses containing <b>${esc(d.email)}</b>: ${d.failures.length}</p>`);
  for (const c of d.byCode) {
    const rows = groups.get(c.code ?? '') ?? [];
    if (d.email && rows.length === 0) continue;
    const code = c.code ?? '';
    out.push(
      `<h3 data-code="${esc(code)}">${esc(c.code ?? 'no code')} · ${c.count} ${button('retry-code', `Retry all ${c.count}`, { code, count: c.count })}</h3>`,
      rows.length === 0
        ? ''
        : `<table><thead><tr><th>id</th><th>kind</th><th>email</th><th>Brevo answer</th><th>attempts</th><th>last try</th><th></th></tr></thead><tbody>${rows
            .map(
              (f) =>
                `<tr data-id="${f.id}"><td><a href="/ui/failures/${f.id}">${f.id}</a></td><td>${esc(f.kind)}</td><td>${esc(f.email)}</td><td>${esc(
                  `${f.error.status ?? ''} ${f.error.message ?? ''}`.trim(),
                )}</td><td>${f.attempts}</td><td>${esc(f.updatedAt)}</td><td>${button('retry', 'Retry', { id: f.id })}${button('discard', 'Discard', { id: f.id }, 'danger')}</td></tr>`,
            )
            .join('')}</tbody></table>`,
    );
  }
  return out.join('\n');
}

function detailsSection(s: EngineStatus): string {
  return `<h3>Inbox</h3>
${table(['state', 'envelopes'], Object.entries(s.inbox), 'No SNS message received yet.')}
<h3>Lag by class</h3>
${table(
  ['kind', 'class', 'open', 'oldest (s)'],
  s.lag.map((l) => [l.kind, l.class, l.open, l.seconds.toFixed(1)]),
  'Nothing waiting.',
)}
<h3>Queues</h3>
${table(
  ['kind', 'lane', 'state', 'class', 'count'],
  s.queues.map((x) => [x.kind, x.lane, x.state, x.class, x.count]),
  'No operations yet.',
)}
<h3>Stream cursors</h3>
${table(
  ['stream', 'cursor', 'status', 'updated'],
  s.streams.map((c) => [c.stream, c.value ?? '', c.status ?? '', new Date(c.updatedAt).toISOString()]),
  'No backfill has run.',
)}
<h3>Brevo rate limits</h3>
${table(
  ['bucket', 'windows (used/limit)', 'paused until', '429s'],
  s.rateLimit.map((b) => [
    b.bucket,
    b.windows.map((w) => `${w.used}/${w.limit} per ${Math.round(w.windowMs / 1000)}s`).join(', '),
    b.pausedUntil > Date.now() ? new Date(b.pausedUntil).toISOString() : '-',
    b.throttled,
  ]),
  'No Brevo call yet.',
)}`;
}

/** The parts of the page that live refresh replaces, by element id. */
export function dashboardSections(d: DashboardData, now = Date.now()): Record<string, string> {
  return {
    'sec-health': healthSection(d, now),
    'sec-charts': chartsSection(d),
    'sec-dead': deadSection(d),
    'sec-syncs': syncsSection(d.status),
    'sec-details': detailsSection(d.status),
    'sec-at': `Store: ${esc(d.status.store)} · at ${esc(d.status.at)}`,
  };
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>${esc(title)}</title>
<style>${STYLE}</style><script src="${UI_SCRIPT_PATH}" defer></script></head><body>
${body}
</body></html>`;
}

/** The page; its links carry no credential (the browser sends the admin cookie). */
export function renderDashboard(d: DashboardData): string {
  const s = dashboardSections(d);
  return page(
    'Tajo · Amazon SES connector',
    `<main id="dashboard">
<h1>Amazon SES → Brevo</h1>
<p><span id="sec-at">${s['sec-at']}</span> · <span id="live">live refresh needs JavaScript</span> · <a href="/admin/status">JSON</a></p>
<p id="note" role="status"></p>
<section id="sec-health">${s['sec-health']}</section>
<h2>Trend</h2><section id="sec-charts">${s['sec-charts']}</section>
<h2>Dead letters</h2>
<div class="toolbar"><input id="search" type="search" placeholder="Search dead letters by email" value="${esc(d.email)}" aria-label="Search by email"></div>
<section id="sec-dead">${s['sec-dead']}</section>
<h2>Sync runs</h2><section id="sec-syncs">${s['sec-syncs']}</section>
<h2>Details</h2><section id="sec-details">${s['sec-details']}</section>
</main>`,
  );
}

/** One dead letter: the call we planned, what Brevo answered, its attempts. */
export function renderFailure(f: FailureView): string {
  const answer = f.error;
  return page(
    `Dead letter ${f.id} · Tajo`,
    `<main id="failure" data-id="${f.id}">
<p><a href="/ui">← Dashboard</a></p>
<h1>Dead letter ${f.id}: ${esc(f.kind)} for ${esc(f.email)}</h1>
<p id="note" role="status"></p>
<p>State: <b>${esc(f.state)}</b> · ${f.attempts} attempt(s) · created ${esc(f.createdAt)} · last try ${esc(f.updatedAt)}</p>
<p>${f.state === 'dead' ? `${button('retry', 'Retry', { id: f.id, back: 1 })}${button('discard', 'Discard', { id: f.id, back: 1 }, 'danger')}` : ''}</p>
<h2>Brevo's answer</h2>
${table(['HTTP status', 'code', 'message'], [[answer.status ?? '-', answer.code ?? '-', answer.message ?? '-']], '')}
<h2>Planned call</h2>
<pre id="call">${esc(`${f.call.method} ${f.call.path}\n\n${JSON.stringify(f.call.body, null, 2)}`)}</pre>
<h2>Attempts</h2>
${table(
  ['#', 'at', 'HTTP status', 'code', 'message'],
  (f.history ?? []).map((h, i) => [i + 1, h.at, h.status ?? '-', h.code, h.message ?? '']),
  `${f.attempts} attempt(s); no history was kept for them.`,
)}
<h2>Source records</h2>
${table(
  ['source'],
  f.sources.map((x) => [x]),
  'none',
)}
<p>Key: <code>${esc(f.key)}</code></p>
</main>`,
  );
}
