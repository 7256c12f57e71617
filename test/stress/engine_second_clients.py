#!/usr/bin/python3
"""The job controls from second clients (psycopg 3), as the README's login roles, through the
SQL API alone (run by engine_second_clients.sh, directly and through PgBouncer).

Roles (created by engine_second_clients.sh per the README's grant recipe): rv_producer
(workflow_producer), rv_worker1 / rv_worker2 (workflow_worker), rv_oncall (workflow_admin,
runs check_invariants after every scenario).

Scenarios (each counts outcomes and checks a README promise; a broken promise is a FAIL):
  final_check_vs_advance   producer's check_job_completion between the last completion and the
                           completer's advance_job_stage (deterministic).
  final_check_race         the same as a race: completer advances with results while the producer
                           polls check_job_completion.
  retry_tolerated_race     retry_task / retry_job of a tolerated dead task while another worker's
                           completion of the stage's last task commits (deterministic).
  cancel_storm             cancel_job while two worker roles claim and complete (single and batch).
  fail_vs_complete         fail_task on the last attempt racing complete of the stage's other task
                           (with and without tolerate_dead_tasks), then the protocol.
  fencing                  heartbeat / complete after lease expiry, with and without a reclaim.
  advance_storm            advance_job_stage by producer, both workers and admin at once.
  seal_race                seal_stage racing the completion of the stage's last task; add_tasks into
                           the next stage by a worker while the current completes.
  timeouts_schedule        timeout expiry fences the hung worker; run_at; priority order.
  limits                   set_task_type_limit under 6 claimers (claim_tasks, claim_tasks_for_workers).
  controls_live            pause_task_type / pause_job / resume while 6 claimers run; set_task_type_limit
                           changed 14 times (lowered, raised, removed, 0) while they run.
  purge_active             purge_jobs in a loop while jobs run, complete and get cancelled.
  kill_after_complete      pg_terminate_backend of the completer right after its complete committed
                           (direct connections only).
After each: check_invariants() as admin, and job_progress equal to a recount of the tasks.
Exit status 0: every promise held; 1: a promise was broken (FAIL lines say which).
"""
import argparse
import random
import sys
import threading
import time

import psycopg

FAILS = []
NOTES = []


def fail(scn, msg):
    FAILS.append((scn, msg))
    print('FAIL [%s] %s' % (scn, msg), flush=True)


def note(scn, msg):
    NOTES.append((scn, msg))
    print('  [%s] %s' % (scn, msg), flush=True)


class Conn:
    """A psycopg connection whose task types 'rv.x' become 'rv-<tag>.x': the direct and the
    PgBouncer runs share the cluster, and claims span jobs."""
    def __init__(self, c, tag):
        object.__setattr__(self, '_c', c)
        object.__setattr__(self, '_tag', tag)

    def execute(self, q, params=None):
        return self._c.execute(q.replace("'rv.", "'rv-%s." % self._tag), params)

    def __getattr__(self, k):
        return getattr(self._c, k)

    def __setattr__(self, k, v):
        setattr(self._c, k, v)


class Env:
    def __init__(self, dsn_base, via_bouncer):
        self.base = dsn_base
        self.bouncer = via_bouncer
        self.tag = 'pgb' if via_bouncer else 'dir'
        self.seq = 0

    def conn(self, user, autocommit=True):
        return Conn(psycopg.connect(self.base + ' user=' + user, autocommit=autocommit, prepare_threshold=None),
                    self.tag)

    def job(self, name):
        self.seq += 1
        return 'rv-%s-%s-%d-%d' % (self.tag, name, self.seq, int(time.time() * 1000) % 100000000)


def sqlstate(e):
    return getattr(e, 'sqlstate', None) or type(e).__name__


def after_scenario(env, scn, jobs):
    adm = env.conn('rv_oncall')
    bad = adm.execute("SELECT check_name, detail FROM workflow.check_invariants() WHERE NOT ok").fetchall()
    for b in bad:
        fail(scn, 'check_invariants: %s: %s' % b)
    prod = env.conn('rv_producer')
    for j in jobs:
        prog = prod.execute("SELECT stage, total_tasks, completed_tasks, failed_tasks, complete "
                            "FROM workflow.job_progress(%s) ORDER BY stage", (j,)).fetchall()
        rec = prod.execute(
            "SELECT n, (SELECT count(*) FROM workflow.tasks t WHERE t.job_id = %s AND t.stage = n),"
            " (SELECT count(*) FROM workflow.tasks t WHERE t.job_id = %s AND t.stage = n AND t.status = 'completed'),"
            " (SELECT count(*) FROM workflow.tasks t WHERE t.job_id = %s AND t.stage = n AND t.status = 'failed')"
            " FROM generate_series(1, (SELECT total_stages FROM workflow.jobs WHERE id = %s)) n ORDER BY n",
            (j, j, j, j)).fetchall()
        for p, r in zip(prog, rec):
            if tuple(p[:4]) != tuple(r):
                fail(scn, 'job_progress %s stage %s = %s, recount %s' % (j, p[0], p[:4], r))
    adm.close()
    prod.close()


# ---------------------------------------------------------------- final stage
def final_check_vs_advance(env):
    scn = 'final_check_vs_advance'
    prod, w1 = env.conn('rv_producer'), env.conn('rv_worker1')
    j = env.job('fin')
    prod.execute("SELECT workflow.create_job('rv', '{}', 1, %s)", (j,))
    prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.fin', ARRAY['{}']::jsonb[])", (j,))
    tid = w1.execute("SELECT id FROM workflow.claim_tasks('w1', 1, ARRAY['rv.fin'])").fetchone()[0]
    sc = w1.execute("SELECT stage_complete FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', worker => 'w1')",
                    (tid, j)).fetchone()[0]
    polled = prod.execute("SELECT job_complete FROM workflow.check_job_completion(%s)", (j,)).fetchone()[0]
    adv = w1.execute("SELECT workflow.advance_job_stage(%s, 1, 2, '{\"words\": 2}')", (j,)).fetchone()[0]
    res = prod.execute("SELECT result_data FROM workflow.jobs WHERE id = %s", (j,)).fetchone()[0]
    note(scn, 'stage_complete=%s producer check_job_completion=%s completer advance=%s jobs.result_data=%s'
         % (sc, polled, adv, res))
    if adv is not True:
        fail(scn, 'README: advance_job_stage "Under any concurrency exactly one caller gets true" -- '
                  'the completer got %s after the producer polled check_job_completion' % adv)
    if not res or '1' not in res:
        fail(scn, 'README: advance_job_stage stores "the stage results (... under key current_stage of '
                  'jobs.result_data)" -- result_data is %s: the last stage\'s results were dropped' % res)
    after_scenario(env, scn, [j])


def final_check_race(env, rounds=30):
    scn = 'final_check_race'
    prod, w1 = env.conn('rv_producer'), env.conn('rv_worker1')
    jobs, lost, zero_true = [], 0, 0
    for _ in range(rounds):
        j = env.job('finr')
        jobs.append(j)
        prod.execute("SELECT workflow.create_job('rv', '{}', 1, %s)", (j,))
        prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.finr', ARRAY['{}']::jsonb[])", (j,))
    stop = threading.Event()

    def poller():
        c = env.conn('rv_producer')
        while not stop.is_set():
            for j in jobs:
                c.execute("SELECT * FROM workflow.check_job_completion(%s)", (j,))
    th = threading.Thread(target=poller)
    th.start()
    trues = 0
    for j in jobs:
        tid = w1.execute("SELECT id FROM workflow.claim_tasks('w1', 1, ARRAY['rv.finr'])").fetchone()[0]
        sc = w1.execute("SELECT stage_complete FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', worker => 'w1')",
                        (tid, j)).fetchone()[0]
        adv = w1.execute("SELECT workflow.advance_job_stage(%s, 1, 2, '{\"n\": 1}')", (j,)).fetchone()[0]
        w1.execute("SELECT * FROM workflow.check_job_completion(%s)", (j,))
        trues += adv
    stop.set()
    th.join()
    for j in jobs:
        st, res = prod.execute("SELECT status, result_data FROM workflow.jobs WHERE id = %s", (j,)).fetchone()
        if st != 'completed':
            fail(scn, '%s ended %s' % (j, st))
        if res is None:
            lost += 1
    zero_true = rounds - trues
    note(scn, '%d jobs: advance true %d, jobs whose last-stage results were dropped %d' % (rounds, trues, lost))
    if lost:
        fail(scn, '%d of %d jobs lost their last stage\'s results (completer advance false: %d) while the '
                  'producer polled check_job_completion' % (lost, rounds, zero_true))
    after_scenario(env, scn, jobs)


# ---------------------------------------------------------------- dead work
def retry_tolerated_race(env):
    scn = 'retry_tolerated_race'
    for how in ('retry_task', 'retry_job'):
        prod, w1 = env.conn('rv_producer'), env.conn('rv_worker1')
        w2 = env.conn('rv_worker2', autocommit=False)
        j = env.job('tol')
        prod.execute("SELECT workflow.create_job('rv', '{}', 2, %s)", (j,))
        prod.execute("SELECT workflow.tolerate_dead_tasks(%s, 1, 1)", (j,))
        prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.tol', ARRAY['{}','{}']::jsonb[], max_retries => 0)", (j,))
        a = w1.execute("SELECT id FROM workflow.claim_tasks('w1', 1, ARRAY['rv.tol'])").fetchone()[0]
        b = w2.execute("SELECT id FROM workflow.claim_tasks('w2', 1, ARRAY['rv.tol'])").fetchone()[0]
        w2.commit()
        w1.execute("SELECT * FROM workflow.fail_task(%s, %s, 'bad', worker => 'w1')", (a, j))
        sc = w2.execute("SELECT stage_complete FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', worker => 'w2')",
                        (b, j)).fetchone()[0]
        out = {}

        def retry():
            try:
                if how == 'retry_task':
                    out['r'] = prod.execute("SELECT workflow.retry_task(%s, %s)", (a, j)).fetchone()[0]
                else:
                    out['r'] = prod.execute("SELECT workflow.retry_job(%s)", (j,)).fetchone()[0]
            except psycopg.Error as e:
                out['r'] = 'ERROR ' + sqlstate(e)
        th = threading.Thread(target=retry)
        th.start()
        time.sleep(0.5)
        w2.commit()
        th.join()
        note(scn, '%s of the tolerated dead task while the stage\'s last completion commits: %s (completer '
                  'stage_complete=%s)' % (how, out['r'], sc))
        if how == 'retry_task' and out['r'] != 'ERROR 55000':
            fail(scn, 'README: retry_task of a tolerated dead task is "55000 when the stage completed with it"; '
                      'got %s' % out['r'])
        if how == 'retry_job' and out['r'] not in (False, 'ERROR 55000'):
            fail(scn, 'README: retry_job leaves tolerated dead tasks of stages that completed with them dead '
                      '(false, or 55000); got %s' % out['r'])
        w2.autocommit = True
        w2.execute("SELECT workflow.advance_job_stage(%s, 1, 2, NULL)", (j,))
        w2.execute("SELECT workflow.seal_stage(%s, 2)", (j,))
        w2.execute("SELECT workflow.advance_job_stage(%s, 2, 3, NULL)", (j,))
        after_scenario(env, scn, [j])


# ---------------------------------------------------------------- cancel
def cancel_storm(env, n_tasks=300, cancel_after=80):
    scn = 'cancel_storm'
    prod = env.conn('rv_producer')
    j = env.job('cancel')
    prod.execute("SELECT workflow.create_job('rv', '{}', 2, %s)", (j,))
    prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.cancel', array_fill('{}'::jsonb, ARRAY[%s]))", (j, n_tasks))
    lock = threading.Lock()
    completed_ok = {}   # task -> number of successful completes
    errors = {}
    stage_trues = [0]
    n_done = [0]
    cancel_at = [None]  # clock_timestamp() right after the cancel committed (by the producer's session)
    claimed_after = []
    stop = threading.Event()

    def worker(k):
        role = 'rv_worker1' if k % 2 == 0 else 'rv_worker2'
        name = 'cw-%d' % k
        c = env.conn(role)
        rnd = random.Random(k)
        while not stop.is_set():
            t0 = time.time()
            try:
                rows = c.execute("SELECT id FROM workflow.claim_tasks(%s, %s, ARRAY['rv.cancel'])",
                                 (name, rnd.randint(1, 5))).fetchall()
            except psycopg.Error as e:
                with lock:
                    errors[('claim', sqlstate(e))] = errors.get(('claim', sqlstate(e)), 0) + 1
                continue
            with lock:
                if cancel_at[0] is not None and t0 > cancel_at[0] and rows:
                    claimed_after.extend(r[0] for r in rows)
            if not rows:
                if cancel_at[0] is not None:
                    break
                time.sleep(0.005)
                continue
            ids = [r[0] for r in rows]
            time.sleep(rnd.random() * 0.01)
            try:
                if rnd.random() < 0.5:
                    res = c.execute("SELECT task_id, stage_complete FROM workflow.complete_tasks(%s, %s, %s, NULL, %s)",
                                    ([j] * len(ids), ids, [1] * len(ids), name)).fetchall()
                else:
                    res = []
                    for tid in ids:
                        try:
                            r = c.execute("SELECT stage_complete FROM workflow.complete_task_and_check_stage("
                                          "%s, %s, 1, '{}', worker => %s)", (tid, j, name)).fetchone()
                            res.append((tid, r[0]))
                        except psycopg.Error as e:
                            with lock:
                                errors[('complete', sqlstate(e))] = errors.get(('complete', sqlstate(e)), 0) + 1
                with lock:
                    for tid, sc in res:
                        completed_ok[tid] = completed_ok.get(tid, 0) + 1
                        stage_trues[0] += bool(sc)
                        n_done[0] += 1
            except psycopg.Error as e:
                with lock:
                    errors[('batch', sqlstate(e))] = errors.get(('batch', sqlstate(e)), 0) + 1

    ths = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ths:
        t.start()
    while n_done[0] < cancel_after:
        time.sleep(0.005)
    ok = prod.execute("SELECT workflow.cancel_job(%s, 'review')", (j,)).fetchone()[0]
    cancel_at[0] = time.time()
    time.sleep(1.0)
    stop.set()
    for t in ths:
        t.join()
    adm = env.conn('rv_oncall')
    counts = dict(adm.execute("SELECT status, count(*) FROM workflow.tasks WHERE job_id = %s GROUP BY 1", (j,)).fetchall())
    st = adm.execute("SELECT status FROM workflow.jobs WHERE id = %s", (j,)).fetchone()[0]
    twice = [t for t, n in completed_ok.items() if n > 1]
    note(scn, 'cancel=%s job=%s tasks=%s successful completes=%d stage_complete trues=%d errors=%s '
              'claimed after cancel=%d' % (ok, st, counts, sum(completed_ok.values()), stage_trues[0], errors,
                                           len(claimed_after)))
    if twice:
        fail(scn, '%d tasks completed twice' % len(twice))
    if claimed_after:
        fail(scn, '%d tasks handed out after cancel_job committed' % len(claimed_after))
    if counts.get('completed', 0) != len(completed_ok):
        fail(scn, 'completed tasks %d but %d successful completions' % (counts.get('completed', 0), len(completed_ok)))
    if counts.get('queued', 0) or counts.get('claimed', 0):
        fail(scn, 'unfinished tasks left after cancel: %s' % counts)
    bad_err = {k: v for k, v in errors.items() if k[1] != '55000'}
    if bad_err:
        fail(scn, 'unexpected errors (README: a cancelled job\'s completes are 55000): %s' % bad_err)
    after_scenario(env, scn, [j])


# ---------------------------------------------------------------- fail vs complete
def fail_vs_complete(env, rounds=20):
    scn = 'fail_vs_complete'
    prod = env.conn('rv_producer')
    jobs = []
    c1, c2 = env.conn('rv_worker1'), env.conn('rv_worker2')
    outcome = {'failed_job': 0, 'tolerated': 0, 'errors': {}}
    advances = {}
    for i in range(rounds):  # one job at a time: claims span jobs
        j = env.job('fvc')
        jobs.append(j)
        prod.execute("SELECT workflow.create_job('rv', '{}', 2, %s)", (j,))
        prod.execute("SELECT workflow.set_handover_lease(%s, '1 second')", (j,))
        if i % 2:
            prod.execute("SELECT workflow.tolerate_dead_tasks(%s, 1, 1)", (j,))
        prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.fvc', ARRAY['{}','{}']::jsonb[], max_retries => 1)", (j,))
        a = c1.execute("SELECT id FROM workflow.claim_tasks('f1', 1, ARRAY['rv.fvc'])").fetchone()[0]
        b = c2.execute("SELECT id FROM workflow.claim_tasks('f2', 1, ARRAY['rv.fvc'])").fetchone()[0]
        # first attempt of a fails and is retried; claim it again right away (backoff 0)
        c1.execute("SELECT * FROM workflow.fail_task(%s, %s, 'e1', backoff_base => '0', backoff_cap => '0', worker => 'f1')", (a, j))
        a2 = c1.execute("SELECT id FROM workflow.claim_tasks('f1', 1, ARRAY['rv.fvc'])").fetchone()[0]
        assert a2 == a, (a2, a)
        barrier = threading.Barrier(2)
        res = {}

        def do_fail():
            c = env.conn('rv_worker1')
            barrier.wait()
            try:
                res['fail'] = c.execute("SELECT job_failed FROM workflow.fail_task(%s, %s, 'e2', worker => 'f1')", (a, j)).fetchone()[0]
            except psycopg.Error as e:
                res['fail'] = 'ERROR ' + sqlstate(e)

        def do_complete():
            c = env.conn('rv_worker2')
            barrier.wait()
            try:
                res['complete'] = c.execute("SELECT stage_complete FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', worker => 'f2')", (b, j)).fetchone()[0]
            except psycopg.Error as e:
                res['complete'] = 'ERROR ' + sqlstate(e)
        ts = [threading.Thread(target=do_fail), threading.Thread(target=do_complete)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        tolerated = bool(i % 2)
        st = prod.execute("SELECT status FROM workflow.jobs WHERE id = %s", (j,)).fetchone()[0]
        for k in ('fail', 'complete'):
            if isinstance(res[k], str):
                outcome['errors'][res[k]] = outcome['errors'].get(res[k], 0) + 1
        if res['complete'] is True:
            c2.execute("SELECT workflow.seal_stage(%s, 2)", (j,))
            advances[(j, 1)] = c2.execute("SELECT workflow.advance_job_stage(%s, 1, 2, NULL)", (j,)).fetchone()[0] + 0
        if not tolerated:
            outcome['failed_job'] += st == 'failed'
            if st != 'failed':
                fail(scn, '%s: the last attempt failed without tolerance but the job is %s (%s)' % (j, st, res))
            if res['complete'] is True:
                fail(scn, '%s: stage reported complete although its other task died' % j)
        else:
            outcome['tolerated'] += 1
    # the hand-over path picks up the tolerated stages nobody was told about
    time.sleep(1.2)
    h = env.conn('rv_worker1')
    for _ in range(50):
        rows = h.execute("SELECT job_id, stage FROM workflow.claim_stage_handovers('hv', 10, '30 seconds')").fetchall()
        if not rows:
            break
        for jj, s in rows:
            tot = h.execute("SELECT total_stages FROM workflow.jobs WHERE id = %s", (jj,)).fetchone()[0]
            if s < tot:
                h.execute("SELECT workflow.seal_stage(%s, %s)", (jj, s + 1))
            advances[(jj, s)] = advances.get((jj, s), 0) + h.execute("SELECT workflow.advance_job_stage(%s, %s, %s, NULL)",
                                                           (jj, s, s + 1)).fetchone()[0]
            h.execute("SELECT * FROM workflow.check_job_completion(%s)", (jj,))
    for i, j in enumerate(jobs):
        if i % 2:
            st = prod.execute("SELECT status FROM workflow.jobs WHERE id = %s", (j,)).fetchone()[0]
            if st != 'completed':
                fail(scn, '%s (tolerates 1 dead) ended %s' % (j, st))
            for s in (1,):  # stage 2 (sealed empty) may end the job by check_job_completion instead
                if advances.get((j, s), 0) != 1:
                    fail(scn, '%s stage %s advanced %s times' % (j, s, advances.get((j, s), 0)))
    note(scn, '%s; advance true per (job, stage): %s' % (outcome, sorted(set(advances.values()))))
    if any(k != 'ERROR 55000' for k in outcome['errors']):
        fail(scn, 'unexpected errors %s' % outcome['errors'])
    after_scenario(env, scn, jobs)


# ---------------------------------------------------------------- fencing
def fencing(env, n=30):
    scn = 'fencing'
    prod = env.conn('rv_producer')
    j = env.job('fence')
    prod.execute("SELECT workflow.create_job('rv', '{}', 1, %s)", (j,))
    prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.fence', array_fill('{}'::jsonb, ARRAY[%s]))", (j, n))
    w1, w2 = env.conn('rv_worker1'), env.conn('rv_worker2')
    mine = [r[0] for r in w1.execute("SELECT id FROM workflow.claim_tasks('fa', %s, ARRAY['rv.fence'], '1 second')", (n,))]
    time.sleep(1.3)
    taken = set(r[0] for r in w2.execute("SELECT id FROM workflow.claim_tasks('fb', %s, ARRAY['rv.fence'])", (n // 2,)))
    results = {}
    lock = threading.Lock()

    def first():
        c = env.conn('rv_worker1')
        for tid in mine:
            try:
                hb = c.execute("SELECT workflow.heartbeat_task(%s, %s, 'fa')", (tid, j)).fetchone()[0]
            except psycopg.Error as e:
                hb = 'ERROR ' + sqlstate(e)
            try:
                c.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{\"by\": \"fa\"}', worker => 'fa')", (tid, j))
                cp = 'ok'
            except psycopg.Error as e:
                cp = 'ERROR ' + sqlstate(e)
            with lock:
                results.setdefault(tid, {})['fa'] = (hb, cp)

    def second():
        c = env.conn('rv_worker2')
        for tid in sorted(taken, reverse=True):
            try:
                c.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{\"by\": \"fb\"}', worker => 'fb')", (tid, j))
                cp = 'ok'
            except psycopg.Error as e:
                cp = 'ERROR ' + sqlstate(e)
            with lock:
                results.setdefault(tid, {})['fb'] = cp
    ts = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    rows = dict((r[0], (r[1], r[2], r[3])) for r in env.conn('rv_oncall').execute(
        "SELECT id, status, claimed_by, result_data->>'by' FROM workflow.tasks WHERE job_id = %s", (j,)))
    tally = {}
    for tid in mine:
        r = results[tid]
        oks = (r['fa'][1] == 'ok') + (r.get('fb') == 'ok')
        if oks != 1:
            fail(scn, '%s completed %d times: %s' % (tid, oks, r))
        if tid in taken:
            key = ('reclaimed', r['fa'], r['fb'])
            if r['fa'] != ('ERROR 55000', 'ERROR 55000') or r['fb'] != 'ok':
                fail(scn, '%s reclaimed by fb: fa heartbeat/complete %s, fb %s (README: 55000 for fa)' % (tid, r['fa'], r['fb']))
        else:
            key = ('expired, not reclaimed', r['fa'])
            if r['fa'] != (True, 'ok'):
                fail(scn, '%s expired lease not reclaimed: fa heartbeat/complete %s (README: true, completes)' % (tid, r['fa']))
        tally[key] = tally.get(key, 0) + 1
        st, by, res_by = rows[tid]
        if st != 'completed' or by != res_by:
            fail(scn, '%s status %s claimed_by %s result by %s' % (tid, st, by, res_by))
    note(scn, 'outcomes %s' % tally)
    after_scenario(env, scn, [j])


# ---------------------------------------------------------------- advance storm
def advance_storm(env, n_jobs=15, stages=3):
    scn = 'advance_storm'
    prod = env.conn('rv_producer')
    jobs = [env.job('adv') for _ in range(n_jobs)]
    roles = ['rv_producer', 'rv_worker1', 'rv_worker2', 'rv_oncall']
    conns = [env.conn(r) for r in roles]
    w = env.conn('rv_worker1')
    trues = {}
    errs = {}
    for j in jobs:  # one job at a time: claims span jobs
        prod.execute("SELECT workflow.create_job('rv', '{}', %s, %s)", (stages, j))
        prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.adv', ARRAY['{}','{}']::jsonb[])", (j,))
        for s in range(1, stages + 1):
            ids = [r[0] for r in w.execute("SELECT id FROM workflow.claim_tasks('adv', 2, ARRAY['rv.adv'])")]
            assert len(ids) == 2, (j, s, ids)
            sc = w.execute("SELECT count(*) FILTER (WHERE stage_complete) FROM workflow.complete_tasks(%s, %s, %s, NULL, 'adv')",
                           ([j, j], ids, [s, s])).fetchone()[0]
            if sc != 1:
                fail(scn, '%s stage %s: %s completers' % (j, s, sc))
            if s < stages:
                w.execute("SELECT workflow.add_tasks(%s, %s, 'rv.adv', ARRAY['{}','{}']::jsonb[])", (j, s + 1))
            barrier = threading.Barrier(len(conns))
            got = []

            def call(c, k):
                barrier.wait()
                try:
                    got.append(c.execute("SELECT workflow.advance_job_stage(%s, %s, %s, %s)",
                                         (j, s, s + 1, '{"by": %d}' % k)).fetchone()[0])
                    c.execute("SELECT * FROM workflow.check_job_completion(%s)", (j,))
                except psycopg.Error as e:
                    errs[sqlstate(e)] = errs.get(sqlstate(e), 0) + 1
            ts = [threading.Thread(target=call, args=(c, k)) for k, c in enumerate(conns)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            trues[(j, s)] = sum(got)
            if sum(got) != 1:
                fail(scn, '%s advance %s->%s: %d callers got true' % (j, s, s + 1, sum(got)))
    for j in jobs:
        st, res = prod.execute("SELECT status, result_data FROM workflow.jobs WHERE id = %s", (j,)).fetchone()
        if st != 'completed' or len(res or {}) != stages:
            fail(scn, '%s status %s result_data %s' % (j, st, res))
    note(scn, '%d advances, true counts %s, errors %s' % (len(trues), sorted(set(trues.values())), errs))
    after_scenario(env, scn, jobs)


# ---------------------------------------------------------------- seal race
def seal_race(env, rounds=20):
    scn = 'seal_race'
    prod = env.conn('rv_producer')
    jobs = []
    tally = {}
    for r in range(rounds):
        j = env.job('seal')
        jobs.append(j)
        prod.execute("SELECT workflow.create_job('rv', '{}', 2, %s)", (j,))
        prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.seal', ARRAY['{}','{}']::jsonb[], seal => false)", (j,))
        w1, w2 = env.conn('rv_worker1'), env.conn('rv_worker2')
        a = w1.execute("SELECT id FROM workflow.claim_tasks('s1', 1, ARRAY['rv.seal'])").fetchone()[0]
        b = w2.execute("SELECT id FROM workflow.claim_tasks('s2', 1, ARRAY['rv.seal'])").fetchone()[0]
        barrier = threading.Barrier(4)
        got = {}

        def comp(c, tid, name):
            barrier.wait()
            got[name] = c.execute("SELECT stage_complete FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', worker => %s)",
                                  (tid, j, name)).fetchone()[0]

        def seal():
            c = env.conn('rv_producer')
            barrier.wait()
            got['seal'] = c.execute("SELECT workflow.seal_stage(%s, 1)", (j,)).fetchone()[0]

        def fan_next():  # a worker fans out stage 2 meanwhile (allowed: the next stage)
            c = env.conn('rv_worker1')
            barrier.wait()
            got['add2'] = c.execute("SELECT workflow.add_tasks(%s, 2, 'rv.seal2', ARRAY['{}']::jsonb[])", (j,)).fetchone()[0]
        ts = [threading.Thread(target=comp, args=(w1, a, 's1')), threading.Thread(target=comp, args=(w2, b, 's2')),
              threading.Thread(target=seal), threading.Thread(target=fan_next)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        n_true = sum(1 for k in ('s1', 's2', 'seal') if got[k])
        tally[n_true] = tally.get(n_true, 0) + 1
        if n_true != 1:
            fail(scn, '%s: %d callers were told the stage completed (%s)' % (j, n_true, got))
        # a repeated seal answers the same
        again = prod.execute("SELECT workflow.seal_stage(%s, 1)", (j,)).fetchone()[0]
        if again != got['seal']:
            fail(scn, '%s: repeated seal_stage %s, first %s' % (j, again, got['seal']))
        if got['add2'] != 1:
            fail(scn, '%s: add_tasks into stage 2 returned %s' % (j, got['add2']))
        # stage 2 is not claimable before the advance
        early = w1.execute("SELECT id FROM workflow.claim_tasks('s1', 5, ARRAY['rv.seal2'])").fetchall()
        if early:
            fail(scn, '%s: stage-2 task claimed before the advance: %s' % (j, early))
        w1.execute("SELECT workflow.advance_job_stage(%s, 1, 2, NULL)", (j,))
        t2 = w1.execute("SELECT id FROM workflow.claim_tasks('s1', 5, ARRAY['rv.seal2'])").fetchall()
        for (tid,) in t2:
            sc = w1.execute("SELECT stage_complete FROM workflow.complete_task_and_check_stage(%s, %s, 2, '{}', worker => 's1')", (tid, j)).fetchone()[0]
            if sc:
                w1.execute("SELECT workflow.advance_job_stage(%s, 2, 3, NULL)", (j,))
        st = prod.execute("SELECT status FROM workflow.jobs WHERE id = %s", (j,)).fetchone()[0]
        if st != 'completed':
            fail(scn, '%s ended %s' % (j, st))
    note(scn, 'callers told complete per stage: %s' % tally)
    after_scenario(env, scn, jobs)


# ---------------------------------------------------------------- timeouts, run_at, priority
def timeouts_schedule(env):
    scn = 'timeouts_schedule'
    prod, w1, w2 = env.conn('rv_producer'), env.conn('rv_worker1'), env.conn('rv_worker2')
    j = env.job('tmo')
    prod.execute("SELECT workflow.create_job('rv', '{}', 1, %s)", (j,))
    prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.tmo', array_fill('{}'::jsonb, ARRAY[6]), timeout => '1 second', max_retries => 3)", (j,))
    hung = [r[0] for r in w1.execute("SELECT id FROM workflow.claim_tasks('hung', 6, ARRAY['rv.tmo'])")]
    time.sleep(1.3)
    # the expiry requeues with backoff (2 s base): nothing to take yet, the claim expires them
    w2.execute("SELECT id FROM workflow.claim_tasks('fresh', 6, ARRAY['rv.tmo'])").fetchall()
    outs = {}
    for tid in hung:
        hb = w1.execute("SELECT workflow.heartbeat_task(%s, %s, 'hung')", (tid, j)).fetchone()[0]
        try:
            w1.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', worker => 'hung')", (tid, j))
            cp = 'ok'
        except psycopg.Error as e:
            cp = 'ERROR ' + sqlstate(e)
        outs[(hb, cp)] = outs.get((hb, cp), 0) + 1
    note(scn, 'hung worker after its deadline expired: (heartbeat, complete) %s' % outs)
    if outs != {(False, 'ERROR 55000'): 6}:
        fail(scn, 'README: "The hung worker is fenced out: its heartbeat answers false, its complete 55000"; got %s' % outs)
    # finish the job: wait out the backoff, complete as another worker
    deadline = time.time() + 20
    done = 0
    while done < 6 and time.time() < deadline:
        for (tid,) in w2.execute("SELECT id FROM workflow.claim_tasks('fresh', 6, ARRAY['rv.tmo'])").fetchall():
            w2.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', worker => 'fresh')", (tid, j))
            done += 1
        time.sleep(0.2)
    if done != 6:
        fail(scn, 'only %d of 6 timed-out tasks could be run again' % done)
    # run_at and priority
    j2 = env.job('runat')
    prod.execute("SELECT workflow.create_job('rv', '{}', 1, %s, run_at => now() + interval '2 seconds')", (j2,))
    prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.runat', array_fill('{}'::jsonb, ARRAY[3]), seal => false)", (j2,))
    prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.runat', array_fill('{}'::jsonb, ARRAY[3]), first_index => 3, priority => 5)", (j2,))
    early = w1.execute("SELECT id FROM workflow.claim_tasks('ra', 10, ARRAY['rv.runat'])").fetchall()
    if early:
        fail(scn, 'claimed before the job\'s run_at: %s' % early)
    time.sleep(2.2)
    order = [r[1] for r in w1.execute("SELECT id, priority FROM workflow.claim_tasks('ra', 10, ARRAY['rv.runat'])")]
    if order[:3] != [5, 5, 5] or len(order) != 6:
        fail(scn, 'priority order %s' % order)
    w1.execute("SELECT * FROM workflow.complete_tasks(%s, %s, %s, NULL, 'ra')",
               ([j2] * 6, ['%s:1:%d' % (j2, i) for i in range(6)], [1] * 6))
    w1.execute("SELECT workflow.advance_job_stage(%s, 1, 2, NULL)", (j2,))
    note(scn, 'run_at: %d claimed early; priorities in claim order %s' % (len(early), order))
    w2.execute("SELECT workflow.advance_job_stage(%s, 1, 2, NULL)", (j,))
    after_scenario(env, scn, [j, j2])


# ---------------------------------------------------------------- limits
def limits(env, n=150, limit=2):
    scn = 'limits'
    adm, prod = env.conn('rv_oncall'), env.conn('rv_producer')
    typ = 'rv-%s.lim' % env.tag
    adm.execute("SELECT workflow.set_task_type_limit(%s, %s)", (typ, limit))
    j = env.job('lim')
    prod.execute("SELECT workflow.create_job('rv', '{}', 1, %s)", (j,))
    prod.execute("SELECT workflow.add_tasks(%s, 1, %s, array_fill('{}'::jsonb, ARRAY[%s]), seal => false)", (j, typ, n))
    prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.free', array_fill('{}'::jsonb, ARRAY[%s]), first_index => %s)", (j, n, n))
    lock = threading.Lock()
    stop = threading.Event()
    max_seen = [0]
    samples = [0]
    done = {}
    errs = {}

    def monitor():
        c = env.conn('rv_oncall')
        while not stop.is_set():
            k = c.execute("SELECT count(*) FROM workflow.tasks WHERE task_type = %s AND status = 'claimed'", (typ,)).fetchone()[0]
            with lock:
                max_seen[0] = max(max_seen[0], k)
                samples[0] += 1

    def claimer(k):
        c = env.conn('rv_worker1' if k % 2 else 'rv_worker2')
        rnd = random.Random(k)
        names = ['lim-%d-a' % k, 'lim-%d-b' % k]
        idle = 0
        while idle < 30:
            try:
                if rnd.random() < 0.3:
                    rows = c.execute("SELECT id, claimed_by, job_id, stage FROM workflow.claim_tasks_for_workers(%s, %s)",
                                     (names, [typ, 'rv-%s.free' % env.tag] if rnd.random() < 0.5 else None)).fetchall()
                else:
                    rows = c.execute("SELECT id, claimed_by, job_id, stage FROM workflow.claim_tasks(%s, %s, %s)",
                                     (names[0], rnd.randint(1, 4), [typ] if rnd.random() < 0.5 else None)).fetchall()
            except psycopg.Error as e:
                with lock:
                    errs[sqlstate(e)] = errs.get(sqlstate(e), 0) + 1
                continue
            if not rows:
                idle += 1
                time.sleep(0.01)
                continue
            idle = 0
            time.sleep(rnd.random() * 0.01)
            for tid, by, jj, s in rows:
                c.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, %s, %s, '{}', count_remaining => false, worker => %s)",
                          (tid, jj, s, by))
                if jj == j:
                    with lock:
                        done[tid] = done.get(tid, 0) + 1
    mt = threading.Thread(target=monitor)
    mt.start()
    ths = [threading.Thread(target=claimer, args=(k,)) for k in range(6)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    stop.set()
    mt.join()
    adm.execute("SELECT workflow.set_task_type_limit(%s, NULL)", (typ,))
    note(scn, 'limit %d: max claimed seen %d in %d samples; %d tasks completed (twice: %d); errors %s'
         % (limit, max_seen[0], samples[0], len(done), sum(1 for v in done.values() if v > 1), errs))
    if max_seen[0] > limit:
        fail(scn, 'limit %d exceeded: %d claimed at once' % (limit, max_seen[0]))
    if len(done) != 2 * n or any(v > 1 for v in done.values()):
        fail(scn, 'completed %d of %d tasks' % (len(done), 2 * n))
    if errs:
        fail(scn, 'errors %s' % errs)
    after_scenario(env, scn, [j])


# ---------------------------------------------------------------- controls while claims run
def controls_live(env, n=4000):
    """pause_task_type / pause_job and set_task_type_limit changed while 6 claimers run
    (claim_tasks and claim_tasks_for_workers, batches of 1..5). README: a claim that starts after
    a pause returns takes none of the paused type's or job's tasks (one in flight then may); a
    limit binds every claim that starts after it is set: such a claim that takes tasks of the
    type leaves at most the limit claimed (counted in the claim's own transaction, whose lock on
    the type's settings row is held to commit)."""
    scn = 'controls_live'
    adm, prod = env.conn('rv_oncall'), env.conn('rv_producer')
    ta, tb = 'rv-%s.pa' % env.tag, 'rv-%s.pb' % env.tag
    j1, j2 = env.job('pause1'), env.job('pause2')
    for j, typ in ((j1, ta), (j2, tb)):
        prod.execute("SELECT workflow.create_job('rv', '{}', 1, %s)", (j,))
        prod.execute("SELECT workflow.add_tasks(%s, 1, %s, array_fill('{}'::jsonb, ARRAY[%s]))", (j, typ, n))
    lock = threading.Lock()
    marks = {}          # what -> monotonic time the control call returned
    seen = {'after': 0, 'inflight': 0, 'straddled': 0, 'resumed_a': 0, 'resumed_j': 0}
    bad = []
    stop = threading.Event()

    def claimer(k, types, job_of_interest):
        c = env.conn('rv_worker1' if k % 2 else 'rv_worker2')
        rnd = random.Random(k)
        while not stop.is_set():
            t0 = time.monotonic()
            if rnd.random() < 0.4:
                rows = c.execute("SELECT id, task_type, job_id, claimed_by FROM workflow.claim_tasks_for_workers(%s, %s)",
                                 (['cl-%d-%d' % (k, i) for i in range(rnd.randint(1, 4))], types)).fetchall()
            else:
                rows = c.execute("SELECT id, task_type, job_id, claimed_by FROM workflow.claim_tasks(%s, %s, %s)",
                                 ('cl-%d' % k, rnd.randint(1, 5), types)).fetchall()
            t1 = time.monotonic()
            with lock:
                for tid, typ, jj, by in rows:
                    for what, hit in (('type', typ == ta), ('job', jj == job_of_interest)):
                        if not hit or what not in marks:
                            continue
                        if 'resumed' in marks and t0 > marks['resumed']:
                            seen['resumed_a' if what == 'type' else 'resumed_j'] += 1
                        elif t0 <= marks[what]:
                            seen['inflight'] += 1
                        elif 'resuming' not in marks or t1 < marks['resuming']:
                            # started after the pause returned, ended before the resume began
                            seen['after'] += 1
                            bad.append((what, tid))
                        else:  # ran while the resume committed (queued in PgBouncer, say): not judged
                            seen['straddled'] += 1
            for tid, typ, jj, by in rows:
                c.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', count_remaining => false, worker => %s)",
                          (tid, jj, by))
            time.sleep(0.002)

    ths = [threading.Thread(target=claimer, args=(k, [ta, tb], j2)) for k in range(6)]
    for t in ths:
        t.start()
    time.sleep(0.3)
    adm.execute("SELECT workflow.pause_task_type(%s)", (ta,))
    with lock:
        marks['type'] = time.monotonic()
    time.sleep(0.3)
    prod.execute("SELECT workflow.pause_job(%s)", (j2,))
    with lock:
        marks['job'] = time.monotonic()
    time.sleep(0.4)
    with lock:
        marks['resuming'] = time.monotonic()
    adm.execute("SELECT workflow.resume_task_type(%s)", (ta,))
    prod.execute("SELECT workflow.resume_job(%s)", (j2,))
    with lock:
        marks['resumed'] = time.monotonic()
    time.sleep(0.3)
    stop.set()
    for t in ths:
        t.join()
    note(scn, 'pause: claimed by calls started after the pause returned (and ended before the resume) %d, '
         'by calls in flight %d, by calls across the resume %d; after resume %d'
         % (seen['after'], seen['inflight'], seen['straddled'], seen['resumed_a'] + seen['resumed_j']))
    if bad:
        fail(scn, 'README: paused, yet claimed by a claim that started after the pause returned: %s' % bad[:5])
    w = env.conn('rv_worker1')
    for typ, what in ((ta, 'resume_task_type'), (tb, 'resume_job')):
        left = w.execute("SELECT count(*) FROM workflow.tasks WHERE task_type = %s AND status = 'queued'",
                         (typ,)).fetchone()[0]
        got = w.execute("SELECT id, job_id FROM workflow.claim_tasks('cl-probe', 1, ARRAY[%s])", (typ,)).fetchall()
        if not got:  # with none queued the probe proves nothing: n must leave some
            fail(scn, 'nothing of %s claimable after %s (%d queued)' % (typ, what, left))
        for tid, jj in got:
            w.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', worker => 'cl-probe')", (tid, jj))
    for j in (j1, j2):
        prod.execute("SELECT workflow.cancel_job(%s)", (j,))

    # Limits changed while claims run.
    tl = 'rv-%s.lz' % env.tag
    j3 = env.job('limlive')
    prod.execute("SELECT workflow.create_job('rv', '{}', 1, %s)", (j3,))
    prod.execute("SELECT workflow.add_tasks(%s, 1, %s, array_fill('{}'::jsonb, ARRAY[%s]), seal => false)", (j3, tl, 4 * n))
    prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.lzfree', array_fill('{}'::jsonb, ARRAY[%s]), first_index => %s, priority => 1)",
                 (j3, 4 * n, 4 * n))
    phase = ['changing', 0.0]
    calls = []   # (start, end, bound, limit, took, claimed after it in its transaction)
    stats = {'claims': 0, 'took': 0, 'errors': {}}
    stop.clear()

    def limited(k):
        c = env.conn('rv_worker1' if k % 2 else 'rv_worker2', autocommit=False)
        rnd = random.Random(100 + k)
        held = []
        while not stop.is_set():
            with lock:
                before = tuple(phase)
                t0 = time.monotonic()
            try:
                if rnd.random() < 0.4:
                    rows = c.execute("SELECT id, task_type, claimed_by FROM workflow.claim_tasks_for_workers(%s, ARRAY[%s, 'rv.lzfree'])",
                                     (['lz-%d-%d' % (k, i) for i in range(rnd.randint(1, 4))], tl)).fetchall()
                else:
                    rows = c.execute("SELECT id, task_type, claimed_by FROM workflow.claim_tasks(%s, %s, ARRAY[%s])",
                                     ('lz-%d' % k, rnd.randint(1, 6), tl)).fetchall()
                now_claimed = c.execute("SELECT count(*) FROM workflow.tasks WHERE task_type = %s AND status = 'claimed'",
                                        (tl,)).fetchone()[0]
                c.commit()
            except psycopg.Error as e:
                c.rollback()
                with lock:
                    stats['errors'][sqlstate(e)] = stats['errors'].get(sqlstate(e), 0) + 1
                continue
            took = sum(1 for r in rows if r[1] == tl)
            with lock:
                stats['claims'] += 1
                stats['took'] += took
                # bound: started after a limit was set and ran while it stayed
                calls.append((t0, time.monotonic(), before[0] not in ('changing', None) and before == tuple(phase),
                              before[0], took, now_claimed))
            held += rows
            rnd.shuffle(held)
            keep = held[:rnd.randint(0, 3)]
            for tid, typ, by in held[len(keep):]:
                c.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', count_remaining => false, worker => %s)",
                          (tid, j3, by))
            c.commit()
            held = keep
        for tid, typ, by in held:
            c.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, %s, 1, '{}', count_remaining => false, worker => %s)",
                      (tid, j3, by))
        c.commit()

    ths = [threading.Thread(target=limited, args=(k,)) for k in range(6)]
    for t in ths:
        t.start()
    for lim in [3, 5, 1, 0, 2, None, 4, 1, None, 2, 6, 3, 0, 2]:
        with lock:
            phase[:] = ['changing', time.monotonic()]
        adm.execute("SELECT workflow.set_task_type_limit(%s, %s)", (tl, lim))
        with lock:
            phase[:] = [lim, time.monotonic()]
        time.sleep(0.25)
    stop.set()
    for t in ths:
        t.join()
    adm.execute("SELECT workflow.set_task_type_limit(%s, NULL)", (tl,))
    # A claim that ran while no limit bound (or while it changed) may commit tasks of the type
    # between a bound claim's claim and its count (README: claims in flight when a limit is set):
    # only bound claims that overlapped none of those are judged.
    unbound = [(a, b) for a, b, bound, _, _, _ in calls if not bound]
    over = [(lim, took, n) for a, b, bound, lim, took, n in calls
            if bound and took and n > lim and not any(ua < b and a < ub for ua, ub in unbound)]
    judged = sum(1 for a, b, bound, _, _, _ in calls if bound and not any(ua < b and a < ub for ua, ub in unbound))
    note(scn, '%d claims judged (bound, overlapping no unbound claim)' % judged)
    note(scn, 'limits changed 14 times under 6 claimers: %d claims took %d limited tasks; over the limit: %d; errors %s'
         % (stats['claims'], stats['took'], len(over), stats['errors']))
    if over:
        fail(scn, 'README: a claim that started after set_task_type_limit returned left more claimed: (limit, took, claimed) %s' % over[:5])
    if not judged:
        fail(scn, 'no claim could be judged against a limit')
    if stats['errors'] or not stats['took']:
        fail(scn, 'errors %s, limited tasks taken %d' % (stats['errors'], stats['took']))
    prod.execute("SELECT workflow.cancel_job(%s)", (j3,))
    after_scenario(env, scn, [j1, j2, j3])


# ---------------------------------------------------------------- retention while active
def purge_active(env, n_jobs=16, n_tasks=20):
    scn = 'purge_active'
    prod = env.conn('rv_producer')
    jobs = []
    for i in range(n_jobs):
        j = env.job('pur')
        jobs.append(j)
        prod.execute("SELECT workflow.create_job('rv', '{}', 2, %s)", (j,))
        prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.pur', array_fill('{}'::jsonb, ARRAY[%s]))", (j, n_tasks))
    stop = threading.Event()
    lock = threading.Lock()
    errs = {}
    purged = [0]

    def bump(k):
        with lock:
            errs[k] = errs.get(k, 0) + 1

    def worker(k):
        c = env.conn('rv_worker1' if k % 2 else 'rv_worker2')
        name = 'pw-%d' % k
        idle = 0
        while idle < 40:
            try:
                rows = c.execute("SELECT job_id, id, stage FROM workflow.claim_tasks(%s, 5, ARRAY['rv.pur','rv.pur2'])", (name,)).fetchall()
                if not rows:
                    idle += 1
                    time.sleep(0.01)
                    for jj, s in c.execute("SELECT job_id, stage FROM workflow.claim_stage_handovers(%s, 5)", (name,)).fetchall():
                        follow(c, jj, s)
                    continue
                idle = 0
                for jj, tid, s in rows:
                    try:
                        sc = c.execute("SELECT stage_complete FROM workflow.complete_task_and_check_stage(%s, %s, %s, '{}', worker => %s)",
                                       (tid, jj, s, name)).fetchone()[0]
                    except psycopg.Error as e:
                        bump(('complete', sqlstate(e)))
                        continue
                    if sc:
                        follow(c, jj, s)
            except psycopg.Error as e:
                bump(('loop', sqlstate(e)))

    def follow(c, jj, s):
        try:
            if s == 1:
                c.execute("SELECT workflow.add_tasks(%s, 2, 'rv.pur2', array_fill('{}'::jsonb, ARRAY[3]))", (jj,))
            c.execute("SELECT workflow.advance_job_stage(%s, %s, %s, NULL)", (jj, s, s + 1))
            c.execute("SELECT * FROM workflow.check_job_completion(%s)", (jj,))
        except psycopg.Error as e:
            bump(('follow', sqlstate(e)))

    def purger():
        c = env.conn('rv_oncall')
        while not stop.is_set():
            try:
                purged[0] += c.execute("SELECT workflow.purge_jobs('0 seconds', max_jobs => 2)").fetchone()[0]
            except psycopg.Error as e:
                bump(('purge', sqlstate(e)))
            time.sleep(0.01)

    def canceller():
        c = env.conn('rv_producer')
        for j in jobs[::4]:
            time.sleep(0.05)
            try:
                c.execute("SELECT workflow.cancel_job(%s)", (j,))
            except psycopg.Error as e:
                bump(('cancel', sqlstate(e)))
    pt = threading.Thread(target=purger)
    pt.start()
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(4)] + [threading.Thread(target=canceller)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    stop.set()
    pt.join()
    adm = env.conn('rv_oncall')
    left = adm.execute("SELECT id, status FROM workflow.jobs WHERE id = ANY(%s)", (jobs,)).fetchall()
    orphans = adm.execute("SELECT (SELECT count(*) FROM workflow.tasks t WHERE NOT EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = t.job_id)),"
                          " (SELECT count(*) FROM workflow.stage_slots t WHERE NOT EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = t.job_id)),"
                          " (SELECT count(*) FROM workflow.stages t WHERE NOT EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = t.job_id))").fetchone()
    unfinished = [r for r in left if r[1] in ('pending', 'running')]
    note(scn, 'purged %d, left %s, orphans (tasks, slots, stages) %s, errors %s'
         % (purged[0], sorted(set(r[1] for r in left)), orphans, errs))
    if unfinished:
        fail(scn, 'jobs left unfinished: %s' % unfinished)
    if any(orphans):
        fail(scn, 'orphans %s' % (orphans,))
    bad = {k: v for k, v in errs.items() if k[1] not in ('55000', 'P0002')}
    if bad:
        fail(scn, 'unexpected errors %s' % bad)
    after_scenario(env, scn, [r[0] for r in left])


# ---------------------------------------------------------------- kill the completer
def kill_after_complete(env, rounds=5):
    scn = 'kill_after_complete'
    prod, adm = env.conn('rv_producer'), env.conn('postgres')  # pg_terminate_backend needs pg_signal_backend
    for _ in range(rounds):
        j = env.job('kill')
        prod.execute("SELECT workflow.create_job('rv', '{}', 2, %s)", (j,))
        prod.execute("SELECT workflow.set_handover_lease(%s, '1 second')", (j,))
        prod.execute("SELECT workflow.add_tasks(%s, 1, 'rv.kill', ARRAY['{}','{}']::jsonb[])", (j,))
        w1 = env.conn('rv_worker1')
        pid = w1.execute("SELECT pg_backend_pid()").fetchone()[0]
        ids = [r[0] for r in w1.execute("SELECT id FROM workflow.claim_tasks('k1', 2, ARRAY['rv.kill'])")]
        sc = w1.execute("SELECT count(*) FILTER (WHERE stage_complete) FROM workflow.complete_tasks(%s, %s, %s, NULL, 'k1')",
                        ([j, j], ids, [1, 1])).fetchone()[0]
        adm.execute("SELECT pg_terminate_backend(%s)", (pid,))
        try:
            w1.execute("SELECT workflow.advance_job_stage(%s, 1, 2, NULL)", (j,))
            fail(scn, 'the terminated connection still advanced')
        except psycopg.Error:
            pass
        w2 = env.conn('rv_worker2')
        t0 = time.time()
        while time.time() - t0 < 10:
            st = prod.execute("SELECT status FROM workflow.jobs WHERE id = %s", (j,)).fetchone()[0]
            if st != 'running':
                break
            for jj, s in w2.execute("SELECT job_id, stage FROM workflow.claim_stage_handovers('k2', 5)").fetchall():
                if s == 1:
                    w2.execute("SELECT workflow.add_tasks(%s, 2, 'rv.kill2', ARRAY['{}']::jsonb[])", (jj,))
                w2.execute("SELECT workflow.advance_job_stage(%s, %s, %s, NULL)", (jj, s, s + 1))
                w2.execute("SELECT * FROM workflow.check_job_completion(%s)", (jj,))
            for jj, tid, s in w2.execute("SELECT job_id, id, stage FROM workflow.claim_tasks('k2', 5, ARRAY['rv.kill2'])").fetchall():
                if w2.execute("SELECT stage_complete FROM workflow.complete_task_and_check_stage(%s, %s, %s, '{}', worker => 'k2')",
                              (tid, jj, s)).fetchone()[0]:
                    w2.execute("SELECT workflow.advance_job_stage(%s, %s, %s, NULL)", (jj, s, s + 1))
            time.sleep(0.2)
        st = prod.execute("SELECT status FROM workflow.jobs WHERE id = %s", (j,)).fetchone()[0]
        note(scn, '%s: completer told %d, killed before advancing; job %s after %.1f s' % (j, sc, st, time.time() - t0))
        if st != 'completed':
            fail(scn, '%s is %s after the completer was killed' % (j, st))
        after_scenario(env, scn, [j])


SCENARIOS = [final_check_vs_advance, final_check_race, retry_tolerated_race, cancel_storm, fail_vs_complete,
             fencing, advance_storm, seal_race, timeouts_schedule, limits, controls_live, purge_active, kill_after_complete]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dsn', required=True, help='libpq conninfo without user')
    ap.add_argument('--bouncer', action='store_true', help='through PgBouncer (transaction mode): no backend kills')
    ap.add_argument('--only', default='')
    a = ap.parse_args()
    env = Env(a.dsn, a.bouncer)
    for s in SCENARIOS:
        if a.only and s.__name__ not in a.only.split(','):
            continue
        if a.bouncer and s is kill_after_complete:
            continue
        t0 = time.time()
        print('== %s (%s)' % (s.__name__, env.tag), flush=True)
        try:
            s(env)
        except Exception as e:  # a scenario that breaks is a failure too
            fail(s.__name__, 'scenario raised %r' % e)
        print('   %.1f s' % (time.time() - t0), flush=True)
    print('%d FAIL lines (%s)' % (len(FAILS), env.tag))
    return 1 if FAILS else 0


if __name__ == '__main__':
    sys.exit(main())
