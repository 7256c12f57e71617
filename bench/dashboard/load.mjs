// Load of 100 dashboard clients on `workflow serve` (bench/dashboard/run):
// each client opens a page (jobs list, a job's page, queues, failures, in
// turn) and then fetches its live panel every REFRESH_MS, as dashboard.js
// does; one more client scrapes /metrics every 5 seconds (Prometheus'
// default is 1 minute). Runs until SIGTERM,
// then prints {"requests", "errors", "p50_ms", "p99_ms"} as JSON.
// DASH_CONTROL=1: every request is /healthz instead (no database read, no
// rendering): the same HTTP load, to tell its own cost from the dashboard's.
//   node load.mjs BASE_URL JOB_ID [clients=100] [refresh_ms=1000]
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

async function get(path) {
  const t0 = performance.now();
  try {
    const r = await fetch(base + path);
    await r.text();
    if (r.status !== 200) errors++;
  } catch (e) {
    errors++;
  }
  requests++;
  times.push(performance.now() - t0);
}

async function client(i) {
  const [page, panel] = pages[i % pages.length];
  await sleep(Math.random() * refresh);  // clients do not poll in step
  await get(page);
  while (!stop) {
    await sleep(refresh);
    await get(panel);
  }
}

async function scraper() {
  while (!stop) {
    await get(control ? '/healthz' : '/metrics');
    await sleep(5000);
  }
}

process.on('SIGTERM', () => { stop = true; });
const all = [scraper()];
for (let i = 0; i < clients; i++) all.push(client(i));
await Promise.all(all);
times.sort((a, b) => a - b);
const q = (p) => (times.length ? times[Math.min(times.length - 1, Math.floor(p * times.length))] : 0);
console.log(JSON.stringify({ requests, errors, p50_ms: +q(0.5).toFixed(1), p99_ms: +q(0.99).toFixed(1) }));
