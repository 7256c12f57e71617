#!/usr/bin/python3
"""Completion storm through a Citus coordinator that survives a worker node's kill -9.

Makes --jobs jobs of one stage of --tasks tasks, then --threads connections claim
(claim_tasks, lease --lease seconds) and complete (complete_task_and_check_stage with
their worker name) until every task is completed. Meanwhile the caller kills a worker
node and restarts it: calls that reach it fail (connection errors, or 2PC recovery
pending); a thread then retries the same completion (a repeat is answered, never
counted twice) and, after --retries failures, leaves the task to lease expiry and
another worker. Writes one line per stage_complete = true answer to stdout as
`complete JOB TASK` and a summary `calls N errors E` line. Exit 0 when every task
completed before --timeout, 1 otherwise.
"""
import argparse
import sys
import threading
import time

import psycopg
from psycopg.types.json import Jsonb


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dsn', required=True)
    p.add_argument('--jobs', type=int, default=30)
    p.add_argument('--tasks', type=int, default=40)
    p.add_argument('--threads', type=int, default=8)
    p.add_argument('--lease', type=float, default=3)
    p.add_argument('--retries', type=int, default=20)
    p.add_argument('--timeout', type=float, default=300)
    p.add_argument('--ready-file', help='touched when the jobs exist and the storm starts')
    a = p.parse_args(argv)

    with psycopg.connect(a.dsn, autocommit=True) as conn:
        for j in range(a.jobs):
            job = f'kill-{j}'
            conn.execute("SELECT workflow.create_job('kill', '{}', 1, %s)", (job,))
            conn.execute("SELECT workflow.add_tasks(%s, 1, 'kill', %s::jsonb[])",
                         (job, [Jsonb({'i': i}) for i in range(a.tasks)]))
    total = a.jobs * a.tasks
    lock = threading.Lock()
    stats = {'calls': 0, 'errors': 0}
    answers = []
    done = threading.Event()   # every task completed
    stop = threading.Event()   # the storm ends (done, or out of time)
    deadline = time.monotonic() + a.timeout

    def connect():
        while time.monotonic() < deadline:
            try:
                return psycopg.connect(a.dsn, autocommit=True)
            except psycopg.Error:
                time.sleep(0.2)
        return None

    def call(conn, sql, args):
        with lock:
            stats['calls'] += 1
        return conn.execute(sql, args).fetchall()

    def thread(i):
        worker = f'storm-{i}'
        conn = connect()
        while conn is not None and not stop.is_set() and time.monotonic() < deadline:
            try:
                tasks = call(conn, 'SELECT job_id, id FROM workflow.claim_tasks(%s, 4, NULL, %s)',
                             (worker, f'{a.lease} seconds'))
            except psycopg.Error:
                with lock:
                    stats['errors'] += 1
                time.sleep(0.2)
                if conn.closed:
                    conn = connect()
                continue
            if not tasks:
                time.sleep(0.05)
            for job, task in tasks:
                for _ in range(a.retries):
                    try:
                        rows = call(conn, 'SELECT stage_complete FROM workflow.complete_task_and_check_stage('
                                          '%s, %s, 1, %s, worker => %s)', (task, job, Jsonb({'by': worker}), worker))
                        if rows[0][0]:
                            with lock:
                                answers.append((job, task))
                        break
                    except psycopg.errors.ObjectNotInPrerequisiteState:
                        break  # fencing: the lease ran out and another worker has it
                    except psycopg.Error:
                        with lock:
                            stats['errors'] += 1
                        time.sleep(0.2)
                        if conn.closed:
                            conn = connect()
                            if conn is None:
                                return

    def watcher():
        conn = connect()
        while conn is not None and time.monotonic() < deadline:
            try:
                n = conn.execute("SELECT count(*) FROM workflow.tasks WHERE job_id LIKE 'kill-%%' "
                                 "AND status = 'completed'").fetchone()[0]
                if n == total:
                    done.set()
                    break
            except psycopg.Error:
                if conn.closed:
                    conn = connect()
            time.sleep(0.5)
        stop.set()

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(a.threads)]
    w = threading.Thread(target=watcher)
    for t in threads + [w]:
        t.start()
    if a.ready_file:
        open(a.ready_file, 'w').close()
    w.join()
    for t in threads:
        t.join(30)
    for job, task in answers:
        print(f'complete {job} {task}')
    print(f'calls {stats["calls"]} errors {stats["errors"]}')
    return 0 if done.is_set() else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
