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
  refill    a completion waiting for busy counters finds a counter that
            add_tasks created after it started (no "fewer unfinished tasks"
            error when the counters it saw were emptied meanwhile);
  add_tasks a completion waiting for busy counters holds none of them, so
            add_tasks refilling one of them goes through (no deadlock);
  rr        under REPEATABLE READ a completion of a task changed after the
            transaction's snapshot gets 40001, as UPDATE does; a change to the
            stage's counters (internal bookkeeping) does not make it fail.
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


def scenario_refill():
    admin = conn()
    # An unfilled stage: slot 0 holds tasks 0 and 2 (slot_count 2).
    admin.execute("SELECT workflow.create_job('direct', '{}', 1, 'ds-refill')")
    admin.execute("SELECT workflow.add_tasks('ds-refill', 1, 'd', ARRAY['{}', '{}']::jsonb[], seal => false, "
                  "first_index => 0, slot_count => 2)")
    admin.execute("DELETE FROM workflow.tasks WHERE id = 'ds-refill:1:1'")  # (keep slot 1 out of it)
    admin.execute("UPDATE workflow.stage_slots SET remaining = 0 WHERE job_id = 'ds-refill' AND slot = 1")
    admin.execute("UPDATE workflow.stages SET pending_slots = 2, total_tasks = 1 WHERE job_id = 'ds-refill'")
    admin.execute("SELECT workflow.add_tasks('ds-refill', 1, 'd', ARRAY['{}']::jsonb[], seal => false, first_index => 2)")
    if counters(admin, "ds-refill") != [2, 0]:
        fail(f"refill: setup counters {counters(admin, 'ds-refill')}")
    z = conn(autocommit=False)
    complete(z, "ds-refill", 2)  # z holds counter 0 (1 left in its version)
    u = conn()
    t, out = in_thread(lambda: complete(u, "ds-refill", 0))  # counter 0 held: u waits
    await_lock_wait(admin, u.info.backend_pid, "refill")
    p = conn()
    p.execute("SELECT workflow.add_tasks('ds-refill', 1, 'd', ARRAY['{}']::jsonb[], seal => false, first_index => 1)")
    z.execute("SELECT * FROM workflow.complete_tasks(ARRAY['ds-refill'], ARRAY['ds-refill:1:1'], ARRAY[1])")
    z.commit()  # counter 0 is empty now; counter 1 (refilled after u began) holds u's unit
    t.join(10)
    if "error" in out:
        fail(f"refill: the waiting completion failed: {out['error']}")
    if out.get("value") is None:
        fail("refill: the waiting completion did not return")
    if counters(admin, "ds-refill") != [0, 0]:
        fail(f"refill: counters {counters(admin, 'ds-refill')}, expected [0, 0]")
    admin.execute("SELECT workflow.seal_stage('ds-refill', 1)")
    invariants_clean(admin, "ds-refill")
    print("refill: a waiting completion took its unit from a counter refilled after it began")


def scenario_add_tasks():
    admin = conn()
    admin.execute("SELECT workflow.create_job('direct', '{}', 1, 'ds-add')")
    admin.execute("SELECT workflow.add_tasks('ds-add', 1, 'd', array_fill('{}'::jsonb, ARRAY[4]), seal => false, "
                  "slot_count => 2)")  # counters [2, 2]
    x = conn(autocommit=False)
    b = conn(autocommit=False)
    complete(x, "ds-add", 1)  # x holds counter 1
    complete(b, "ds-add", 0)  # b holds counter 0
    s = conn()
    t, out = in_thread(lambda: complete(s, "ds-add", 3))  # both held: s waits
    await_lock_wait(admin, s.info.backend_pid, "add_tasks")
    complete(x, "ds-add", 2)  # x empties counter 1 in its version ...
    x.commit()                # ... and commits: s looks again, counter 0 still held by b
    time.sleep(0.3)
    try:
        b.execute("SELECT workflow.add_tasks('ds-add', 1, 'd', ARRAY['{}']::jsonb[], seal => false, first_index => 5)")
        b.commit()  # refills counter 1, which s must not hold
    except psycopg.Error as e:
        fail(f"add_tasks: add_tasks beside a waiting completion failed: {e.sqlstate} {e}")
    t.join(10)
    if "error" in out or out.get("value") is None:
        fail(f"add_tasks: the waiting completion: {out}")
    admin.execute("SELECT workflow.seal_stage('ds-add', 1)")
    if complete(admin, "ds-add", 5) != (True, 0):
        fail("add_tasks: the last completion did not complete the stage")
    invariants_clean(admin, "ds-add")
    print("add_tasks: add_tasks refilled a counter beside a waiting completion, no deadlock")


def scenario_rr():
    admin = conn()
    job(admin, "ds-rr", 4, 1)
    a = conn(autocommit=False)
    a.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    a.execute("SELECT 1 FROM workflow.tasks LIMIT 1")  # the snapshot
    complete(admin, "ds-rr", 0)  # changes task 0 and the only counter
    try:
        complete(a, "ds-rr", 0)
        fail("rr: completing a task changed since the snapshot did not fail")
    except psycopg.Error as e:
        if e.sqlstate != "40001":
            fail(f"rr: {e.sqlstate} {e}")
    a.rollback()
    a.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    a.execute("SELECT 1 FROM workflow.tasks LIMIT 1")
    complete(admin, "ds-rr", 2)  # the counter changes again after a's snapshot
    got = complete(a, "ds-rr", 1)
    a.commit()
    if got != (False, 1):
        fail(f"rr: a completion after the counter changed answered {got}, expected (False, 1)")
    invariants_clean(admin, "ds-rr")
    print("rr: under REPEATABLE READ a changed task gives 40001; a changed counter does not")


for scenario in (scenario_skip, scenario_wait, scenario_repeat, scenario_refill, scenario_add_tasks, scenario_rr):
    scenario()
print("engine_direct_sessions: ok")
