#!/usr/bin/python3
"""Races of the 1.4 engine controls, through the SQL API alone (psycopg 3).

limit:     a task type limited to N (3) claimed at once; 16 claimer threads (one connection
           each) claim it (batches of 1..4, mixed with claims of any type and of an unlimited
           type), hold each task a few ms, complete it. A monitor thread samples the claimed
           count of the type in one snapshot, thousands of times. Checks: never more than N
           claimed in any sample, nor in any claim's answer plus what its claimer held; the
           limit was reached (the test can fail); every task completed once; invariants ok.
retention: 8 worker threads complete 40 jobs (one stage of 30 tasks each, batches, each
           stage_complete advances its job) while a purger thread calls purge_jobs('0
           seconds', max_jobs => 3) in a loop (a completion storm with a retention run).
           Checks: every job completed and then purged or still there complete; no task,
           counter or stage without its job; check_invariants() all ok; only expected
           SQLSTATEs (40P01 retried).
dedupe:    16 threads (one connection each, the same role) call create_job with the same
           dedupe_key at once, 20 keys in turn, each followed by add_tasks of 2 tasks from
           every thread. Checks: all 16 answer the same id per key; one job per key; its
           stage 1 holds 2 tasks (every add_tasks but the first is a repeat of the same
           indices: nothing added); another role with the same key gets another job.
isolation: what the README says of a limit and the isolation level: once a type has a limit, a
           claim that may take it (task_types NULL or naming it) in a REPEATABLE READ transaction
           is 25001 and claims nothing; a claim of other types is not; the same worker claims
           in a READ COMMITTED transaction of its own (its session default REPEATABLE READ).
Exit status 0 pass, 1 a check failed.
"""
import argparse
import random
import sys
import threading
import time

import psycopg

LIMIT = 3


def connect(dsn):
    return psycopg.connect(dsn, autocommit=True)


def run_limit(dsn):
    setup = connect(dsn)
    setup.execute("SELECT workflow.set_task_type_limit('race.limited', %s)", (LIMIT,))
    setup.execute("SELECT workflow.create_job('race', '{}', 1, 'race-limit')")
    setup.execute("SELECT workflow.add_tasks('race-limit', 1, 'race.limited', array_fill('{}'::jsonb, ARRAY[300]), seal => false)")
    setup.execute("SELECT workflow.add_tasks('race-limit', 1, 'race.free', array_fill('{}'::jsonb, ARRAY[300]), first_index => 300)")
    errors, done, max_seen, samples = [], [], [0], [0]
    stop = threading.Event()
    lock = threading.Lock()

    def monitor():
        c = connect(dsn)
        while not stop.is_set():
            n = c.execute("SELECT count(*) FROM workflow.tasks WHERE task_type = 'race.limited' AND status = 'claimed'").fetchone()[0]
            with lock:
                max_seen[0] = max(max_seen[0], n)
                samples[0] += 1

    def claimer(k):
        rnd = random.Random(k)
        c = connect(dsn)
        name = 'claimer-%d' % k
        try:
            while not stop.is_set():
                types = rnd.choice([["race.limited"], None, ["race.limited", "race.free"]])
                rows = c.execute("SELECT id, task_type FROM workflow.claim_tasks(%s, %s, %s)",
                                 (name, rnd.randint(1, 4), types)).fetchall()
                if not rows:
                    left = c.execute("SELECT count(*) FROM workflow.tasks WHERE job_id = 'race-limit' AND status <> 'completed'").fetchone()[0]
                    if left == 0:
                        return
                    time.sleep(0.002)
                    continue
                mine = sum(1 for r in rows if r[1] == 'race.limited')
                if mine > LIMIT:
                    errors.append('%s got %d limited tasks in one claim' % (name, mine))
                time.sleep(rnd.uniform(0.001, 0.008))
                for task_id, _ in rows:
                    c.execute("SELECT * FROM workflow.complete_task_and_check_stage(%s, 'race-limit', 1, NULL, worker => %s)",
                              (task_id, name))
                    with lock:
                        done.append(task_id)
        except Exception as e:  # noqa: BLE001 - every error is a failure here
            errors.append('%s: %r' % (name, e))

    mon = threading.Thread(target=monitor)
    mon.start()
    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    mon.join()
    ok = True
    if errors:
        print('limit: errors:', errors[:5]); ok = False
    if max_seen[0] > LIMIT:
        print('limit: %d tasks of the limited type claimed at once (limit %d)' % (max_seen[0], LIMIT)); ok = False
    if max_seen[0] < LIMIT:
        print('limit: the limit was never reached (%d): the test proves nothing' % max_seen[0]); ok = False
    if len(done) != 600 or len(set(done)) != 600:
        print('limit: %d completions, %d distinct, want 600' % (len(done), len(set(done)))); ok = False
    bad = setup.execute("SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants() WHERE NOT ok").fetchone()[0]
    if bad:
        print('limit: invariants:', bad); ok = False
    print('limit: 16 claimers, %d samples, at most %d of %d claimed at once, %d tasks completed: %s'
          % (samples[0], max_seen[0], LIMIT, len(done), 'ok' if ok else 'FAILED'))
    return ok


def run_retention(dsn):
    setup = connect(dsn)
    jobs = ['ret-%02d' % i for i in range(40)]
    for j in jobs:
        setup.execute("SELECT workflow.create_job('race', '{}', 1, %s)", (j,))
        setup.execute("SELECT workflow.add_tasks(%s, 1, 'race.ret', array_fill('{}'::jsonb, ARRAY[30]), slot_count => 8)", (j,))
    errors, purged, retries = [], [0], [0]
    stop = threading.Event()

    def worker(k):
        rnd = random.Random(100 + k)
        c = connect(dsn)
        name = 'ret-worker-%d' % k
        try:
            while True:
                rows = c.execute("SELECT job_id, id, stage FROM workflow.claim_tasks(%s, %s, ARRAY['race.ret'])",
                                 (name, rnd.randint(1, 8))).fetchall()
                if not rows:
                    left = c.execute("SELECT count(*) FROM workflow.jobs WHERE id LIKE 'ret-%' AND status <> 'completed'").fetchone()[0]
                    if left == 0:
                        return
                    time.sleep(0.005)
                    continue
                while True:
                    try:
                        res = c.execute("SELECT job_id, stage, stage_complete FROM workflow.complete_tasks(%s, %s, %s, worker => %s)",
                                        ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], name)).fetchall()
                        break
                    except psycopg.errors.DeadlockDetected:
                        retries[0] += 1
                for job, stage, complete in res:
                    if complete:
                        c.execute("SELECT workflow.advance_job_stage(%s, %s, %s, NULL)", (job, stage, stage + 1))
        except Exception as e:  # noqa: BLE001
            errors.append('%s: %r' % (name, e))

    def purger():
        c = connect(dsn)
        try:
            while not stop.is_set():
                purged[0] += c.execute("SELECT workflow.purge_jobs('0 seconds', max_jobs => 3)").fetchone()[0]
        except Exception as e:  # noqa: BLE001
            errors.append('purger: %r' % e)

    p = threading.Thread(target=purger)
    p.start()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    p.join()
    purged[0] += setup.execute("SELECT workflow.purge_jobs('0 seconds', max_jobs => 100)").fetchone()[0]
    ok = True
    if errors:
        print('retention: errors:', errors[:5]); ok = False
    left = setup.execute("SELECT count(*) FROM workflow.jobs WHERE id LIKE 'ret-%'").fetchone()[0]
    if purged[0] != 40 or left != 0:
        print('retention: purged %d, %d jobs left, want 40 and 0' % (purged[0], left)); ok = False
    orphans = setup.execute("""SELECT (SELECT count(*) FROM workflow.tasks t WHERE NOT EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = t.job_id))
                                    + (SELECT count(*) FROM workflow.stage_slots t WHERE NOT EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = t.job_id))
                                    + (SELECT count(*) FROM workflow.stages t WHERE NOT EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = t.job_id))""").fetchone()[0]
    if orphans:
        print('retention: %d rows without their job' % orphans); ok = False
    bad = setup.execute("SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants() WHERE NOT ok").fetchone()[0]
    if bad:
        print('retention: invariants:', bad); ok = False
    print('retention: 8 workers completed 40 jobs while purge_jobs ran; purged %d, 40P01 retried %d: %s'
          % (purged[0], retries[0], 'ok' if ok else 'FAILED'))
    return ok


def run_dedupe(dsn):
    setup = connect(dsn)
    setup.execute("DO $$ BEGIN CREATE ROLE dedupe_other LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    setup.execute("GRANT workflow_producer TO dedupe_other")
    ok = True
    for k in range(20):
        key = 'race-key-%d' % k
        barrier = threading.Barrier(16)
        answers = [None] * 16
        errors = []

        def submit(i):
            try:
                c = connect(dsn)
                barrier.wait()
                jid = c.execute("SELECT workflow.create_job('dedupe', '{}', 1, dedupe_key => %s)", (key,)).fetchone()[0]
                c.execute("SELECT workflow.add_tasks(%s, 1, 'race.dedupe', ARRAY['{}', '{}']::jsonb[])", (jid,))
                answers[i] = jid
                c.close()
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = set(answers)
        if errors or len(ids) != 1 or None in ids:
            print('dedupe: key %s: answers %s, errors %s' % (key, ids, errors[:3]))
            ok = False
            continue
        jid = ids.pop()
        jobs = setup.execute("SELECT count(*) FROM workflow.jobs WHERE dedupe_key = %s", (key,)).fetchone()[0]
        tasks = setup.execute("SELECT count(*) FROM workflow.tasks WHERE job_id = %s", (jid,)).fetchone()[0]
        if jobs != 1 or tasks != 2:
            print('dedupe: key %s: %d jobs, %d tasks (want 1 and 2)' % (key, jobs, tasks))
            ok = False
    other = psycopg.connect(dsn.replace('postgres@', 'dedupe_other@'), autocommit=True)
    mine = setup.execute("SELECT workflow.create_job('dedupe', '{}', 1, dedupe_key => 'race-key-0')").fetchone()[0]
    theirs = other.execute("SELECT workflow.create_job('dedupe', '{}', 1, dedupe_key => 'race-key-0')").fetchone()[0]
    if mine == theirs:
        print('dedupe: another role with the same key got the same job %s' % mine)
        ok = False
    inv = setup.execute("SELECT count(*) FROM workflow.check_invariants() WHERE NOT ok").fetchone()[0]
    ok = ok and inv == 0
    print('dedupe: 16 racing submitters x 20 keys: one job per key, 2 tasks each, another role apart: %s'
          % ('ok' if ok else 'FAILED'))
    return ok


def run_isolation(dsn):
    admin = connect(dsn)
    admin.execute("SELECT workflow.create_job('iso', '{}', 1, 'race-iso')")
    admin.execute("SELECT workflow.add_tasks('race-iso', 1, 'iso.limited', array_fill('{}'::jsonb, ARRAY[2]), seal => false)")
    admin.execute("SELECT workflow.add_tasks('race-iso', 1, 'iso.free', array_fill('{}'::jsonb, ARRAY[2]), first_index => 2)")
    admin.execute("SELECT workflow.set_task_type_limit('iso.limited', 5)")
    w = psycopg.connect(dsn, autocommit=False)
    w.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    w.commit()
    ok = True
    for types in (None, ['iso.limited'], ['iso.free', 'iso.limited']):
        try:
            w.execute("SELECT count(*) FROM workflow.claim_tasks('iso-w', 1, %s)", (types,)).fetchone()
            print('FAIL isolation: a REPEATABLE READ claim of %s with a limit in reach was not 25001' % types)
            ok = False
        except psycopg.Error as e:
            if e.sqlstate != '25001':
                print('FAIL isolation: REPEATABLE READ claim of %s: %s %s' % (types, e.sqlstate, e))
                ok = False
        w.rollback()
    n = w.execute("SELECT count(*) FROM workflow.claim_tasks('iso-w', 1, ARRAY['iso.free'])").fetchone()[0]
    w.commit()
    w.autocommit = True
    w.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
    m = w.execute("SELECT count(*) FROM workflow.claim_tasks('iso-w', 1, ARRAY['iso.limited'])").fetchone()[0]
    w.execute("COMMIT")
    claimed = admin.execute("SELECT count(*) FROM workflow.tasks WHERE job_id = 'race-iso' AND status = 'claimed'").fetchone()[0]
    if (n, m, claimed) != (1, 1, 2):
        print('FAIL isolation: claims of the free type / in READ COMMITTED took %s / %s, %s claimed (want 1 / 1, 2)' % (n, m, claimed))
        ok = False
    print('isolation: %s' % ('ok' if ok else 'FAIL'))
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dsn', required=True)
    ap.add_argument('--only', choices=['limit', 'retention', 'dedupe', 'isolation'])
    a = ap.parse_args()
    ok = True
    if a.only in (None, 'limit'):
        ok = run_limit(a.dsn) and ok
    if a.only in (None, 'retention'):
        ok = run_retention(a.dsn) and ok
    if a.only in (None, 'dedupe'):
        ok = run_dedupe(a.dsn) and ok
    if a.only in (None, 'isolation'):
        ok = run_isolation(a.dsn) and ok
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
