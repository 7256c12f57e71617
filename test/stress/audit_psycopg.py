"""The audit log from a second language through PgBouncer (transaction mode).

As the README's roles, with only the README's grants: orders_svc owns and
audits a 41-column table (numeric, text with multi-byte characters, boolean,
timestamptz, bigint, jsonb scalars and containers, float; NULLs) and writes
it with executemany, COPY, UPDATE and DELETE; support_desk reads the history
with row_history. Checks, against what the client itself wrote:
  - each INSERT's new_values is the row as written, key for key;
  - each UPDATE's old_values/new_values hold exactly the columns that
    changed, with their old and new values;
  - each DELETE's old_values is the last state of the row;
  - support_desk's row_history of every row equals the log as the superuser
    reads it, in order.
"""
import argparse
import datetime
import decimal
import json
import sys

import psycopg
from psycopg.types.json import Jsonb, set_json_loads

set_json_loads(lambda s: json.loads(s, parse_float=decimal.Decimal))
TYPES = ["numeric", "text", "boolean", "timestamptz", "bigint", "jsonb", "double precision"]
NCOLS = 40
ROWS = 200
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def value(col, row):
    if (row + col) % 9 == 0:
        return None
    kind = col % len(TYPES)
    if kind == 0:
        return decimal.Decimal(f"{row}.{col:03d}")
    if kind == 1:
        return "é☃" * (row % 4) + "x" * col
    if kind == 2:
        return row % 2 == 0
    if kind == 3:
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(minutes=row * col)
    if kind == 4:
        return 9007199254740993 + row
    if kind == 5:
        return {"n": [row, {"deep": col}]} if col % 2 else row
    return row / 8


def as_json(col, v):
    """The value as to_jsonb writes it, decoded by the client."""
    if v is None:
        return None
    kind = col % len(TYPES)
    if kind == 3:
        return v.isoformat()
    if kind == 6:
        return decimal.Decimal(repr(v))
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--owner-dsn", required=True)
    ap.add_argument("--reader-dsn", required=True)
    ap.add_argument("--super-dsn", required=True)
    a = ap.parse_args()
    svc = psycopg.connect(a.owner_dsn, autocommit=True, prepare_threshold=None)
    svc.execute("SET timezone = 'UTC'")  # one transaction: PgBouncer may move the next one
    cols = ", ".join(f"c{i:02d} {TYPES[i % len(TYPES)]}" for i in range(NCOLS))
    svc.execute(f"CREATE TABLE orders.wide (id bigint PRIMARY KEY, {cols})")
    svc.execute("GRANT SELECT ON orders.wide TO support_desk")
    svc.execute("SELECT workflow.enable_audit('orders.wide')")
    state = {r: {f"c{i:02d}": value(i, r) for i in range(NCOLS)} for r in range(1, ROWS + 1)}
    placeholders = ", ".join(["%s"] * (NCOLS + 1))

    def params(r):
        return [r] + [Jsonb(v) if i % len(TYPES) == 5 and v is not None else v
                      for i, v in enumerate(state[r].values())]

    with svc.cursor() as cur:
        cur.executemany(f"INSERT INTO orders.wide VALUES ({placeholders})", [params(r) for r in range(1, 101)])
        with cur.copy("COPY orders.wide FROM STDIN") as cp:
            for r in range(101, ROWS + 1):
                cp.write_row([json.dumps(v.obj) if isinstance(v, Jsonb) else v for v in params(r)])
    def whole_row(r):
        return {"id": r, **{k: as_json(int(k[1:]), v) for k, v in state[r].items()}}

    expected = {r: [("INSERT", None, whole_row(r))] for r in state}

    def update(sql, where, change):
        svc.execute(sql)
        for r in [r for r in state if where(r)]:
            old, new = {}, {}
            for k, f in change.items():
                before = state[r][k]
                after = None if before is None else f(before)
                if after != before:
                    old[k], new[k] = as_json(int(k[1:]), before), as_json(int(k[1:]), after)
                    state[r][k] = after
            if new:
                expected[r].append(("UPDATE", old, new))

    update("UPDATE orders.wide SET c00 = c00 * 2, c01 = c01 || '!', c04 = c04 + 1 WHERE id % 3 = 0",
           lambda r: r % 3 == 0, {"c00": lambda v: v * 2, "c01": lambda v: v + "!", "c04": lambda v: v + 1})
    update("UPDATE orders.wide SET c02 = NOT c02, c05 = '{\"k\": [1, 2]}' WHERE id % 5 = 0 AND c05 IS NOT NULL",
           lambda r: r % 5 == 0 and state[r]["c05"] is not None,
           {"c02": lambda v: not v, "c05": lambda v: {"k": [1, 2]}})
    svc.execute("DELETE FROM orders.wide WHERE id % 11 = 0")
    for r in [r for r in state if r % 11 == 0]:
        expected[r].append(("DELETE", whole_row(r), None))

    sup = psycopg.connect(a.super_dsn, autocommit=True)
    desk = psycopg.connect(a.reader_dsn, autocommit=True, prepare_threshold=None)
    rows_read = 0
    for r in state:
        logged = sup.execute("SELECT operation, old_values, new_values FROM workflow.audit_log"
                             " WHERE table_name = 'wide' AND row_key = %s ORDER BY id", [Jsonb({"id": r})]).fetchall()
        check(logged == expected[r], f"row {r}: logged {logged!r}, expected {expected[r]!r}")
        history = desk.execute("SELECT operation, old_values, new_values FROM workflow.row_history('orders.wide', %s)",
                               [Jsonb({"id": r})]).fetchall()
        check(history == logged, f"row {r}: support_desk reads {history!r}, the log holds {logged!r}")
        rows_read += len(history)
    n_updates = sum(1 for r in expected for e in expected[r] if e[0] == "UPDATE")
    print(f"{ROWS} rows, {NCOLS + 1} columns: {rows_read} history rows read through PgBouncer, "
          f"{n_updates} updates, {len(failures)} failures")
    for f in failures[:5]:
        print("FAIL:", f[:600])
    return 1 if failures or rows_read == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
