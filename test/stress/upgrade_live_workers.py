#!/usr/bin/python3
"""ALTER EXTENSION workflow UPDATE while workers run (run by upgrade_live_workers.sh).

The database holds release FROM (the .sh installs it): JOBS one-stage jobs of TASKS tasks
each, workflow.tasks audited. WORKERS threads, each on its own session that stays open
across the update, claim, complete and advance in a loop through the SQL API; once a third
of the tasks are done the main thread runs ALTER EXTENSION workflow UPDATE (to the current
version) on another session, and the workers keep going until every job is done.
Promises checked:
  - no worker call fails except with a deadlock or lock-wait error that its retry resolves
    (the update locks what it alters for its duration; README "Upgrading");
  - the update itself succeeds (retried on deadlock);
  - every task is completed exactly once, every job is completed, check_invariants() is clean;
  - the audit log of workflow.tasks shows each task claimed and completed, nothing lost.
Exit 0 when every promise held, 1 otherwise (FAIL lines say which).
"""
import argparse
import sys
import threading

import psycopg

RETRYABLE = ('40P01', '40001', '55P03')
FAILS = []
lock = threading.Lock()
stats = {'completed': 0, 'retries': 0, 'advanced': 0}


def fail(msg):
    with lock:
        FAILS.append(msg)
    print('FAIL ' + msg, flush=True)


def call(conn, sql, params=()):
    """Runs one statement in its own transaction; retries deadlocks/serialization failures."""
    for _ in range(50):
        try:
            with conn.transaction():
                cur = conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as e:
            if e.sqlstate in RETRYABLE:
                with lock:
                    stats['retries'] += 1
                continue
            raise
    raise RuntimeError('still failing after 50 retries: ' + sql)


def worker(dsn, name, total, stop):
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                rows = call(conn, "SELECT id, job_id, stage FROM workflow.claim_tasks(%s, 5, ARRAY['lw'])",
                            (name,))
                if not rows:
                    with lock:
                        if stats['completed'] >= total:
                            return
                    continue
                for task_id, job_id, stage in rows:
                    res = call(conn, "SELECT stage_complete FROM workflow.complete_task_and_check_stage("
                                     "%s, %s, %s, %s::jsonb, true, %s)",
                               (task_id, job_id, stage, '{"by": "%s"}' % name, name))
                    with lock:
                        stats['completed'] += 1
                    if res and res[0][0]:
                        adv = call(conn, "SELECT workflow.advance_job_stage(%s, 1, 2, NULL)", (job_id,))
                        if adv[0][0]:
                            with lock:
                                stats['advanced'] += 1
    except Exception as e:  # noqa: BLE001 - any other error is what the test looks for
        fail('worker %s: %s: %s' % (name, type(e).__name__, e))
        stop.set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dsn', required=True)
    ap.add_argument('--jobs', type=int, default=40)
    ap.add_argument('--tasks', type=int, default=25)
    ap.add_argument('--workers', type=int, default=4)
    a = ap.parse_args()
    total = a.jobs * a.tasks
    with psycopg.connect(a.dsn, autocommit=True) as admin:
        before = admin.execute("SELECT extversion FROM pg_extension WHERE extname = 'workflow'").fetchone()[0]
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(a.dsn, 'lw-%d' % i, total, stop))
                   for i in range(a.workers)]
        for t in threads:
            t.start()
        done = threading.Event()
        while not stop.is_set():
            with lock:
                if stats['completed'] >= total // 3:
                    break
            done.wait(0.01)
        with lock:
            at = stats['completed']
        try:
            call(admin, 'ALTER EXTENSION workflow UPDATE')
        except Exception as e:  # noqa: BLE001
            fail('ALTER EXTENSION workflow UPDATE: %s' % e)
        after = admin.execute("SELECT extversion FROM pg_extension WHERE extname = 'workflow'").fetchone()[0]
        for t in threads:
            t.join(300)
            if t.is_alive():
                fail('a worker did not finish')
                stop.set()
        print('updated %s -> %s after %d of %d completions; %d retries' %
              (before, after, at, total, stats['retries']), flush=True)
        if before == after:
            fail('the extension was not updated (%s)' % after)
        if at >= total:
            fail('the update ran after the workers were done')
        statuses = dict(admin.execute("SELECT status, count(*) FROM workflow.tasks GROUP BY status").fetchall())
        if statuses != {'completed': total}:
            fail('tasks by status: %s, want all %d completed' % (statuses, total))
        if stats['completed'] != total:
            fail('%d completions reported for %d tasks' % (stats['completed'], total))
        jobs = dict(admin.execute("SELECT status, count(*) FROM workflow.jobs GROUP BY status").fetchall())
        if jobs != {'completed': a.jobs}:
            fail('jobs by status: %s, want all %d completed' % (jobs, a.jobs))
        bad = admin.execute("SELECT check_name, detail FROM workflow.check_invariants() WHERE NOT ok").fetchall()
        if bad:
            fail('check_invariants: %s' % bad)
        lost = admin.execute(
            "SELECT count(*) FROM workflow.tasks t WHERE NOT EXISTS ("
            "  SELECT 1 FROM workflow.row_history('workflow.tasks', jsonb_build_object('id', t.id, 'job_id', t.job_id)) h"
            "   WHERE h.new_values->>'status' = 'completed')"
            "   OR NOT EXISTS (SELECT 1 FROM workflow.row_history('workflow.tasks', jsonb_build_object('id', t.id, 'job_id', t.job_id)) h"
            "   WHERE h.new_values->>'status' = 'claimed')").fetchone()[0]
        if lost:
            fail('%d tasks lack a logged claim or completion' % lost)
    print('upgrade_live_workers: %s' % ('FAILED' if FAILS else 'ok'), flush=True)
    return 1 if FAILS else 0


if __name__ == '__main__':
    sys.exit(main())
