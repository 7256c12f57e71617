"""An upsert for an idle session racing cleanup_survey_sessions.

README: "A batch is all or nothing", "nothing is written on error", and
cleanup_survey_sessions deletes sessions "with no step completed since".
The upserts first make sure the session exists (INSERT ... ON CONFLICT DO
NOTHING), then insert the step joined to the session row. A session idle
for 100 days is upserted while the clean-up runs; the upsert is held (by an
advisory lock the test owns, taken by a statement trigger on
workflow.survey_sessions that only the racing session waits on, and after
the upsert in its transaction) so that the clean-up runs in between. Each
of the single and the batch upsert must then either fail with an error, or
report its row (the single form a row with an id, the batch its count) and
that row must be there after both have committed: never a silent "success"
that wrote nothing, and never a step deleted by the clean-up it outran.
Then a transaction upserting several sessions out of id order while the
clean-up runs: neither may fail (40P01 before 1.9). Exit 1 on any failure.
"""
import argparse
import sys
import threading
import time

import psycopg

ap = argparse.ArgumentParser()
ap.add_argument("--dsn", required=True)
args = ap.parse_args()
LOCK = 424242
failures = []


def connect(name=None):
    return psycopg.connect(args.dsn, autocommit=True, application_name=name or "survey_race")


def wait_for(c, what, cond_sql):
    for _ in range(600):  # polls state, not time: a blocked backend shows in pg_stat_activity / pg_locks
        if c.execute(cond_sql).fetchone()[0]:
            return True
        time.sleep(0.05)
    failures.append(f"{what}: never happened")
    return False


def run_cleanup(out):
    """cleanup_survey_sessions('90 days') on its own connection: out["deleted"] or out["cleanup_error"]."""
    with connect("survey_race_cleanup") as c:
        try:
            out["deleted"] = c.execute("SELECT workflow.cleanup_survey_sessions('90 days')").fetchone()[0]
        except psycopg.Error as err:
            out["cleanup_error"] = err.sqlstate


admin = connect("survey_race_admin")
admin.execute("""
  CREATE OR REPLACE FUNCTION public.survey_race_hold() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF current_setting('application_name') = 'survey_race_upsert' THEN
      PERFORM pg_advisory_lock(424242); PERFORM pg_advisory_unlock(424242);
    END IF;
    RETURN NULL;
  END $$""")
admin.execute("DROP TRIGGER IF EXISTS survey_race_hold ON workflow.survey_sessions")
admin.execute("CREATE TRIGGER survey_race_hold AFTER INSERT ON workflow.survey_sessions "
              "FOR EACH STATEMENT EXECUTE FUNCTION public.survey_race_hold()")

CASES = {
    "single": ("SELECT (workflow.upsert_survey_step(%s, 'connects', '1')).id", lambda v: v is not None),
    "batch": ("SELECT workflow.upsert_survey_steps(jsonb_build_array(jsonb_build_object("
              "'session_id', %s::text, 'step_name', 'connects', 'value', 1)))", lambda v: v == 1),
}
try:
    for n, (label, (sql, reported)) in enumerate(CASES.items()):
        sid = f"C0RACE{n:04d}"
        admin.execute("DELETE FROM workflow.survey_sessions WHERE session_id = %s", (sid,))
        admin.execute("INSERT INTO workflow.survey_sessions (session_id, created_at) VALUES (%s, now() - interval '100 days')",
                      (sid,))
        admin.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        out = {}

        def upsert():
            with connect("survey_race_upsert") as c:
                try:
                    with c.transaction():
                        out["value"] = c.execute(sql, (sid,)).fetchone()[0]
                        c.execute("SELECT pg_advisory_lock(%s), pg_advisory_unlock(%s)", (LOCK, LOCK))
                except psycopg.Error as err:
                    out["error"] = err.sqlstate

        t1 = threading.Thread(target=upsert)
        t1.start()
        # The upsert waits on the advisory lock: inside it (between its two
        # statements) or right after it, in its transaction.
        wait_for(admin, f"{label}: the upsert holds", "SELECT count(*) > 0 FROM pg_stat_activity "
                 "WHERE application_name = 'survey_race_upsert' AND wait_event_type = 'Lock' AND wait_event = 'advisory'")
        t2 = threading.Thread(target=run_cleanup, args=(out,))
        t2.start()
        # The clean-up has finished, or waits for the upsert's transaction.
        wait_for(admin, f"{label}: the clean-up ran", "SELECT count(*) = 0 FROM pg_stat_activity "
                 "WHERE application_name = 'survey_race_cleanup' AND state = 'active' AND wait_event_type IS DISTINCT FROM 'Lock'")
        admin.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
        t1.join()
        t2.join()
        rows = admin.execute("SELECT count(*) FROM workflow.survey_steps WHERE session_id = %s", (sid,)).fetchone()[0]
        if "error" in out:
            if rows:
                failures.append(f"{label}: the upsert failed ({out['error']}) but {rows} rows are there")
        elif not reported(out.get("value")):
            failures.append(f"{label}: the upsert reported {out.get('value')!r} without an error and wrote {rows} rows "
                            f"(the clean-up deleted {out.get('deleted')})")
        elif rows != 1:
            failures.append(f"{label}: the upsert reported {out.get('value')!r}, yet {rows} rows are there after the clean-up "
                            f"(deleted {out.get('deleted')})")
        print(f"{label}: upsert {out.get('value', out.get('error'))!r}, clean-up deleted {out.get('deleted')}, rows {rows}")
    # A transaction that upserts several sessions, not in id order, while the
    # clean-up runs: the clean-up must not wait for it (it locked the
    # sessions in id order and waited on the one the transaction held, while
    # the transaction's next upsert waited on one it had locked: 40P01, 1.8).
    # Both finish without an error, the transaction's steps are there, and
    # every other idle session is deleted.
    admin.execute("DROP TRIGGER IF EXISTS survey_race_hold ON workflow.survey_sessions")
    ids = [f"C0RACEM{k:03d}" for k in range(5)]
    admin.execute("DELETE FROM workflow.survey_sessions WHERE session_id LIKE 'C0RACEM%'")
    admin.execute("INSERT INTO workflow.survey_sessions (session_id, created_at) "
                  "SELECT unnest(%s::text[]), now() - interval '100 days'", (ids,))
    out = {}
    writer = connect("survey_race_multi")
    writer.autocommit = False
    writer.execute("SELECT workflow.upsert_survey_step(%s, 'connects', '1')", (ids[3],))

    t = threading.Thread(target=run_cleanup, args=(out,))
    t.start()
    for _ in range(600):  # until the clean-up has returned, or waits for a lock
        t.join(0.05)
        if not t.is_alive() or admin.execute(
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'survey_race_cleanup' "
                "AND wait_event_type = 'Lock'").fetchone()[0]:
            break
    try:
        writer.execute("SELECT workflow.upsert_survey_step(%s, 'connects', '1')", (ids[1],))
        writer.commit()
    except psycopg.Error as err:
        out["upsert_error"] = err.sqlstate
        writer.rollback()
    t.join()
    writer.close()
    kept = admin.execute("SELECT array_agg(session_id ORDER BY session_id) FROM workflow.survey_sessions "
                         "WHERE session_id LIKE 'C0RACEM%'").fetchone()[0] or []
    steps = admin.execute("SELECT count(*) FROM workflow.survey_steps WHERE session_id LIKE 'C0RACEM%'").fetchone()[0]
    print(f"multi: clean-up deleted {out.get('deleted', out.get('cleanup_error'))!r}, "
          f"upserts {out.get('upsert_error', 'committed')}, sessions kept {kept}, steps {steps}")
    for side in ("cleanup_error", "upsert_error"):
        if side in out:
            failures.append(f"multi: {side.split('_')[0]} failed with {out[side]}")
    if "upsert_error" not in out and (kept != [ids[1], ids[3]] or steps != 2):
        failures.append(f"multi: expected sessions {[ids[1], ids[3]]} with 2 steps, found {kept} with {steps}")
    if "cleanup_error" not in out and out.get("deleted") != 4:
        failures.append(f"multi: the clean-up deleted {out.get('deleted')}, expected 4 (every idle session but the one in use)")
    # A clean-up called in a REPEATABLE READ or SERIALIZABLE transaction whose
    # snapshot predates an upsert's commit (README: 40001 then, to be
    # retried): the upsert's step is never deleted, and a retry keeps it.
    for iso in ("REPEATABLE READ", "SERIALIZABLE"):
        sid = "C0RACEISO0"
        admin.execute("DELETE FROM workflow.survey_sessions WHERE session_id = %s", (sid,))
        admin.execute("INSERT INTO workflow.survey_sessions (session_id, created_at) "
                      "VALUES (%s, now() - interval '100 days')", (sid,))
        with psycopg.connect(args.dsn) as c:
            c.execute(f"BEGIN ISOLATION LEVEL {iso}")
            c.execute("SELECT 1")  # the snapshot
            admin.execute("SELECT workflow.upsert_survey_step(%s, 'connects', '1')", (sid,))
            try:
                res = c.execute("SELECT workflow.cleanup_survey_sessions('90 days')").fetchone()[0]
                c.commit()
            except psycopg.Error as err:
                res = err.sqlstate
                c.rollback()
        rows = admin.execute("SELECT count(*) FROM workflow.survey_steps WHERE session_id = %s", (sid,)).fetchone()[0]
        print(f"{iso} clean-up with an older snapshot: {res!r}, rows {rows}")
        if rows != 1 or res not in ("40001", 0):
            failures.append(f"{iso} clean-up with an older snapshot: {res!r}, the upsert's rows {rows} (want 1)")
finally:
    admin.execute("DROP TRIGGER IF EXISTS survey_race_hold ON workflow.survey_sessions")
    admin.execute("DROP FUNCTION IF EXISTS public.survey_race_hold()")
    admin.execute("DELETE FROM workflow.survey_sessions WHERE session_id LIKE 'C0RACE%'")

if failures:
    print("FAIL:", *failures, sep="\n  ")
    sys.exit(1)
print("survey upserts and clean-up: no silent loss")
