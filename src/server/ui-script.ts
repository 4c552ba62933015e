// The dashboard's script, served as a same-origin file (/ui/app.js) so that the CSP allows it
// with script-src 'self' and no inline script at all. It fetches the server-rendered sections
// as JSON every few seconds (live refresh without reloading the page), filters the dead letters
// by email, and sends the buttons' POSTs as JSON: a same-origin fetch with the admin cookie,
// which the cross-site checks of admin.ts accept and a foreign page cannot forge.

export const UI_SCRIPT_PATH = '/ui/app.js';

/** Milliseconds between two refreshes of the dashboard. */
export const UI_REFRESH_MS = 3000;

export const UI_SCRIPT = `'use strict';
(function () {
  var byId = function (id) { return document.getElementById(id); };
  var email = new URLSearchParams(location.search).get('email') || '';
  var last = {};
  var busy = false;

  function note(text, bad) {
    var el = byId('note');
    if (!el) return;
    el.textContent = text;
    el.className = bad ? 'bad' : '';
  }

  async function refresh() {
    if (!byId('dashboard') || busy) return;
    busy = true;
    try {
      var res = await fetch('/admin/dashboard' + (email ? '?email=' + encodeURIComponent(email) : ''), { headers: { accept: 'application/json' }, cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      var data = await res.json();
      Object.keys(data.sections).forEach(function (id) {
        var el = byId(id);
        if (el && last[id] !== data.sections[id]) { el.innerHTML = data.sections[id]; last[id] = data.sections[id]; }
      });
      byId('live').textContent = 'live, updated ' + new Date().toLocaleTimeString();
      byId('live').className = '';
    } catch (err) {
      byId('live').textContent = 'refresh failed (' + err.message + '), retrying';
      byId('live').className = 'bad';
    } finally {
      busy = false;
    }
  }

  var ACTIONS = {
    retry: function (d) { return { url: '/admin/failures/' + d.id + '/retry', body: {}, ask: 'Retry dead letter ' + d.id + ' now?' }; },
    discard: function (d) { return { url: '/admin/failures/' + d.id + '/discard', body: {}, ask: 'Discard dead letter ' + d.id + '? It will not be sent to Brevo.' }; },
    'retry-code': function (d) {
      return { url: '/admin/failures/retry', body: { code: d.code === '' ? null : d.code }, ask: 'Retry all ' + d.count + ' dead letter(s) with code ' + (d.code || '(none)') + '?' };
    },
  };

  document.addEventListener('click', async function (ev) {
    var b = ev.target instanceof Element ? ev.target.closest('button[data-action]') : null;
    if (!b || !ACTIONS[b.dataset.action]) return;
    var a = ACTIONS[b.dataset.action](b.dataset);
    if (!window.confirm(a.ask)) return;
    b.disabled = true;
    try {
      var res = await fetch(a.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(a.body) });
      var out = await res.json().catch(function () { return {}; });
      if (!res.ok) throw new Error(out.message || 'HTTP ' + res.status);
      note(out.discarded !== undefined ? 'Discarded ' + out.discarded + ' dead letter(s).' : 'Queued ' + out.retried + ' dead letter(s) for delivery.');
      if (b.dataset.back) { location.assign('/ui'); return; }
    } catch (err) {
      note('Failed: ' + err.message, true);
      b.disabled = false;
    }
    refresh();
  });

  document.addEventListener('DOMContentLoaded', function () {
    var search = byId('search');
    if (search) {
      var timer;
      search.addEventListener('input', function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          email = search.value.trim();
          history.replaceState(null, '', email ? '/ui?email=' + encodeURIComponent(email) : '/ui');
          refresh();
        }, 250);
      });
    }
    if (byId('dashboard')) { refresh(); setInterval(refresh, ${UI_REFRESH_MS}); }
  });
})();
`;
