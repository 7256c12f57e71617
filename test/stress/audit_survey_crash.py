"""Audit and survey writes through SIGKILLs of the server (psycopg clients).

Writers, each transaction tagged with a unique token:
  - bulk UPDATEs (ranges of up to 1,100 rows, so one statement spans several
    512-id blocks) and single-row UPDATE / INSERT / DELETE on two audited
    tables, one per audit mode (statement-level and row-level);
  - survey batches (upsert_survey_steps, 20-300 distinct keys each);
the server is killed (cluster_kill9: SIGKILL, then crash recovery) at random
moments, several rounds. Each client keeps what it was told: committed,
refused (rolled back), or no answer (in flight at the kill). Then:
  - every committed token is there, with exactly its rows: an UPDATE's log
    rows = the row count it was told, a survey batch's = its elements;
  - a refused token is nowhere; an unanswered one is all there or absent;
  - each table row's history chains (every UPDATE's old counter is the
    previous entry's new counter, in id order) and its last entry is the row
    as it is: no log row without its change, no change without its log row;
    sum of counters = UPDATE log rows;
  - the survey tables: every current step row is the last logged value of its
    key, and each batch token is in the log for all or none of its elements;
  - ids after a restart are above every id before it (ids follow commit
    order across the crash).
Prints what is wrong; exit 1 on any.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time

import psycopg
from psycopg.types.json import Jsonb

ap = argparse.ArgumentParser()
ap.add_argument("--dsn", required=True)
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--seed", type=int, default=int(time.time()))
args = ap.parse_args()
rnd = random.Random(args.seed)
print(f"seed {args.seed}")
ROWS = 2000
SESSIONS = [f"C0CRASH{n:04d}" for n in range(120)]
STEPS = ["workload_today", "workload_nextweek", "connects_thisweek", "day_off_nextweek", "day_off_thisweek"]
WEEK_AT = "2026-06-10T12:00:00Z"
problems = []
outcomes = {}  # token -> ("ok", rows) | ("refused", None) | ("unknown", expected rows or None)
lock = threading.Lock()


def problem(what):
    problems.append(what)
    if len(problems) <= 40:
        print("PROBLEM:", what)


def setup():
    with psycopg.connect(args.dsn, autocommit=True) as c:
        for t, stmt in (("audit_stmt", "true"), ("audit_row", "false")):
            c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, counter int NOT NULL DEFAULT 0, token text)")
            c.execute(f"SELECT workflow.enable_audit('{t}', '{{}}', {stmt})")
            c.execute(f"INSERT INTO {t} (id) SELECT g FROM generate_series(1, {ROWS}) g")  # logged: every row has a history
        c.execute("SELECT workflow.enable_audit('workflow.survey_steps')")


def record(token, state, n):
    with lock:
        outcomes[token] = (state, n)


def table_writer(wid, stop):
    n = 0
    conn = None
    while not stop.is_set():
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(args.dsn, connect_timeout=3)
            table = rnd.choice(["audit_stmt", "audit_row"])
            n += 1
            token = f"t{wid}-{n}-{os.getpid()}-{time.monotonic_ns()}"
            kind = rnd.random()
            expected = None
            try:
                with conn.cursor() as cur:
                    if kind < 0.35:
                        a = rnd.randint(1, ROWS)
                        cur.execute(f"UPDATE {table} SET counter = counter + 1, token = %s "
                                    f"WHERE id BETWEEN %s AND %s", (token, a, a + rnd.randint(0, 1100)))
                    elif kind < 0.85:
                        cur.execute(f"UPDATE {table} SET counter = counter + 1, token = %s WHERE id = %s",
                                    (token, rnd.randint(1, ROWS)))
                    elif kind < 0.95:
                        cur.execute(f"INSERT INTO {table} (id, token) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                                    (rnd.randint(ROWS + 1, ROWS + 100000), token))
                    else:
                        cur.execute(f"DELETE FROM {table} WHERE id = (SELECT min(id) FROM {table} WHERE id > %s)", (ROWS,))
                    expected = cur.rowcount if kind < 0.95 else None
                    record(token, "unknown", expected)
                conn.commit()
                record(token, "ok", expected)
            except psycopg.OperationalError:
                if token not in outcomes:
                    record(token, "refused", None)  # never reached the server's statement end
                conn = None
                time.sleep(0.05)
            except psycopg.Error:
                conn.rollback()
                record(token, "refused", None)
        except psycopg.OperationalError:
            conn = None
            time.sleep(0.1)


def survey_writer(wid, stop):
    n = 0
    conn = None
    while not stop.is_set():
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(args.dsn, connect_timeout=3, autocommit=True)
            n += 1
            token = f"s{wid}-{n}-{os.getpid()}-{time.monotonic_ns()}"
            keys = rnd.sample([(s, st) for s in SESSIONS for st in STEPS], rnd.randint(20, 300))
            batch = [{"session_id": s, "step_name": st, "value": {"token": token, "i": i}, "completed_at": WEEK_AT}
                     for i, (s, st) in enumerate(keys)]
            record(token, "unknown", len(batch))
            try:
                got = conn.execute("SELECT workflow.upsert_survey_steps(%s)", (Jsonb(batch),)).fetchone()[0]
                record(token, "ok", len(batch))
                if got != len(batch):
                    problem(f"batch {token}: returned {got}, {len(batch)} elements")
            except psycopg.OperationalError:
                conn = None
                time.sleep(0.05)
            except psycopg.Error as err:
                record(token, "refused", None)
                problem(f"batch {token} refused: {err.sqlstate} {err}")
        except psycopg.OperationalError:
            conn = None
            time.sleep(0.1)


def kill9():
    subprocess.run(["bash", "-c", "source scripts/lib/cluster.sh && cluster_kill9"], check=True)


def max_log_id(c):
    return c.execute("SELECT coalesce(max(id), 0) FROM workflow.audit_log").fetchone()[0]


def check(label, c):
    before = len(problems)
    started = time.monotonic()
    for table in ("audit_stmt", "audit_row"):
        for (msg,) in c.execute(f"""
          WITH h AS (
            SELECT id, row_key, operation, (old_values ->> 'counter')::int AS old_c, (new_values ->> 'counter')::int AS new_c,
                   lag((new_values ->> 'counter')::int) OVER (PARTITION BY row_key ORDER BY id) AS prev_c,
                   lag(operation) OVER (PARTITION BY row_key ORDER BY id) AS prev_op
              FROM workflow.audit_log WHERE table_name = '{table}')
          SELECT 'broken chain at log id ' || id || ' key ' || row_key || ': ' || operation || ' ' || old_c || '->' || new_c
                 || ' after ' || coalesce(prev_op, 'nothing') || ' ' || coalesce(prev_c::text, '-')
            FROM h
           WHERE operation = 'UPDATE' AND (old_c IS DISTINCT FROM coalesce(prev_c, 0) OR new_c <> old_c + 1)
          UNION ALL
          SELECT 'row ' || r.id || ' is not its last log entry' FROM {table} r
            LEFT JOIN (SELECT DISTINCT ON (row_key) row_key, operation, new_values FROM workflow.audit_log
                        WHERE table_name = '{table}' ORDER BY row_key, id DESC) l ON l.row_key = jsonb_build_object('id', r.id)
           WHERE l.operation IS DISTINCT FROM 'UPDATE' AND l.operation IS DISTINCT FROM 'INSERT'
              OR (l.new_values ->> 'counter')::int IS DISTINCT FROM r.counter OR l.new_values ->> 'token' IS DISTINCT FROM r.token
          UNION ALL
          SELECT 'logged updates ' || n || ' <> sum of counters ' || sum(counter)  -- of the rows never deleted
            FROM {table}, (SELECT count(*) AS n FROM h WHERE operation = 'UPDATE' AND (row_key ->> 'id')::int <= {ROWS}) u
           WHERE id <= {ROWS} GROUP BY n HAVING sum(counter) <> n
          LIMIT 20"""):
            problem(f"{label}: {table}: {msg}")
    # Tokens: the log's rows per token, against what each client was told.
    logged = dict(c.execute("""
      SELECT coalesce(new_values ->> 'token', new_values -> 'value' ->> 'token'), count(*)
        FROM workflow.audit_log WHERE operation IN ('UPDATE', 'INSERT')
       GROUP BY 1"""))
    with lock:
        items = list(outcomes.items())
    for token, (state, n) in items:
        if n is None and state != "refused":
            continue  # a DELETE: its row's token is another transaction's
        got = logged.get(token, 0)
        if state == "ok" and got != n:
            problem(f"{label}: committed {token}: {got} log rows, the client was told {n}")
        elif state == "refused" and got:
            problem(f"{label}: refused {token} has {got} log rows")
        elif state == "unknown" and got not in (0, n):
            problem(f"{label}: in-flight {token}: {got} log rows of {n}: not all or nothing")
    # Survey: each current row is its key's last logged value.
    for (msg,) in c.execute("""
      SELECT 'survey row ' || t.id || ' differs from its history' FROM workflow.survey_steps t
       WHERE t.session_id LIKE 'C0CRASH%'
         AND workflow.row_as_of('workflow.survey_steps', jsonb_build_object('id', t.id), clock_timestamp())
             IS DISTINCT FROM to_jsonb(t)
       LIMIT 20"""):
        problem(f"{label}: {msg}")
    print(f"{label} ({time.monotonic() - started:.1f} s): {len(items)} tokens, {sum(1 for _, (s, _) in items if s == 'ok')} committed, "
          f"{sum(logged.values())} logged rows; {len(problems) - before} problems", flush=True)


setup()
for r in range(1, args.rounds + 1):
    with psycopg.connect(args.dsn, autocommit=True) as c:
        id_before = max_log_id(c)
    stop = threading.Event()
    threads = [threading.Thread(target=table_writer, args=(w, stop)) for w in range(4)]
    threads += [threading.Thread(target=survey_writer, args=(w, stop)) for w in range(2)]
    for t in threads:
        t.start()
    time.sleep(rnd.uniform(1.0, 3.0))
    kill9()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    with psycopg.connect(args.dsn, autocommit=True) as c:
        check(f"round {r} after kill -9", c)
        # New writes after recovery get ids above every id before the crash.
        with c.transaction():
            c.execute("UPDATE audit_stmt SET counter = counter + 1, token = 'after' || %s WHERE id = 1", (r,))
            c.execute("UPDATE audit_row SET counter = counter + 1, token = 'after' || %s WHERE id = 1", (r,))
        low = c.execute("SELECT min(id) FROM workflow.audit_log WHERE new_values ->> 'token' = 'after' || %s",
                        (r,)).fetchone()[0]
        before_crash = c.execute("SELECT max(id) FROM workflow.audit_log WHERE NOT new_values ->> 'token' LIKE 'after%%' "
                                 "OR new_values IS NULL").fetchone()[0]
        if low is None or before_crash is None or low <= before_crash:
            problem(f"round {r}: first id after recovery {low} is not above the last id before it {before_crash}")
        if max_log_id(c) <= id_before:
            problem(f"round {r}: nothing was logged in the round")

if problems:
    print(f"FAIL: {len(problems)} problems (seed {args.seed})")
    sys.exit(1)
print("audit and survey writes survive kill -9: all checks pass")
