"""Single and batch survey upserts validate and normalise alike.

README, Survey steps: upsert_survey_steps is the batch form of
upsert_survey_step (value defaults to {}, completed_at to now(); value not
NULL, at most 64 kB; completed_at finite; 22023 invalid, 22004 NULL; nothing
written on error). For many generated inputs (odd step names and session
ids, unicode, whitespace, JSON values of every type including null, values
around 64 kB, small and compressed, timestamps with and without offsets,
infinite or out of range, duplicates within a batch, an existing row to
update), each input is written once through each path, each in its own
transaction that is rolled back, and the outcomes must be the same:
accepted by both with the same stored rows (session, step, week, value,
completed_at), or refused by both with the same SQLSTATE and nothing
written. A list of elements is compared as one batch against the same
upserts made one by one in one transaction (the first refusal aborts it).
Prints the differences; exit 1 on any.
"""
import argparse
import random
import sys

import psycopg
from psycopg.types.json import Jsonb

ap = argparse.ArgumentParser()
ap.add_argument("--dsn", required=True)
ap.add_argument("--seed", type=int, default=7)
args = ap.parse_args()
rnd = random.Random(args.seed)
MISSING = object()
failures = []


def fail(what):
    failures.append(what)
    if len(failures) <= 40:
        print("DIFF:", what)


conn = psycopg.connect(args.dsn)
conn.execute("SET TimeZone = 'America/St_Johns'")  # strings without an offset are read here
conn.commit()

SESSIONS = ["C0PATHS001", " c0paths001 ", "G0PATHS002", "d0paths003\t", "\nC0PATHS004\n", "U0PATHS005",
            "C0PA", "C" + "1" * 20, "C" + "1" * 21, "C0PÄTHS006", "C0PATHS-07", "", "   ", "Ｃ0PATHS008", None]
STEPS = ["connects", "Connects", " WORKLOAD-today ", "workloadToday", "Workload Today", "workload.today",
         "workload__today", "workload_next_week", "dayOffThisWeek", "Day Off Next Week", "day_off_thisweek",
         "DAY-OFF-NEXTWEEK", "\tconnects\n", "connects\u00a0", "connécts", "workload today!", "Workload Tomorrow",
         "", "   ", "_connects_", "connects.", "HTTPServer2Go", "w" * 200, "w" * 201, "日本", "connects\u200b",
         "Ｃonnects", "dayoff_thisweek", "CONNECTS", "connects_this_week", None]
VALUES = [MISSING, None, {}, {"hours": 6}, [], [1, "two", None, True], "text", "", "ünïcödé ☃ 日本", 0, -1,
          1.5, 10 ** 40, 1e-30, "12345678901234567890.123456789", True, False, "null", {"a": None},
          {"nested": {"deep": [{"x": [1, 2, {"y": None}]}]}}]
TIMES = [MISSING, None, "2026-03-29T22:30:00Z", "2026-03-29 22:30", "2026-12-31 23:59:59.999999+14",
         "2027-01-01T00:00:00-12:00", "2020-12-31 23:00-03:30", "infinity", "-infinity", "epoch",
         "1900-01-01 00:00 Europe/Berlin", "294276-12-31 23:59:59+00", "4714-11-24 00:00:00+00 BC",
         "0001-01-01 00:00:00+00", "not a time", "", "2026-02-30 10:00Z", "2026-03-08 02:30 America/New_York"]


def big_string(total):
    """A JSON string value whose jsonb takes about `total` bytes."""
    return "x" * max(0, total - 12)


def make_element():
    e = {}
    for key, pool in (("session_id", SESSIONS), ("step_name", STEPS), ("value", VALUES), ("completed_at", TIMES)):
        r = rnd.random()
        if key in ("session_id", "step_name") and r < 0.75:
            # Mostly valid, so later fields are reached.
            e[key] = rnd.choice(SESSIONS[:5] if key == "session_id" else STEPS[:13])
        else:
            v = rnd.choice(pool)
            if v is not MISSING:
                e[key] = v
    if rnd.random() < 0.05:
        e["value"] = big_string(rnd.randint(65520, 65550))
    return e


def single_sql(e):
    """The single upsert for one element, with named arguments (defaults when missing)."""
    parts, params = [], []
    for key, cast in (("session_id", "text"), ("step_name", "text"), ("value", "jsonb"), ("completed_at", "timestamptz")):
        if key not in e:
            if key in ("session_id", "step_name"):
                parts.append(f"{key} => NULL::{cast}")
            continue
        v = e[key]
        if key == "value":
            parts.append("value => %s::jsonb")
            params.append(Jsonb(v))  # JSON null is the jsonb 'null', not SQL NULL
        else:
            parts.append(f"{key} => %s::{cast}")
            params.append(v)
    return "SELECT workflow.upsert_survey_step(" + ", ".join(parts) + ")", params


def rows(cur):
    # completed_at defaults to now(): shown as "now" so two transactions compare.
    return cur.execute("SELECT session_id, step_name, week_start, value, "
                       "CASE WHEN completed_at = now() THEN 'now' ELSE completed_at::text END "
                       "FROM workflow.survey_steps "
                       "WHERE session_id LIKE '_0PATHS%%' OR session_id LIKE '_111%%' ORDER BY 1, 2, 3").fetchall()


def run(statements, prepare=None):
    """Runs the statements in one transaction after `prepare`, then rolls it
    back: (SQLSTATE or None, the rows then; after a refusal, as prepared)."""
    with conn.cursor() as cur:
        if prepare:
            cur.execute(prepare)
        cur.execute("SAVEPOINT before")
        try:
            for sql, params in statements:
                cur.execute(sql, params)
            out = (None, rows(cur))
        except psycopg.Error as err:
            cur.execute("ROLLBACK TO SAVEPOINT before")
            out = (err.sqlstate, rows(cur))
        conn.rollback()
    return out


def castable(e):
    """Whether the element's completed_at reaches the single form (a timestamptz cast in SQL)."""
    v = e.get("completed_at", MISSING)
    if v is MISSING or v is None or not isinstance(v, str):
        return True
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT %s::timestamptz", (v,))
            return True
        except psycopg.Error:
            return False
        finally:
            conn.rollback()


PREPARE = ("SELECT workflow.upsert_survey_step('C0PATHS001', 'connects', '\"old\"', '2026-03-29T22:30:00Z'),"
           " workflow.upsert_survey_step('G0PATHS002', 'workload_today', '\"old\"', '2026-12-31 12:00Z')")
compared = 0
for n in range(1500):
    batch = [make_element() for _ in range(1 if n < 900 else rnd.randint(2, 6))]
    if n >= 900 and rnd.random() < 0.5:
        batch.append(dict(batch[0], value={"dup": n}))  # same session, week and step: the last wins
    prepare = PREPARE if n % 2 else None
    if not all(castable(e) for e in batch):
        state, after = run([("SELECT workflow.upsert_survey_steps(%s)", [Jsonb(batch)])], prepare)
        if state is None or after != run([], prepare)[1]:
            fail(f"batch {batch}: a completed_at that is not a timestamp gave {state}, wrote {after != run([], prepare)[1]}")
        continue
    compared += 1
    b = run([("SELECT workflow.upsert_survey_steps(%s)", [Jsonb(batch)])], prepare)
    s = run([single_sql(e) for e in batch], prepare)
    if b[0] != s[0] or b[1] != s[1]:
        show = [{k: (v if not isinstance(v, str) or len(v) < 80 else f"<{len(v)} chars>") for k, v in e.items()}
                for e in batch]
        fail(f"{show} (existing rows: {bool(prepare)}): batch {b[0]} {b[1]!s:.300} | single {s[0]} {s[1]!s:.300}")
    if b[0] is not None and b[1] != run([], prepare)[1]:
        fail(f"{batch}: refused with {b[0]} but wrote")

# A value stored compressed (a column value, not a literal): the 64 kB limit is
# on the value, whichever way it arrives.
with conn.cursor() as cur:
    cur.execute("CREATE TEMP TABLE big_values (id int PRIMARY KEY, v jsonb)")
    cur.execute("INSERT INTO big_values VALUES (1, to_jsonb(repeat('ab', 50000))), "
                "(2, (SELECT jsonb_agg(i % 7) FROM generate_series(1, 40000) i)), (3, to_jsonb(repeat('ab', 100)))")
    conn.commit()
for vid in (1, 2, 3):
    compared += 1
    b = run([("SELECT workflow.upsert_survey_steps(jsonb_build_array(jsonb_build_object("
              "'session_id', 'C0PATHS001', 'step_name', 'connects', 'value', v))) FROM big_values WHERE id = %s", [vid])])
    s = run([("SELECT workflow.upsert_survey_step('C0PATHS001', 'connects', v) FROM big_values WHERE id = %s", [vid])])
    if b[0] != s[0] or b[1] != s[1]:
        fail(f"stored value {vid}: batch {b[0]} ({len(b[1])} rows) | single {s[0]} ({len(s[1])} rows)")

if failures:
    print(f"FAIL: {len(failures)} differences between the single and the batch upsert ({compared} inputs compared)")
    sys.exit(1)
print(f"survey upsert paths: {compared} inputs, single and batch agree")
