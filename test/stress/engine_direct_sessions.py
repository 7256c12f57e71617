"""The fan-in's direct row updates seen from concurrent sessions (psycopg 3).

Each scenario opens its own connections to DATABASE_URL's database and a job of
its own, and checks what a client sees:
  skip      a completion whose own counter another open transaction holds
            takes its unit from a free counter, without waiting;
  wait      when every counter with a unit left is held, it waits for one and
            goes on when that transaction commits;
  repeat    a second session completing the same task waits for the first,
            then is answered as a repeat (nothing written), or 55000 when it
            names another worker;
  rr        under REPEATABLE READ a completion of a task, or one taking from a
            counter, changed after the transaction's snapshot gets 40001, as
            UPDATE does.
Every scenario ends with check_invariants clean for its job. Exit status 1 on
the first failure, with what was expected.
"""
import os
import sys
import threading
import time

import psycopg

URL = os.environ["DATABASE_URL"]


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def conn(autocommit=True):
    return psycopg.connect(URL, autocommit=autocommit)


def job(c, name, tasks, slots):
    c.execute("SELECT workflow.create_job('direct', '{}', 1, %s)", (name,))
    c.execute("SELECT workflow.add_tasks(%s, 1, 'd', array_fill('{}'::jsonb, ARRAY[%s]), slot_count => %s)",
              (name, tasks, slots))


def complete(c, name, index, worker=None):
    return c.execute(
        "SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage(%s, %s, 1, NULL, worker => %s)",
        (f"{name}:1:{index}", name, worker)).fetchone()


def counters(c, name):
    return c.execute("SELECT array_agg(remaining ORDER BY slot) FROM workflow.stage_slots WHERE job_id = %s",
                     (name,)).fetchone()[0]


def invariants_clean(c, name):
    bad = c.execute("SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants(%s) "
                    "WHERE NOT ok", (name,)).fetchone()[0]
    if bad:
        fail(f"{name}: check_invariants: {bad}")


def waiting_for_lock(c, pid):
    return c.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                     (pid,)).fetchone()[0]


def in_thread(fn):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as e:  # reported by the caller
            out["error"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, out


def await_lock_wait(observer, pid, what):
    for _ in range(200):
        if waiting_for_lock(observer, pid):
            return
        time.sleep(0.02)
    fail(f"{what}: the session never waited for a lock")


def scenario_skip():
    admin = conn()
    job(admin, "ds-skip", 4, 2)  # slot 0: tasks 0, 2; slot 1: tasks 1, 3
    a = conn(autocommit=False)
    complete(a, "ds-skip", 0)  # holds counter 0 until it commits
    b = conn()
    b.execute("SET statement_timeout = '5s'")
    got = complete(b, "ds-skip", 2)  # its own counter is 0: held by a
    if got != (False, 3):
        fail(f"skip: answer {got}, expected (False, 3): the unit from counter 1; a's is not committed yet")
    if counters(admin, "ds-skip") != [2, 1]:
        fail(f"skip: counters {counters(admin, 'ds-skip')}, expected [2, 1] before a commits")
    a.commit()
    if counters(admin, "ds-skip") != [1, 1]:
        fail(f"skip: counters {counters(admin, 'ds-skip')}, expected [1, 1]")
    complete(b, "ds-skip", 1)
    if complete(b, "ds-skip", 3) != (True, 0):
        fail("skip: the last completion did not complete the stage")
    invariants_clean(admin, "ds-skip")
    print("skip: a completion whose counter is held took its unit from a free one without waiting")


def scenario_wait():
    admin = conn()
    job(admin, "ds-wait", 4, 2)  # slot 0: tasks 0, 2; slot 1: tasks 1, 3
    a = conn(autocommit=False)
    c = conn(autocommit=False)
    complete(a, "ds-wait", 0)  # holds counter 0 (1 left in a's version)
    complete(c, "ds-wait", 1)  # holds counter 1 (1 left in c's version)
    b = conn()
    pid = b.info.backend_pid
    t, out = in_thread(lambda: complete(b, "ds-wait", 2))
    await_lock_wait(admin, pid, "wait")
    if "value" in out or "error" in out:
        fail(f"wait: the completion returned while every counter was held: {out}")
    a.commit()
    t.join(10)
    if "error" in out:
        fail(f"wait: {out['error']}")
    if "value" not in out:
        fail("wait: the completion did not go on after the counter was released")
    if counters(admin, "ds-wait") != [0, 2]:
        fail(f"wait: counters {counters(admin, 'ds-wait')}, expected [0, 2]: a's and b's units from counter 0")
    c.commit()
    if complete(admin, "ds-wait", 3) != (True, 0):
        fail("wait: the last completion did not complete the stage")
    invariants_clean(admin, "ds-wait")
    print("wait: with every counter held the completion waited for one, then took from it")


def scenario_repeat():
    admin = conn()
    job(admin, "ds-rep", 2, 1)
    admin.execute("SELECT count(*) FROM workflow.claim_tasks('w1', 2, ARRAY['d'])")
    a = conn(autocommit=False)
    complete(a, "ds-rep", 0, worker="w1")
    b = conn()
    t, out = in_thread(lambda: complete(b, "ds-rep", 0, worker="w1"))
    await_lock_wait(admin, b.info.backend_pid, "repeat")
    a.commit()
    t.join(10)
    if out.get("value") != (False, 1):
        fail(f"repeat: the waiting repeat answered {out}, expected (False, 1)")
    b2 = conn()
    try:
        complete(b2, "ds-rep", 0, worker="w2")
        fail("repeat: another worker's completion of a completed task was accepted")
    except psycopg.Error as e:
        if e.sqlstate != "55000":
            fail(f"repeat: {e.sqlstate} {e}")
    if counters(admin, "ds-rep") != [1]:
        fail(f"repeat: counters {counters(admin, 'ds-rep')}, expected [1]: one unit taken")
    invariants_clean(admin, "ds-rep")
    print("repeat: a concurrent repeat waited and was answered as a repeat; another worker got 55000")


def scenario_rr():
    admin = conn()
    job(admin, "ds-rr", 4, 1)
    a = conn(autocommit=False)
    a.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    a.execute("SELECT 1 FROM workflow.tasks LIMIT 1")  # the snapshot
    complete(admin, "ds-rr", 0)  # changes task 0 and the only counter
    for index, what in ((0, "the task"), (1, "the counter")):
        try:
            complete(a, "ds-rr", index)
            fail(f"rr: completing after {what} changed did not fail")
        except psycopg.Error as e:
            if e.sqlstate != "40001":
                fail(f"rr: {what}: {e.sqlstate} {e}")
        a.rollback()
        a.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        a.execute("SELECT 1 FROM workflow.tasks LIMIT 1")
        complete(admin, "ds-rr", 2 if index == 0 else 3)  # change the counter again
    a.rollback()
    invariants_clean(admin, "ds-rr")
    print("rr: under REPEATABLE READ a changed task or counter gives 40001")


for scenario in (scenario_skip, scenario_wait, scenario_repeat, scenario_rr):
    scenario()
print("engine_direct_sessions: ok")
