// Browser checks of `workflow serve` in headless Chromium (run by
// test/web/dashboard.sh, which sets BASE, BASE_POLL (a serve process with
// --max-streams 0), TOKEN, ARTIFACTS, CHROMIUM, WORKER and the PG* variables
// of its cluster). Each check prints "ok" or
// "not ok"; the last line is "N passed, M failed".
import { execFileSync, spawn } from 'node:child_process';
import { chromium } from 'playwright-core';

const { BASE, BASE_POLL, TOKEN, ARTIFACTS, CHROMIUM, WORKER } = process.env;
const XSS_JOB = '<script>alert(1)</script>';
const DEAD_ERROR = 'boom: <b>bad</b> input <img src=x onerror=alert(3)>';
let passed = 0;
let failed = 0;

function check(name, ok, detail = '') {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}${ok || !detail ? '' : ` (${detail})`}`);
}
function sql(query) {
  return execFileSync('psql', ['-qXAt', '-c', query], { encoding: 'utf8' }).trim();
}
async function waitFor(fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const dialogs = [];
page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
// The requests of live panels: /panel/... fetches (polling) and /events streams.
const live = (p) => {
  const seen = { polls: 0, streams: 0, refused: 0 };
  p.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/panel/')) seen.polls++;
    if (u.pathname === '/events' && r.resourceType() === 'eventsource') seen.streams++;
  });
  p.on('response', (r) => { if (new URL(r.url()).pathname === '/events' && r.status() === 503) seen.refused++; });
  return seen;
};
const traffic = live(page);
let worker;
let pollPage;
try {
  // 1. The jobs list: every job, the markup id shown as text and not run.
  await page.goto(`${BASE}/`);
  const ids = await page.locator('#panel td:first-child a').allTextContents();
  check('jobs list shows the jobs', ids.includes('dead-job') && ids.includes('cancel-me'), ids.join(', '));
  check('a job id containing <script> is shown as text', ids.includes(XSS_JOB), ids.join(', '));
  check('its type with an onerror image is text too',
        (await page.locator('#panel').textContent()).includes('xss<img src=x onerror=alert(2)>'));
  check('no markup from the data became an element',
        (await page.locator('main script, main img').count()) === 0);
  await page.screenshot({ path: `${ARTIFACTS}/jobs.png`, fullPage: true });
  await page.goto(`${BASE}/?status=failed`);
  const failedIds = await page.locator('#panel td:first-child a').allTextContents();
  check('status filter: failed jobs only', failedIds.join() === 'dead-job', failedIds.join(', '));
  await page.goto(`${BASE}/?q=cancel`);
  check('search by id', (await page.locator('#panel td:first-child a').allTextContents()).join() === 'cancel-me');

  // 2. The job page: its stage bars advance while workers run, without a reload.
  await page.goto(`${BASE}/`);
  await page.locator('#panel a', { hasText: XSS_JOB }).click();
  await page.waitForURL(/\/job\?id=/);
  check('the job page title shows the id as text', (await page.locator('h1').textContent()) === `Job ${XSS_JOB}`);
  await page.evaluate(() => { window.notReloaded = true; });
  const done = async () => Number((await page.locator('tr.stage[data-stage="1"] td.done').textContent()).split('/')[0]);
  const events = async () => Number(await page.locator('#panel').getAttribute('data-events') || 0);
  const before = await done();
  const polls0 = traffic.polls;
  const events0 = await events();
  worker = spawn(WORKER, ['worker', '-c', '2', '--types', 'sleep'], { stdio: 'ignore' });
  const seen = [before];
  await waitFor(async () => {
    const v = await done();
    if (v !== seen[seen.length - 1]) seen.push(v);
    return seen.length >= 3;
  }, 60000);
  check('stage 1 bar advances live while workers run', seen.length >= 3 && seen.every((v, i) => !i || v > seen[i - 1]),
        seen.join(' -> '));
  const via = await page.locator('#panel').getAttribute('data-via');
  check('... pushed over an EventSource (GET /events), not polled',
        via === 'events' && traffic.streams >= 1 && (await events()) - events0 >= 2 && traffic.polls === polls0,
        `via ${via}, ${traffic.streams} streams, ${(await events()) - events0} events, ${traffic.polls - polls0} polls`);
  // The server's own count of open streams and events written.
  let metrics = await (await fetch(`${BASE}/metrics`)).text();
  const metric = (name) => Number((metrics.match(new RegExp(`^${name} (\\S+)$`, 'm')) || [])[1]);
  const openStreams = async () => {
    metrics = await (await fetch(`${BASE}/metrics`)).text();
    return metric('workflow_serve_event_streams');
  };
  check('the server counts the open stream and its events',
        metric('workflow_serve_event_streams') >= 1 && metric('workflow_serve_events_total') >= 3,
        `streams ${metric('workflow_serve_event_streams')}, events ${metric('workflow_serve_events_total')}`);

  // 2b. Fallback: /events refused (503, --max-streams 0): the page polls, and its bars still advance.
  pollPage = await browser.newPage();
  pollPage.on('pageerror', (e) => pageErrors.push(String(e)));
  const pollTraffic = live(pollPage);
  await pollPage.goto(`${BASE_POLL}/job?id=${encodeURIComponent(XSS_JOB)}`);
  const total = async () => (await pollPage.locator('tr.stage td.done').allTextContents())
    .reduce((a, t) => a + Number(t.split('/')[0]), 0);
  const pseen = [await total()];
  await waitFor(async () => {
    const v = await total();
    if (v !== pseen[pseen.length - 1]) pseen.push(v);
    return pseen.length >= 3;
  }, 30000);
  const pvia = await pollPage.locator('#panel').getAttribute('data-via');
  check('with /events refused (503) the page polls and its bars still advance',
        pseen.length >= 3 && pvia === 'poll' && pollTraffic.refused >= 1 && pollTraffic.polls >= 2,
        `${pseen.join(' -> ')}; via ${pvia}, ${pollTraffic.refused} refused, ${pollTraffic.polls} polls`);
  await pollPage.close();
  pollPage = null;

  // 2c. A hidden tab closes its stream (the server sees it gone at its next
  // write) and opens it again when shown.
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { value: h, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await setHidden(true);
  const closed = await waitFor(async () => (await openStreams()) === 0, 20000);
  check('a hidden tab closes its event stream', closed, `${await openStreams()} open`);
  const shownEvents = await events();
  await setHidden(false);
  const reopened = await waitFor(async () => (await openStreams()) === 1 && (await events()) > shownEvents, 10000);
  check('... and opens it again when shown (and gets the panel)', reopened,
        `${await openStreams()} open, ${(await events()) - shownEvents} events`);
  const bar = await page.locator('tr.stage[data-stage="1"] progress').evaluate((p) => [p.value, p.max]);
  check('the progress bar holds the count', bar[0] > 0 && bar[1] === 3000, bar.join('/'));
  check('the page was not reloaded', await page.evaluate(() => window.notReloaded === true));
  await waitFor(async () => (await page.locator('svg.chart rect').count()) > 0, 10000);
  check('the completions chart has bars', (await page.locator('svg.chart rect').count()) > 0);
  await page.screenshot({ path: `${ARTIFACTS}/job.png`, fullPage: true });
  worker.kill('SIGTERM');
  worker = null;

  // 3. A failed task's error, as text, on the job page and on the failures page.
  await page.goto(`${BASE}/job?id=dead-job`);
  check('job page: the failed task\'s error', (await page.locator('#panel pre.error').allTextContents()).includes(DEAD_ERROR));
  await page.goto(`${BASE}/failures`);
  const errors = await page.locator('#panel pre.error').allTextContents();
  check('failures page: the dead task and its error as text', errors.includes(DEAD_ERROR), errors.join(' | '));
  check('no markup from errors became an element', (await page.locator('main img, main b').count()) === 0);
  await page.screenshot({ path: `${ARTIFACTS}/failures.png`, fullPage: true });
  await page.goto(`${BASE}/queues`);
  check('queues page: queue depth by type', (await page.locator('#panel').textContent()).includes('idle'));
  await page.screenshot({ path: `${ARTIFACTS}/queues.png`, fullPage: true });

  // 4. Actions: refused without the token (nothing written), done with it.
  await page.goto(`${BASE}/job?id=cancel-me`);
  await page.fill('#token', '');
  await page.locator('button[data-action="cancel-job"]').click();
  await waitFor(async () => (await page.locator('#action-result').textContent()) !== '', 5000);
  check('cancel refused without the token', /refused/.test(await page.locator('#action-result').textContent()));
  check('... and the job still runs', sql("SELECT status FROM workflow.jobs WHERE id = 'cancel-me'") !== 'cancelled');
  await page.fill('#token', TOKEN);
  await page.locator('button[data-action="cancel-job"]').click();
  await waitFor(async () => /cancelled/.test(await page.locator('#action-result').textContent()), 5000);
  check('cancel with the token', sql("SELECT status FROM workflow.jobs WHERE id = 'cancel-me'") === 'cancelled',
        await page.locator('#action-result').textContent());
  await waitFor(async () => (await page.locator('#job-status').textContent()) === 'cancelled', 5000);
  check('the page shows it cancelled without a reload', (await page.locator('#job-status').textContent()) === 'cancelled');

  await page.goto(`${BASE}/failures`);
  await page.evaluate(() => sessionStorage.removeItem('workflow-token'));
  await page.fill('#token', 'wrong-token');
  const retry = page.locator('button[data-action="retry-task"]').first();
  await retry.click();
  await waitFor(async () => (await page.locator('#action-result').textContent()) !== '', 5000);
  check('retry of a dead task refused without the token', /refused/.test(await page.locator('#action-result').textContent()));
  check('... and the task is still dead', sql("SELECT status FROM workflow.tasks WHERE id = 'dead-job:1:0'") === 'failed');
  await page.fill('#token', TOKEN);
  await retry.click();
  await waitFor(async () => /queued again|SQLSTATE/.test(await page.locator('#action-result').textContent()), 5000);
  const status = sql("SELECT status FROM workflow.tasks WHERE id = 'dead-job:1:0'");
  check('retry of a dead task with the token (workflow.retry_task)', status === 'queued',
        `task ${status}: ${await page.locator('#action-result').textContent()}`);

  check('no dialog opened (no script from the data ran)', dialogs.length === 0, dialogs.join(', '));
  check('no script error on the pages', pageErrors.length === 0, pageErrors.join(', '));
} catch (e) {
  check('the browser session ran to the end', false, String(e && e.stack || e));
} finally {
  if (worker) worker.kill('SIGTERM');
  if (pollPage) await pollPage.close();
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
