#!/usr/bin/python3
"""The engine driven from a second language, through its SQL API alone (psycopg 3).

12 worker threads (one connection each) run 50 jobs of 3 stages (1..4 tasks a stage, some
stages empty), submitted one by one, about 50 ms apart, so workers are often idle. A
worker claims tasks, sometimes heartbeats, completes them singly
(complete_task_and_check_stage) or in a batch (complete_tasks), repeats 5% of the calls as
after a lost reply, and on each stage_complete answer fans out stage s+1 and advances the
job, in a random order. It also takes stage hand-overs (claim_stage_handovers) and treats
each row as a stage_complete answer. A few claims use a 1-second lease and outlive it, so
another worker may reclaim the task: the late completion must be refused (55000, fencing).

Checks: every job completed; exactly one first-time stage_complete = true per stage, from
its recorded completer (repeats counted apart); one advance winner per stage; one accepted
completion per task; one workflow_job_complete NOTIFY per job and one
workflow_stage_complete per stage (LISTEN on a direct connection, never through a pooler);
check_invariants() all ok; no unexpected SQLSTATE. Expected, and counted: 40P01 (retried);
55000 for a claim that outlived its lease (its late heartbeat or completion, fencing) and
for a fan-out by a second handler of a stage after the job ended. Anything else fails.

--legacy: today's API only (no worker =>, no hand-overs); on main 93d08c1 it is expected to
fail (jobs stuck, late completions accepted). Driven by test/stress/psycopg_engine.sh.
Exit status: 0 pass, 1 a check failed, 2 the API this test needs is missing.
"""
import argparse
import json
import random
import sys
import threading
import time
from collections import Counter, defaultdict

import psycopg
from psycopg.types.json import Jsonb

STOP_CHANNEL = 'psycopg_engine_stop'
# The API of issue 9 (CONTRACT.md): fencing by worker, and the stage hand-over.
CONTRACT_API = [
    'workflow.complete_task_and_check_stage(text,text,integer,jsonb,boolean,text)',
    'workflow.complete_tasks(text[],text[],integer[],jsonb[],text)',
    'workflow.claim_stage_handovers(text,integer,interval)',
]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dsn', required=True, help='where the workers connect (direct or PgBouncer)')
    p.add_argument('--direct-dsn', help='direct connection for setup, LISTEN and checks (default --dsn)')
    p.add_argument('--listen-dsn', action='append',
                   help='LISTEN here (repeatable; default --direct-dsn): on a Citus cluster every node, '
                        'since a call delegated to a worker node notifies there')
    p.add_argument('--pooler', action='store_true',
                   help='--dsn is PgBouncer in transaction mode: no server-side prepared statements')
    p.add_argument('--legacy', action='store_true', help="today's API only (expected to fail on old main)")
    p.add_argument('--check-api', action='store_true', help='only check that the contract API exists')
    p.add_argument('--workers', type=int, default=12)
    p.add_argument('--jobs', type=int, default=50)
    p.add_argument('--stages', type=int, default=3)
    p.add_argument('--repeat', type=float, default=0.05, help='share of completions sent twice')
    p.add_argument('--slow', type=float, default=0.03, help='share of claims that outlive their lease')
    p.add_argument('--arrival', type=float, default=0.05, help='mean seconds between two new jobs')
    p.add_argument('--timeout', type=float, default=300, help='global limit, seconds')
    p.add_argument('--stall', type=float, default=30, help='fail after this long without progress')
    p.add_argument('--seed', type=int, default=int(time.time()))
    p.add_argument('--label', default='run')
    a = p.parse_args(argv)
    a.direct_dsn = a.direct_dsn or a.dsn
    a.listen_dsn = a.listen_dsn or [a.direct_dsn]
    return a


def connect(dsn, pooler=False):
    # psycopg prepares a statement on the server after 5 executions; PgBouncer 1.18 in
    # transaction mode hands each transaction another server connection, so not there.
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None if pooler else 5)


def missing_api(conn):
    return [sig for sig in CONTRACT_API
            if conn.execute('SELECT to_regprocedure(%s) IS NULL', (sig,)).fetchone()[0]]


def make_plan(rng, n_jobs, n_stages):
    """Tasks per stage of every job, fixed up front: a stage fanned out twice (a hand-over
    and its completer both do it) must get the same tasks. Stage 1 is never empty."""
    plan = {}
    for j in range(n_jobs):
        counts = [rng.randint(1, 4)]
        counts += [0 if rng.random() < 0.15 else rng.randint(1, 4) for _ in range(n_stages - 1)]
        plan[f'psy-{j:02d}'] = counts
    if n_jobs >= 3 and n_stages >= 3:  # always some empty stages: middle, last, both
        plan['psy-00'][1] = 0
        plan['psy-01'][2] = 0
        plan['psy-02'][1] = plan['psy-02'][2] = 0
    return plan


class Record:
    """What the workers saw, counted under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = Counter()           # event name -> n (the report)
        self.by_stage = defaultdict(Counter)  # event name -> (job, stage) -> n
        self.first_true_to = defaultdict(list)  # (job, stage) -> (task, worker) answered true
        self.accepted = defaultdict(list)  # task id -> workers whose completion was accepted
        self.problems = []                # failures seen while running

    def count(self, name, n=1):
        with self.lock:
            self.counts[name] += n

    def stage_event(self, name, job, stage):
        with self.lock:
            self.counts[name] += 1
            self.by_stage[name][(job, stage)] += 1

    def completion(self, worker, task, first, repeat):
        """One completion call of `task` answered `first` (and `repeat`, if sent twice)."""
        with self.lock:
            self.accepted[task.id].append(worker)
            if first:
                self.by_stage['first-time stage_complete'][(task.job, task.stage)] += 1
                self.first_true_to[(task.job, task.stage)].append((task.id, worker))
            if repeat is not None:
                self.counts['repeated completions'] += 1
                if repeat:
                    self.counts['repeats answered stage_complete again'] += 1
                if repeat != first:
                    self.problems.append(f'{task.id}: the repeat answered stage_complete={repeat}, '
                                         f'the first call {first}')

    def problem(self, text):
        with self.lock:
            self.problems.append(text)


class Task:
    def __init__(self, task_id, job, stage, slow):
        self.id, self.job, self.stage, self.slow = task_id, job, stage, slow


class Worker(threading.Thread):
    """One worker: its own connection, claim -> (heartbeat) -> complete -> hand on."""

    def __init__(self, index, args, plan, rec, stop):
        super().__init__(name=f'w{index:02d}', daemon=True)
        self.args, self.plan, self.rec, self.stop = args, plan, rec, stop
        self.rng = random.Random(args.seed * 100 + index)
        self.fenced = not args.legacy
        self.conn = None

    def run(self):
        try:
            self.conn = connect(self.args.dsn, self.args.pooler)
        except psycopg.Error as e:
            self.rec.problem(f'{self.name}: cannot connect: {e}')
            return
        turn = 0
        with self.conn:
            while not self.stop.is_set():
                turn += 1
                try:
                    busy = self.step(turn)
                except Exception as e:  # noqa: BLE001 - every failure is reported
                    if self.conn.broken:
                        self.rec.problem(f'{self.name}: connection lost: {e}')
                        return
                    state = getattr(e, 'sqlstate', None)
                    what = f'SQLSTATE {state}' if state else type(e).__name__
                    self.rec.problem(f'{self.name}: unexpected {what}: {e}')
                    busy = False
                if not busy:
                    time.sleep(self.rng.uniform(0.005, 0.03))

    def step(self, turn):
        tasks = self.claim()
        if tasks:
            self.work(tasks)
        # Hand-overs regularly, and whenever there was no task to claim.
        handed = self.fenced and (turn % 4 == 0 or not tasks) and self.take_handovers()
        return bool(tasks) or handed

    def sql(self, query, params=()):
        """One statement (autocommit). A deadlock (40P01) is retried and counted."""
        for _ in range(5):
            try:
                return self.conn.execute(query, params).fetchall()
            except psycopg.errors.DeadlockDetected:
                self.rec.count('deadlocks retried (40P01)')
        raise RuntimeError(f'deadlock 5 times in a row: {query}')

    # -- tasks -------------------------------------------------------------------------

    def claim(self):
        slow = self.rng.random() < self.args.slow
        n, lease = (1, '1 second') if slow else (self.rng.randint(1, 4), '1 minute')
        rows = self.sql('SELECT id, job_id, stage FROM workflow.claim_tasks(%s, %s, NULL, %s::interval)',
                        (self.name, n, lease))
        return [Task(*r, slow) for r in rows]

    def work(self, tasks):
        if tasks[0].slow:
            time.sleep(1.5)  # outlive the lease: another worker may reclaim the task
            self.rec.count('claims that outlived their lease')
        if self.rng.random() < 0.2:
            tasks = [t for t in tasks if self.heartbeat(t)]
        if len(tasks) > 1 and self.rng.random() < 0.5:
            self.complete_batch(tasks)
        else:
            for t in tasks:
                self.complete_one(t)

    def heartbeat(self, t):
        """True while this worker still holds the task."""
        try:
            held = self.sql('SELECT workflow.heartbeat_task(%s, %s, %s, %s::interval)',
                            (t.id, t.job, self.name, '1 minute'))[0][0]
        except psycopg.Error as e:
            if not (e.sqlstate == '55000' and t.slow):
                raise
            held = False  # fencing: another worker holds it now
        self.rec.count('heartbeats')
        if not held:
            if not t.slow:
                self.rec.problem(f'{self.name}: heartbeat of {t.id} says it lost a task it holds')
            self.rec.count('heartbeats refused after a lost lease')
        return held

    def worker_arg(self):
        return (', worker => %s', (self.name,)) if self.fenced else ('', ())

    def complete_one(self, t):
        w_sql, w_par = self.worker_arg()
        query = ('SELECT stage_complete FROM workflow.complete_task_and_check_stage('
                 f'%s, %s, %s::int, %s{w_sql})')
        params = (t.id, t.job, t.stage, Jsonb({'by': self.name})) + w_par
        try:
            first = self.sql(query, params)[0][0]
        except psycopg.Error as e:
            if e.sqlstate == '55000' and t.slow:
                self.rec.count('late completions refused (55000, fencing)')
                return
            raise
        repeat = self.sql(query, params)[0][0] if self.rng.random() < self.args.repeat else None
        self.rec.count('single completions')
        self.rec.completion(self.name, t, first, repeat)
        if first if repeat is None else repeat:  # act on the answer that arrived
            self.on_stage_complete(t.job, t.stage)

    def complete_batch(self, tasks):
        self.rng.shuffle(tasks)
        w_sql, w_par = self.worker_arg()
        query = ('SELECT task_id, stage_complete FROM workflow.complete_tasks('
                 f'%s::text[], %s::text[], %s::int[], %s::jsonb[]{w_sql})')
        params = ([t.job for t in tasks], [t.id for t in tasks], [t.stage for t in tasks],
                  [Jsonb({'by': self.name}) for _ in tasks]) + w_par
        first = dict(self.sql(query, params))
        repeat = dict(self.sql(query, params)) if self.rng.random() < self.args.repeat else {}
        self.rec.count('batch completions')
        for t in tasks:
            self.rec.completion(self.name, t, first[t.id], repeat.get(t.id))
        for t in tasks:
            if repeat.get(t.id, first[t.id]):
                self.on_stage_complete(t.job, t.stage)

    # -- stages ------------------------------------------------------------------------

    def take_handovers(self):
        rows = self.sql('SELECT job_id, stage FROM workflow.claim_stage_handovers(%s, %s, %s::interval)',
                        (self.name, 2, '10 seconds'))
        for job, stage in rows:
            self.rec.stage_event('hand-overs taken', job, stage)
            self.on_stage_complete(job, stage)
        return bool(rows)

    def on_stage_complete(self, job, stage):
        """A stage_complete answer (or a hand-over): fan out stage+1 and advance, in a random
        order, then check_job_completion. An empty stage+1 is complete once sealed: go on."""
        last = stage == len(self.plan[job])
        fan_first = self.rng.random() < 0.5
        self.rec.count('fan-out before advance' if fan_first else 'advance before fan-out')
        next_complete = False
        if not last and fan_first:
            next_complete = self.fan_out(job, stage + 1)
        self.advance(job, stage)
        if not last and not fan_first:
            next_complete = self.fan_out(job, stage + 1)
        self.sql('SELECT * FROM workflow.check_job_completion(%s)', (job,))
        if next_complete:
            self.on_stage_complete(job, stage + 1)

    def advance(self, job, stage):
        """advance_job_stage (compare-and-set), with the stage's results (from job_progress).
        A loser whose job is still BEHIND the stage is the race of issue 9: the stage was
        completed before the advance into it committed."""
        done = self.sql('SELECT completed_tasks FROM workflow.job_progress(%s) WHERE stage = %s',
                        (job, stage))
        results = Jsonb({'by': self.name, 'tasks': done[0][0] if done else 0})
        if self.sql('SELECT workflow.advance_job_stage(%s, %s::int, %s::int, %s)',
                    (job, stage, stage + 1, results))[0][0]:
            self.rec.stage_event('advances won', job, stage)
            return
        at, status = self.sql('SELECT stage, status FROM workflow.jobs WHERE id = %s', (job,))[0]
        if at < stage and status in ('pending', 'running'):
            self.rec.stage_event('advances lost while the job was behind', job, stage)

    def fan_out(self, job, stage):
        """add_tasks, or seal_stage for an empty stage; True when that completed the stage.
        A second handler of the previous stage may come after the job ended: 55000."""
        n = self.plan[job][stage - 1]
        try:
            if n == 0:
                sealed = self.sql('SELECT workflow.seal_stage(%s, %s::int)', (job, stage))[0][0]
                if sealed:
                    self.rec.stage_event('seal answers true (empty stage)', job, stage)
                return sealed
            params = [Jsonb({'job': job, 'stage': stage, 'i': i}) for i in range(n)]
            self.sql("SELECT workflow.add_tasks(%s, %s::int, 'psycopg', %s::jsonb[])", (job, stage, params))
            return False
        except psycopg.Error as e:
            if e.sqlstate != '55000' or not self.job_ended(job):
                raise
            self.rec.count('late fan-outs after the job ended (55000)')
            return False

    def job_ended(self, job):
        return self.sql('SELECT job_complete FROM workflow.check_job_completion(%s)', (job,))[0][0]


class Listener(threading.Thread):
    """LISTEN on a direct connection: NOTIFY is lost through a transaction-mode pooler."""

    def __init__(self, dsn):
        super().__init__(name='listener', daemon=True)
        self.dsn, self.ready, self.error = dsn, threading.Event(), None
        self.jobs = defaultdict(list)   # job -> statuses notified
        self.stages = Counter()         # (job, stage) -> workflow_stage_complete notifications

    def run(self):
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                for channel in ('workflow_job_complete', 'workflow_stage_complete', STOP_CHANNEL):
                    conn.execute(f'LISTEN {channel}')
                self.ready.set()
                for n in conn.notifies():
                    if n.channel == STOP_CHANNEL:
                        return
                    p = json.loads(n.payload)
                    if n.channel == 'workflow_job_complete':
                        self.jobs[p['job_id']].append(p['status'])
                    else:
                        self.stages[(p['job_id'], p['stage'])] += 1
        except Exception as e:  # reported by the checks
            self.error = e
            self.ready.set()


def merged(listeners):
    """One listener's view of what all of them heard."""
    if len(listeners) == 1:
        return listeners[0]
    total = Listener(listeners[0].dsn)
    for one in listeners:
        total.error = total.error or one.error
        for job, statuses in one.jobs.items():
            total.jobs[job] += statuses
        total.stages.update(one.stages)
    return total


# -- the run ---------------------------------------------------------------------------

class Producer(threading.Thread):
    """Submits the jobs one by one, a random 0..2*arrival seconds apart, so the queue stays
    short and workers are often idle, as in a real deployment (a backlog of older tasks
    would hide the fan-out race: claims are oldest first)."""

    def __init__(self, args, plan, rec):
        super().__init__(name='producer', daemon=True)
        self.args, self.plan, self.rec = args, plan, rec
        self.rng = random.Random(args.seed - 1)

    def run(self):
        try:
            with psycopg.connect(self.args.direct_dsn, autocommit=True) as conn:
                for job, counts in self.plan.items():
                    conn.execute("SELECT workflow.create_job('psycopg', '{}', %s, %s)", (len(counts), job))
                    params = [Jsonb({'job': job, 'stage': 1, 'i': i}) for i in range(counts[0])]
                    conn.execute("SELECT workflow.add_tasks(%s, 1, 'psycopg', %s::jsonb[])", (job, params))
                    time.sleep(self.rng.uniform(0, 2 * self.args.arrival))
        except psycopg.Error as e:
            self.rec.problem(f'producer: {e}')


def progress(conn):
    return conn.execute("""
        SELECT (SELECT count(*) FROM workflow.jobs WHERE status = 'completed'),
               (SELECT coalesce(sum(stage), 0) FROM workflow.jobs),
               (SELECT count(*) FROM workflow.tasks WHERE status = 'completed')""").fetchone()


def watch(conn, args, n_jobs, started):
    """Until every job is completed (None), or why not: a stall or the global timeout."""
    last, since = None, time.monotonic()
    while True:
        now = progress(conn)
        if now[0] == n_jobs:
            return None
        t = time.monotonic()
        if now != last:
            last, since = now, t
        elif t - since > args.stall:
            return f'no progress for {args.stall:.0f} s'
        if t - started > args.timeout:
            return f'global timeout of {args.timeout:.0f} s'
        time.sleep(0.2)


def stuck_jobs(conn):
    rows = conn.execute("""
        SELECT j.id, j.status, j.stage, s.completed_at IS NOT NULL,
               (SELECT string_agg(format('%s:%s=%s', stage, status, n), ' ' ORDER BY stage, status)
                  FROM (SELECT stage, status, count(*) n FROM workflow.tasks
                         WHERE job_id = j.id GROUP BY 1, 2) t)
          FROM workflow.jobs j
          LEFT JOIN workflow.stages s ON s.job_id = j.id AND s.stage = j.stage
         WHERE j.status <> 'completed' ORDER BY j.id""").fetchall()
    return [f'job {job} {status} at stage {stage}, stage {stage} '
            f'{"complete and not advanced" if done else "not complete"} (tasks stage:status=n: {tasks})'
            for job, status, stage, done, tasks in rows]


def check_stages(conn, plan, rec):
    """One first-time stage_complete per task stage, from its recorded completer; an empty
    stage completed by its seal; one advance winner per stage of a completed job."""
    bad = []
    rows = conn.execute("""
        SELECT s.job_id, s.stage, s.completed_by_task, s.completed_by_seal, j.status = 'completed'
          FROM workflow.stages s JOIN workflow.jobs j ON j.id = s.job_id
         WHERE s.completed_at IS NOT NULL""").fetchall()
    complete = {(job, stage): (task, by_seal, job_done) for job, stage, task, by_seal, job_done in rows}
    first, sealed = rec.by_stage['first-time stage_complete'], rec.by_stage['seal answers true (empty stage)']
    won, behind = rec.by_stage['advances won'], rec.by_stage['advances lost while the job was behind']
    done = {job for (job, _), (_, _, job_done) in complete.items() if job_done}
    for job, counts in plan.items():
        for stage, n in enumerate(counts, 1):
            key, name = (job, stage), f'{job} stage {stage}'
            if key not in complete:
                if key[0] in done:
                    bad.append(f'{name}: not complete, yet its job is')
                continue  # a stuck job: reported with the job
            task, by_seal, job_done = complete[key]
            told = rec.first_true_to[key]
            if n and (first[key] != 1 or [t for t, _ in told] != [task]):
                bad.append(f'{name}: first-time stage_complete = true {first[key]} times ('
                           + ', '.join(f'{t} to {w}' for t, w in told) + f'), recorded completer {task}')
            if not n and (first[key] or not by_seal or not sealed[key]):
                bad.append(f'{name} (empty): seal answers {sealed[key]}, completed_by_seal {by_seal}')
            # The last stage's advance may find the job completed by check_job_completion.
            if won[key] > 1 or (job_done and stage < len(counts) and won[key] != 1):
                bad.append(f'{name}: advance_job_stage answered true {won[key]} times')
            if behind[key]:
                bad.append(f'{name}: its completer\'s advance_job_stage came while the job was still '
                           f'behind it ({behind[key]} times): stage {stage} completed before the '
                           f'advance into it committed')
    return bad


def check_tasks(conn, rec, fenced):
    """Each task completed and accepted once (own repeats aside), its result from that
    worker; with fencing that worker is also the task's last claimer."""
    bad = []
    for task, status, by, claimer in conn.execute(
            "SELECT id, status, result_data->>'by', claimed_by FROM workflow.tasks ORDER BY id"):
        who = rec.accepted.get(task, [])
        if status != 'completed':
            continue  # a stuck job: reported with the job
        if len(who) != 1 or who[0] != by or (fenced and by != claimer):
            bad.append(f'task {task}: completions accepted from {who}, result by {by}, claimed by {claimer}')
    return bad


def check_notifications(listener, plan, conn):
    bad = [] if listener.error is None else [f'listener failed: {listener.error}']
    done = {r[0] for r in conn.execute("SELECT id FROM workflow.jobs WHERE status = 'completed'")}
    for job in plan:
        got, want = listener.jobs.get(job, []), ['completed'] if job in done else []
        if got != want:
            bad.append(f'{job}: workflow_job_complete notifications {got}, want {want}')
    for key in conn.execute('SELECT job_id, stage FROM workflow.stages WHERE completed_at IS NOT NULL'):
        if listener.stages[tuple(key)] != 1:
            bad.append(f'{key[0]} stage {key[1]}: {listener.stages[tuple(key)]} '
                       'workflow_stage_complete notifications')
    return bad


def check_invariants(conn, fenced):
    rows = conn.execute('SELECT * FROM workflow.check_invariants()').fetchall()
    bad = [f'check_invariants: {name}: {detail}' for name, ok, detail in rows if not ok]
    if fenced and 'stuck jobs' not in {name for name, _, _ in rows}:
        bad.append("check_invariants() has no 'stuck jobs' check (CONTRACT.md)")
    return bad


def report(args, rec, plan, elapsed, failures):
    stages = sum(len(c) for c in plan.values())
    empty = sum(c.count(0) for c in plan.values())
    mode = 'legacy API' if args.legacy else 'contract API'
    print(f'[{args.label}] {mode}, seed {args.seed}: {len(plan)} jobs, {stages} stages ({empty} empty), '
          f'{sum(map(sum, plan.values()))} tasks, {args.workers} workers, {elapsed:.1f} s')
    for name, n in sorted(rec.counts.items()):
        print(f'[{args.label}]   {name}: {n}')
    for line in failures[:40]:
        print(f'[{args.label}] FAIL: {line}')
    if len(failures) > 40:
        print(f'[{args.label}] FAIL: ... and {len(failures) - 40} more')
    print(f'[{args.label}] {"FAILED" if failures else "ok"}')


def run(args):
    plan = make_plan(random.Random(args.seed), args.jobs, args.stages)
    rec, stop = Record(), threading.Event()
    with psycopg.connect(args.direct_dsn, autocommit=True) as conn:
        if conn.execute('SELECT count(*) FROM workflow.jobs').fetchone()[0]:
            print(f'[{args.label}] needs a database without jobs')
            return 2
        listeners = [Listener(dsn) for dsn in args.listen_dsn]
        for listener in listeners:
            listener.start()
            listener.ready.wait(10)
        started = time.monotonic()
        workers = [Worker(i, args, plan, rec, stop) for i in range(args.workers)]
        for w in workers + [Producer(args, plan, rec)]:
            w.start()
        why = watch(conn, args, len(plan), started)
        stop.set()
        for w in workers:
            w.join(30)
        elapsed = time.monotonic() - started
        for listener in listeners:
            with psycopg.connect(listener.dsn, autocommit=True) as node:
                node.execute('SELECT pg_notify(%s, %s)', (STOP_CHANNEL, ''))
            listener.join(10)
        failures = list(rec.problems)
        if why:
            failures.append(f'not every job completed: {why}')
            failures += stuck_jobs(conn)
        failures += check_stages(conn, plan, rec)
        failures += check_tasks(conn, rec, not args.legacy)
        failures += check_notifications(merged(listeners), plan, conn)
        failures += check_invariants(conn, not args.legacy)
    report(args, rec, plan, elapsed, failures)
    return 1 if failures else 0


def main(argv):
    args = parse_args(argv)
    if not args.legacy:
        with psycopg.connect(args.direct_dsn, autocommit=True) as conn:
            missing = missing_api(conn)
        if missing:
            print(f'[{args.label}] FAIL: the engine API of issue 9 is missing (merge the engine-state and '
                  f'fencing branches first): {", ".join(missing)}')
            return 2
    if args.check_api:
        print(f'[{args.label}] the contract API is there')
        return 0
    return run(args)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
