// Load of 100 dashboard clients on `workflow serve` (bench/dashboard/run):
// each client opens a page (jobs list, a job's page, queues, failures, in
// turn) and then fetches its live panel every REFRESH_MS, as dashboard.js
// does; one more client scrapes /metrics every 5 seconds (Prometheus'
// default is 1 minute). Runs until SIGTERM,
// then prints {"requests", "errors", "p50_ms", "p99_ms"} as JSON.
// DASH_CONTROL=1: every request is /healthz instead (no database read, no
// rendering): the same HTTP load, to tell its own cost from the dashboard's.
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
const control = process.env.DASH_CONTROL === '1';
const pages = control ? [['/healthz', '/healthz']] : [['/', '/panel/jobs'], [`/job?id=${id}`, `/panel/job?id=${id}`],
               ['/queues', '/panel/queues'], ['/failures', '/panel/failures']];
let stop = false;
let requests = 0;
let errors = 0;
const times = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One GET on the client's own keep-alive agent: resolves with the status
// once the whole body has arrived (status 0: the request failed).
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

async function get(agent, path) {
  const t0 = performance.now();
  const status = await fetchStatus(agent, path);
  if (status !== 200) errors++;
  requests++;
  times.push(performance.now() - t0);
}

const newAgent = () => new http.Agent({ keepAlive: false, maxSockets: 1 });

async function client(i) {
  const agent = newAgent();
  const [page, panel] = pages[i % pages.length];
  await sleep(Math.random() * refresh);  // clients do not poll in step
  await get(agent, page);
  while (!stop) {
    await sleep(refresh);
    await get(agent, panel);
  }
  agent.destroy();
}

async function scraper() {
  const agent = newAgent();
  while (!stop) {
    await get(agent, control ? '/healthz' : '/metrics');
    await sleep(5000);
  }
  agent.destroy();
}

process.on('SIGTERM', () => { stop = true; });
const all = [scraper()];
for (let i = 0; i < clients; i++) all.push(client(i));
await Promise.all(all);
times.sort((a, b) => a - b);
const q = (p) => (times.length ? times[Math.min(times.length - 1, Math.floor(p * times.length))] : 0);
console.log(JSON.stringify({ requests, errors, p50_ms: +q(0.5).toFixed(1), p99_ms: +q(0.99).toFixed(1) }));
