// The dashboard's stylesheet and script, served from /static/ (no build
// step, nothing fetched from elsewhere: the dashboard works offline). The
// script only refreshes [data-live] panels with server-rendered (escaped)
// HTML, pushed over an EventSource (GET /events) or, when that is refused or
// keeps failing, fetched every refresh; and posts action buttons with the
// token. It renders no data itself.
#pragma once

namespace workflow::serve::assets {

inline constexpr const char* kCss = R"CSS(
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d232b; background: #f5f6f8; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em; background: #1d2733; color: #fff; }
header nav a { color: #cfe0f5; margin-right: 1em; text-decoration: none; }
header .token { margin-left: auto; }
main { padding: 0 1.2em 2em; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.4em; }
table { border-collapse: collapse; background: #fff; min-width: 40%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #e1e4e8; vertical-align: top; }
th { background: #eef1f4; }
td.err, .error { color: #a40e26; white-space: pre-wrap; }
.ok { color: #17662d; }
.empty { color: #6a737d; }
.status-completed { color: #17662d; } .status-failed { color: #a40e26; } .status-running { color: #0b5cad; }
.status-cancelled { color: #6a737d; }
progress { width: 22em; height: 1.1em; }
form.filters { margin: 1em 0; display: flex; gap: .6em; align-items: center; }
svg.chart { background: #fff; border: 1px solid #e1e4e8; }
svg.chart rect { fill: #3b82c4; }
svg.chart text { font-size: 10px; fill: #6a737d; }
button.action { font-size: .9em; }
pre { margin: 0; white-space: pre-wrap; max-width: 50em; }
)CSS";

inline constexpr const char* kJs = R"JS(
// workflow dashboard: live panels and action buttons.
(function () {
  'use strict';
  const refresh = Number(document.body.dataset.refreshMs) || 1000;
  const busy = new WeakSet();
  function show(el, html) {  // server-rendered, every value escaped
    if (html !== el.dataset.last) { el.innerHTML = html; el.dataset.last = html; }
  }
  async function update(el) {
    if (busy.has(el)) return;
    busy.add(el);
    try {
      const r = await fetch(el.dataset.live, { cache: 'no-store' });
      if (r.ok) show(el, await r.text());
    } catch (e) { /* server away: keep the last view, try again */ }
    busy.delete(el);
  }
  // Fallback: fetch the panel every refresh; after a minute, try the stream again.
  function poll(el, forever) {
    el.dataset.via = 'poll';
    const timer = setInterval(() => update(el), refresh);
    if (!forever) setTimeout(() => { clearInterval(timer); stream(el); }, 60000);
  }
  // The server pushes the panel (event "panel") when a refresh finds it changed.
  function stream(el) {
    if (!window.EventSource) { poll(el, true); return; }
    const es = new EventSource('/events?panel=' + encodeURIComponent(el.dataset.live));
    let errors = 0;
    el.dataset.via = 'events';
    streams.set(el, es);
    es.addEventListener('open', () => { errors = 0; });
    es.addEventListener('panel', (ev) => {
      errors = 0;
      el.dataset.events = String(Number(el.dataset.events || 0) + 1);
      show(el, ev.data);
    });
    es.addEventListener('error', () => {
      // Refused (503: too many streams open), or lost three times in a row.
      if (es.readyState === EventSource.CLOSED || ++errors >= 3) { es.close(); streams.delete(el); poll(el, false); }
    });
  }
  // A hidden tab closes its streams (a browser opens ~6 connections to a
  // host at most, and each stream holds one) and opens them again when shown.
  const streams = new Map();
  document.addEventListener('visibilitychange', () => {
    document.querySelectorAll('[data-live]').forEach((el) => {
      const es = streams.get(el);
      if (document.hidden && es) { es.close(); streams.delete(el); }
      else if (!document.hidden && !es && el.dataset.via === 'events') stream(el);
    });
  });
  document.querySelectorAll('[data-live]').forEach(stream);
  function tick() { document.querySelectorAll('[data-live]').forEach(update); }
  const token = document.getElementById('token');
  if (token) {
    token.value = sessionStorage.getItem('workflow-token') || '';
    token.addEventListener('input', () => sessionStorage.setItem('workflow-token', token.value));
  }
  document.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    const out = document.getElementById('action-result');
    const headers = { 'Content-Type': 'application/json' };
    if (token && token.value) headers['Authorization'] = 'Bearer ' + token.value;
    let msg = '';
    let ok = false;
    try {
      const r = await fetch('/action/' + encodeURIComponent(b.dataset.action),
                            { method: 'POST', headers, body: b.dataset.args });
      ok = r.ok;
      try { msg = (await r.json()).message; } catch (e) { msg = r.status + ' ' + r.statusText; }
    } catch (e) { msg = String(e); }
    out.textContent = msg;
    out.className = ok ? 'ok' : 'error';
    tick();
  });
})();
)JS";

}  // namespace workflow::serve::assets
