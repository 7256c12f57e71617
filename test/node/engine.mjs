// The engine from node-postgres (npm `pg`), through its SQL API alone, as a
// Node.js service would call it: JS values as parameters (objects for jsonb,
// arrays for text[] / int[] / jsonb[], which `pg` sends as array literals),
// a producer role and a worker role granted as the README's recipe says.
//
// The producer creates JOBS jobs of 3 stages; WORKERS async workers (one
// connection each) claim batches, complete them with complete_tasks (results
// as JS objects with quotes, backslashes, braces, commas, non-ASCII text,
// nested arrays and nulls: what `pg`'s array-literal encoding must survive),
// repeat 5% of the batches as after a lost reply, and on stage_complete fan
// out the next stage (add_tasks with JS objects) and advance, in random order.
// Checks: every job completed; one first-time stage_complete per stage; every
// stored result and parameter deep-equals what JS sent; check_invariants
// clean (as admin). Prints one JSON line; exit 1 on any failed check.
//   node engine.mjs --producer URL --worker URL --admin URL [--jobs N] [--workers N] [--seed N]
import assert from "node:assert/strict";
import pg from "pg";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((a, v, i, all) => (i % 2 ? a : [...a, [v.replace(/^--/, ""), all[i + 1]]]), []));
const JOBS = Number(args.jobs ?? 20);
const WORKERS = Number(args.workers ?? 8);
const STAGES = 3;
const SEED = Number(args.seed ?? Date.now() % 100000);
let state = SEED >>> 0;
const random = () => {  // mulberry32: a seeded, repeatable run
  state = (state + 0x6D2B79F5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

// Values `pg` must carry intact inside array literals and JSON.
const awkward = (job, stage, i) => ({
  job, stage, i,
  text: `quote " backslash \\ brace { } comma , ü 日本 ${"'"}`,
  nested: [1, [2, { k: "v,}" }], null, true],
  empty: "",
  nul_free: "tab\tnewline\n",
});

async function connect(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

const producer = await connect(args.producer);
const jobIds = [];
for (let j = 0; j < JOBS; j++) {
  const id = `node-${SEED}-${j}`;
  const { rows } = await producer.query("SELECT workflow.create_job($1, $2, $3, $4) AS id",
    ["node", { seed: SEED, j, note: "a, b \"c\"" }, STAGES, id]);
  jobIds.push(rows[0].id);
  const n = 1 + Math.floor(random() * 4);
  await producer.query("SELECT workflow.add_tasks($1, 1, 'node.t', $2::jsonb[])",
    [id, Array.from({ length: n }, (_, i) => awkward(id, 1, i))]);
}

// Stage s+1 of a job gets 0..3 tasks (0: sealing completes it at once).
const plan = new Map(jobIds.map((id) => [id, [null, null, ...Array.from({ length: STAGES - 1 }, () => Math.floor(random() * 4))]]));
const firstCompletions = new Map();  // "job:stage" -> count of first-time stage_complete
const counts = { batches: 0, repeats: 0, completed: 0, advances: 0 };
let finished = false;

async function fanOutAndAdvance(c, job, stage) {
  // Fan out stage+1 (if any) and advance, in random order: both are idempotent.
  const steps = [];
  if (stage < STAGES) {
    const n = plan.get(job)[stage + 1];
    steps.push(async () => {
      if (n === 0)  // add_tasks refuses an empty array (22023): an empty stage is sealed
        return c.query("SELECT workflow.seal_stage($1, $2)", [job, stage + 1]);
      return c.query("SELECT workflow.add_tasks($1, $2, 'node.t', $3::jsonb[]) AS n",
        [job, stage + 1, Array.from({ length: n }, (_, i) => awkward(job, stage + 1, i))]);
    });
  }
  steps.push(async () => {
    const { rows } = await c.query("SELECT workflow.advance_job_stage($1, $2, $3, $4) AS won",
      [job, stage, stage + 1, { by: "node", stage }]);
    if (rows[0].won) counts.advances++;
  });
  if (random() < 0.5) steps.reverse();
  for (const s of steps) {
    try { await s(); } catch (e) {
      // An add after the advance committed elsewhere is fine; others are not.
      if (e.code !== "55000") throw e;
    }
  }
  // An empty next stage is complete once sealed: nobody completes a task of
  // it, so this caller advances past it as well.
  if (stage < STAGES && plan.get(job)[stage + 1] === 0) await fanOutAndAdvance(c, job, stage + 1);
}

async function worker(n) {
  const c = await connect(args.worker);
  const name = `node-worker-${n}`;
  while (!finished) {
    const { rows: claimed } = await c.query(
      "SELECT id, job_id, stage, parameters FROM workflow.claim_tasks($1, $2, $3, $4)",
      [name, 1 + Math.floor(random() * 4), ["node.t"], "5 minutes"]);
    if (claimed.length === 0) { await new Promise((r) => setTimeout(r, 20)); continue; }
    for (const t of claimed) {  // jsonb orders keys its own way: compare as values
      try { assert.deepStrictEqual(t.parameters, awkward(t.job_id, t.stage, Number(t.id.split(":")[2]))); }
      catch { failures.push(`parameters of ${t.id} came back changed: ${JSON.stringify(t.parameters)}`); }
    }
    const send = () => c.query(
      "SELECT task_id, job_id, stage, stage_complete FROM workflow.complete_tasks($1, $2, $3, $4::jsonb[], worker => $5)",
      [claimed.map((t) => t.job_id), claimed.map((t) => t.id), claimed.map((t) => t.stage),
       claimed.map((t) => ({ result: t.parameters, by: name })), name]);
    const { rows: answers } = await send();
    counts.batches++;
    counts.completed += answers.length;
    if (random() < 0.05) {  // as after a lost reply: the same answers, nothing written
      counts.repeats++;
      const { rows: again } = await send();
      check(JSON.stringify(again) === JSON.stringify(answers), `a repeated batch answered differently`);
    }
    for (const a of answers) {
      if (!a.stage_complete) continue;
      const key = `${a.job_id}:${a.stage}`;
      firstCompletions.set(key, (firstCompletions.get(key) ?? 0) + 1);
      await fanOutAndAdvance(c, a.job_id, a.stage);
    }
  }
  await c.end();
}

const deadline = Date.now() + 240_000;
const workers = Array.from({ length: WORKERS }, (_, i) => worker(i));
const admin = await connect(args.admin);
for (;;) {
  const { rows } = await admin.query("SELECT count(*)::int AS n FROM workflow.jobs WHERE id = ANY($1) AND status <> 'completed'", [jobIds]);
  if (rows[0].n === 0 || Date.now() > deadline) break;
  await new Promise((r) => setTimeout(r, 100));
}
finished = true;
await Promise.all(workers);

const { rows: jobs } = await admin.query("SELECT id, status FROM workflow.jobs WHERE id = ANY($1)", [jobIds]);
check(jobs.length === JOBS && jobs.every((j) => j.status === "completed"),
  `jobs not completed: ${JSON.stringify(jobs.filter((j) => j.status !== "completed"))}`);
const { rows: stages } = await admin.query(
  "SELECT job_id, stage, total_tasks, completed_by_task IS NOT NULL OR completed_by_seal AS done FROM workflow.stages WHERE job_id = ANY($1)", [jobIds]);
check(stages.length === JOBS * STAGES && stages.every((s) => s.done), "every stage exists and is complete");
for (const s of stages) {
  const got = firstCompletions.get(`${s.job_id}:${s.stage}`) ?? 0;
  // A stage with tasks: exactly one completion answered true; an empty stage: none.
  check(got === (s.total_tasks > 0 ? 1 : 0), `stage ${s.job_id}:${s.stage} (${s.total_tasks} tasks) answered stage_complete ${got} times`);
}
const { rows: tasks } = await admin.query(
  "SELECT id, job_id, stage, status, parameters, result_data, claimed_by FROM workflow.tasks WHERE job_id = ANY($1)", [jobIds]);
for (const t of tasks) {
  check(t.status === "completed", `task ${t.id} is ${t.status}`);
  try {
    assert.deepStrictEqual(t.result_data, { result: awkward(t.job_id, t.stage, Number(t.id.split(":")[2])), by: t.claimed_by });
  } catch { failures.push(`result of ${t.id} stored changed: ${JSON.stringify(t.result_data)}`); }
}
const { rows: jobRows } = await admin.query("SELECT parameters FROM workflow.jobs WHERE id = $1", [jobIds[0]]);
check(jobRows[0].parameters.note === "a, b \"c\"", `job parameters stored changed: ${JSON.stringify(jobRows[0].parameters)}`);
const { rows: inv } = await admin.query("SELECT check_name, ok, detail FROM workflow.check_invariants()");
check(inv.every((r) => r.ok), `check_invariants: ${JSON.stringify(inv.filter((r) => !r.ok))}`);
await Promise.all([producer.end(), admin.end()]);

console.log(JSON.stringify({ seed: SEED, jobs: JOBS, workers: WORKERS, tasks: tasks.length, ...counts, failures: failures.slice(0, 10) }));
process.exit(failures.length ? 1 : 0);
