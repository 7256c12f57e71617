// Load of 100 dashboard clients on `workflow serve` (bench/dashboard/run):
// each client opens a page (jobs list, a job's page, queues, failures, in
// turn) and then holds its live panel's event stream (GET /events?panel=...,
// Accept: text/event-stream), as dashboard.js does, counting each `panel`
// event it receives; one more client scrapes /metrics every 5 seconds
// (Prometheus' default is 1 minute). A stream that fails, is refused or
// ends before SIGTERM counts as an error (the client reconnects after 2 s,
// as a browser's EventSource does). Runs until SIGTERM, then prints
// {"mode", "requests", "events", "errors", ["error_kinds",] "p50_ms", "p99_ms",
//  "event_delay_p50_ms", "event_delay_p99_ms"} as JSON: requests are the
// page loads, polls and scrapes (p50/p99: their times); an event's delay is
// from the start of the server's refresh that rendered it (the `: t` comment
// before it) to its arrival here (a stream's first event, the panel as it
// stood, is left out): a change shows at most this plus the refresh period
// after it happened.
// DASH_POLL=1: the clients fetch their live panel every REFRESH_MS instead
// (the fallback when /events is refused, and the dashboard before SSE).
// DASH_CONTROL=1: the clients fetch /healthz every REFRESH_MS (no database
// read, no rendering): the HTTP cost of 100 polling clients alone, the floor
// the polling dashboard could not go below.
// Requests go through node:http, whose per-request CPU is a fraction of
// fetch()'s: the generator shares the workers' cores, so its own cost would
// otherwise be counted as the server's. One connection per request, as the
// server closes each after its response (serve/server.cpp).
//   node load.mjs BASE_URL JOB_ID [clients=100] [refresh_ms=1000]
import http from 'node:http';

const [base, job, clientsArg = '100', refreshArg = '1000'] = process.argv.slice(2);
const clients = Number(clientsArg);
const refresh = Number(refreshArg);
const id = encodeURIComponent(job);
const mode = process.env.DASH_CONTROL === '1' ? 'control' : process.env.DASH_POLL === '1' ? 'poll' : 'events';
const pages = mode === 'control' ? [['/healthz', '/healthz']]
  : [['/', '/panel/jobs'], [`/job?id=${id}`, `/panel/job?id=${id}`], ['/queues', '/panel/queues'],
     ['/failures', '/panel/failures']];
let stop = false;
let requests = 0;
let events = 0;
let errors = 0;
const errorKinds = {};  // what failed: page, poll, scrape, stream refused/failed/ended
const fail = (kind) => { errors++; errorKinds[kind] = (errorKinds[kind] || 0) + 1; };
const times = [];
const delays = [];
const open = new Set();  // the event streams' requests, destroyed on SIGTERM
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One GET on the client's own agent: resolves with the status once the whole
// body has arrived (status 0: the request failed).
function fetchStatus(agent, path) {
  return new Promise((resolve) => {
    const req = http.get(base + path, { agent }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(10000, () => req.destroy());
  });
}

async function get(agent, path, kind) {
  const t0 = performance.now();
  const status = await fetchStatus(agent, path);
  if (status !== 200) fail(`${kind} ${status || 'failed'}`);
  requests++;
  times.push(performance.now() - t0);
}

// Holds the event stream of panel until it ends: counts its `panel` events
// and their delays. Resolves null when it ran until SIGTERM, else what ended it.
function stream(agent, panel) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (why) => { if (!settled) { settled = true; open.delete(req); resolve(stop ? null : why); } };
    const req = http.get(`${base}/events?panel=${encodeURIComponent(panel)}`,
                         { agent, headers: { Accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) { res.resume(); done(`stream ${res.statusCode}`); return; }
      res.setEncoding('utf8');
      let buf = '';
      let t = 0;
      let data = false;
      let streamEvents = 0;
      res.on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === '') {  // end of an event (or of a comment/retry block)
            // The first event of a stream is the panel as it stood (no change): no delay.
            if (data) { if (t && streamEvents++) delays.push(Date.now() - t); events++; }
            data = false; t = 0;
          } else if (line.startsWith(': t ')) {
            t = Number(line.slice(4));
          } else if (line.startsWith('data:')) {
            data = true;
          }
        }
      });
      res.on('end', () => done('stream ended'));
      res.on('error', (e) => done(`stream ${e.code || 'error'}`));
      res.on('close', () => done('stream closed'));
    });
    open.add(req);
    req.on('error', (e) => done(`stream ${e.code || 'error'}`));
    req.on('close', () => done('stream closed'));
  });
}

const newAgent = () => new http.Agent({ keepAlive: false, maxSockets: 1 });

async function client(i) {
  const agent = newAgent();
  const [page, panel] = pages[i % pages.length];
  await sleep(Math.random() * refresh);  // clients do not start in step
  await get(agent, page, 'page');
  while (!stop) {
    if (mode === 'events') {
      const why = await stream(agent, panel);
      if (why) { fail(why); await sleep(2000); }
    } else {
      await sleep(refresh);
      await get(agent, panel, 'poll');
    }
  }
  agent.destroy();
}

async function scraper() {
  const agent = newAgent();
  while (!stop) {
    await get(agent, mode === 'control' ? '/healthz' : '/metrics', 'scrape');
    await sleep(5000);
  }
  agent.destroy();
}

process.on('SIGTERM', () => { stop = true; for (const req of open) req.destroy(); });
const all = [scraper()];
for (let i = 0; i < clients; i++) all.push(client(i));
await Promise.all(all);
const q = (a, p) => {
  a.sort((x, y) => x - y);
  return a.length ? +a[Math.min(a.length - 1, Math.floor(p * a.length))].toFixed(1) : 0;
};
console.log(JSON.stringify({ mode, requests, events, errors, ...(errors ? { error_kinds: errorKinds } : {}), p50_ms: q(times, 0.5), p99_ms: q(times, 0.99),
                             event_delay_p50_ms: q(delays, 0.5), event_delay_p99_ms: q(delays, 0.99) }));
