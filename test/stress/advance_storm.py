#!/usr/bin/python3
"""Advance storm through one endpoint (a Citus coordinator): every transition has one winner.

--jobs jobs of --stages stages are made with every stage sealed empty (complete at once).
Then --threads connections each try every transition of every job, in a shuffled order:
advance_job_stage(job, s, s + 1) for s = 1 .. stages (the last one completes the job).
A call may get true (it moved the job), false (stale or repeated) or 55000 (the stage is
not complete: never here, every stage is sealed). A call made before the previous
transition was won is premature and returns false; the threads repeat their rounds until
every job is completed. Checks: exactly one true per (job, stage), every job completed at
its last stage, and check_invariants all ok. Exit 0 pass, 1 fail.
"""
import argparse
import random
import sys
import threading
from collections import Counter

import psycopg
from psycopg.types.json import Jsonb


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dsn', required=True)
    p.add_argument('--jobs', type=int, default=20)
    p.add_argument('--stages', type=int, default=5)
    p.add_argument('--threads', type=int, default=16)
    p.add_argument('--seed', type=int, default=1)
    a = p.parse_args(argv)

    with psycopg.connect(a.dsn, autocommit=True) as conn:
        for j in range(a.jobs):
            job = f'storm-{j}'
            conn.execute("SELECT workflow.create_job('storm', '{}', %s, %s)", (a.stages, job))
            for s in range(1, a.stages + 1):
                conn.execute('SELECT workflow.seal_stage(%s, %s)', (job, s))

    wins, lock, problems = Counter(), threading.Lock(), []
    transitions = [(f'storm-{j}', s) for j in range(a.jobs) for s in range(1, a.stages + 1)]

    def thread(i):
        rng = random.Random(a.seed * 1000 + i)
        try:
            with psycopg.connect(a.dsn, autocommit=True) as conn:
                for _ in range(a.stages + 1):  # enough rounds for every chain of transitions
                    order = transitions[:]
                    rng.shuffle(order)
                    for job, s in order:
                        won = conn.execute('SELECT workflow.advance_job_stage(%s, %s, %s, %s)',
                                           (job, s, s + 1, Jsonb({'by': i}))).fetchone()[0]
                        if won:
                            with lock:
                                wins[(job, s)] += 1
        except psycopg.Error as e:
            with lock:
                problems.append(f'thread {i}: {e.sqlstate} {e}')

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    failures = list(problems)
    for key in transitions:
        if wins[key] != 1:
            failures.append(f'{key[0]} stage {key[1]}: {wins[key]} winners')
    with psycopg.connect(a.dsn, autocommit=True) as conn:
        for j in range(a.jobs):
            status, stage = conn.execute('SELECT status, stage FROM workflow.jobs WHERE id = %s',
                                         (f'storm-{j}',)).fetchone()
            if (status, stage) != ('completed', a.stages):
                failures.append(f'storm-{j}: {status} at stage {stage}')
        bad = conn.execute('SELECT check_name, detail FROM workflow.check_invariants() WHERE NOT ok').fetchall()
        failures += [f'check_invariants: {n}: {d}' for n, d in bad]
    print(f'advance storm: {a.jobs} jobs x {a.stages} transitions, {a.threads} threads, '
          f'{sum(wins.values())} winning calls')
    for f in failures[:20]:
        print(f'FAIL: {f}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
