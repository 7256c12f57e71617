"""Property test of the audit history (README "Audit history"): a seeded random
workload on seven audited tables of different shapes and both trigger modes; after
every commit a snapshot of each table; then row_as_of(key, T) must equal the
snapshot at every recorded T, row_history must replay consistently into the
same states, hold each committed change once and no rolled-back one, and the
README's roles must see exactly what "Who may do what" promises.
"""
import argparse
import decimal
import json
import random
import re
import sys
import time

import psycopg
from psycopg.types.json import set_json_loads

# jsonb numbers as Decimal, compared by their text: to_jsonb's 0.000 and -0 are not 0
set_json_loads(lambda s: json.loads(s, parse_float=decimal.Decimal, parse_int=decimal.Decimal))
failures = []
checks = 0
kinds_seen = {}


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)


def kstr(key):
    """A primary key (ints and text) as canonical text, also the jsonb passed to the functions."""
    return json.dumps(key, sort_keys=True, ensure_ascii=False, default=int)


def canon(v):
    """A jsonb value as exact text: same() is equality of what to_jsonb wrote, number text included."""
    return json.dumps(v, sort_keys=True, ensure_ascii=False, default=lambda d: {"$number": str(d)})


def same(a, b):
    return canon(a) == canon(b)


def show(v):
    return re.sub(r'\{"\$number": "([^"]*)"\}', r"\1", canon(v))


# ---------------------------------------------------------------- values
def gen_value(rng, typ):
    """A literal for a column of type typ, as text (None: SQL NULL)."""
    if rng.random() < 0.12:
        return None
    if typ == "int":
        return str(rng.randint(-5, 5) if rng.random() < 0.5 else rng.randint(-2**31, 2**31 - 1))
    if typ == "text":
        return rng.choice(["", "plain", "é☃𝄞 日本語", "quote \" back\\slash", "line\nbreak\ttab",
                           "{\"looks\": \"json\"}", "NULL", "a" * rng.randint(1, 300), "Z\u0301alg\u0303o",
                           "\U0001F600 emoji", str(rng.random())])
    if typ == "numeric":
        return rng.choice(["NaN", "Infinity", "-Infinity", "0", "-0.000", "1e30", "123456789012345678901234567890.5",
                           str(decimal.Decimal(rng.randint(-10**6, 10**6)).scaleb(-rng.randint(0, 8))),
                           "0.1", "1.50"])
    if typ == "float8":
        # not "-0": to_jsonb writes 0 for it, so 0 -> -0 is logged as {"f8": 0} -> {"f8": 0}
        return rng.choice(["NaN", "Infinity", "-Infinity", "0", "1e308", "5e-324", "0.1",
                           repr(rng.uniform(-1e6, 1e6))])
    if typ == "timestamptz":
        return rng.choice(["infinity", "-infinity", "2026-03-29 01:30:00.123456+02", "1999-12-31 23:59:59.999999-11",
                           f"20{rng.randint(10, 40)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} "
                           f"{rng.randint(0, 23)}:{rng.randint(10, 59)}:00.{rng.randint(0, 999999):06d}Z"])
    if typ == "date":
        return rng.choice(["infinity", "2000-02-29", "4713-01-01 BC", f"2026-01-{rng.randint(10, 28)}"])
    if typ == "jsonb":
        return rng.choice(['{"a": [1, 2.50, null, {"b": "é"}]}', '[]', '{}', '"str"', '1e2', '0.10',
                           json.dumps({"n": rng.randint(0, 9), "deep": [[[rng.random()]]]}), 'true',
                           '{"nul": null}'])
    if typ == "int[]":
        # not "[0:1]={7,8}": to_jsonb drops the bounds, so {7,8} -> [0:1]={7,8} is logged as [7,8] -> [7,8]
        return rng.choice(["{}", "{1,NULL,3}", "{{1,2},{3,4}}", f"{{{rng.randint(0, 99)}}}"])
    if typ == "text[]":
        return rng.choice(['{}', '{"a b","é",NULL,""}', '{"{x}","\\\\"}', f'{{v{rng.randint(0, 9)}}}'])
    if typ == "bytea":
        return rng.choice(["\\x", "\\x00ff10", "\\x" + bytes(rng.randrange(256) for _ in range(8)).hex()])
    if typ == "boolean":
        return rng.choice(["t", "f"])
    if typ == "interval":
        return rng.choice(["1 day", "-1 mon 2 days 03:04:05.5", "0", f"{rng.randint(1, 99)} hours"])
    raise ValueError(typ)


# ---------------------------------------------------------------- tables
class Table:
    def __init__(self, name, pk, cols, keys, extra="", exclude=(), partitions=(), rls=False, deferrable=False):
        self.name, self.pk, self.cols, self.keyspace = name, pk, cols, keys
        self.extra, self.exclude, self.partitions, self.rls = extra, list(exclude), partitions, rls
        self.deferrable = deferrable
        self.statement_level = True
        self.qname = None

    @property
    def allcols(self):
        return self.pk + self.cols

    def types(self):
        return dict(self.pk + self.cols)

    def ddl(self, schema):
        cols = ", ".join(f"{c} {t}" for c, t in self.allcols)
        pk = ", ".join(c for c, _ in self.pk)
        defer = " DEFERRABLE INITIALLY IMMEDIATE" if self.deferrable else ""
        sql = [f"CREATE TABLE {schema}.{self.name} ({cols}, PRIMARY KEY ({pk}){defer}) {self.extra}"]
        for pname, bound in self.partitions:
            sql.append(f"CREATE TABLE {schema}.{self.name}_{pname} PARTITION OF {schema}.{self.name} {bound}")
        return sql

    def key_of(self, vals):
        return {c: vals[c] for c, _ in self.pk}

    def snapshot_sql(self):
        keyobj = ", ".join(f"'{c}', {c}" for c, _ in self.pk)
        ex = "ARRAY[" + ",".join(f"'{c}'" for c in self.exclude) + "]::text[]"
        return (f"(SELECT coalesce(jsonb_agg(jsonb_build_array(jsonb_build_object({keyobj}), to_jsonb(snap_row) - {ex})), '[]')"
                f" FROM {self.qname} snap_row)")


def make_tables():
    return [
        Table("t_int", [("id", "int")], [("a", "int"), ("b", "text")], [{"id": i} for i in range(1, 26)]),
        Table("t_comp", [("org", "text"), ("n", "int")], [("v", "int"), ("note", "text")],
              [{"org": o, "n": n} for o in ["acme", "ß-co", "日本"] for n in range(1, 8)]),
        Table("t_types", [("id", "int")],
              [("num", "numeric"), ("f8", "float8"), ("ts", "timestamptz"), ("d", "date"), ("j", "jsonb"),
               ("ia", "int[]"), ("ta", "text[]"), ("by", "bytea"), ("t", "text"), ("ok", "boolean"),
               ("iv", "interval")], [{"id": i} for i in range(1, 16)]),
        Table("t_excl", [("id", "int")], [("pub", "text"), ("secret", "text"), ("hits", "int")],
              [{"id": i} for i in range(1, 16)], exclude=["secret"]),
        Table("t_part", [("id", "int")], [("v", "text"), ("n", "int")], [{"id": i} for i in list(range(0, 120, 3)) + list(range(200, 280, 7))],
              extra="PARTITION BY RANGE (id)",
              partitions=[("p0", "FOR VALUES FROM (0) TO (40)"), ("p1", "FOR VALUES FROM (40) TO (80)"),
                          ("pd", "DEFAULT")]),
        Table("t_def", [("id", "int")], [("a", "int")], [{"id": i} for i in range(1, 30)], deferrable=True),
        Table("t_rls", [("id", "int")], [("owner_name", "text"), ("v", "int")], [{"id": i} for i in range(1, 12)],
              rls=True),
    ]


# ---------------------------------------------------------------- workload
class Step:
    """One transaction on one table: its plan (see Workload.next_step), actor, commit or rollback."""

    def __init__(self, table, desc):
        self.table, self.desc = table, desc
        self.parts = []
        self.commit = True
        self.actor = None


class Workload:
    def __init__(self, rng, tables, state):
        self.rng, self.tables, self.state = rng, tables, state   # state: table name -> {kstr: row}
        self.ddl_ok = False   # a rename only in a committed one-statement step (Python follows it)
        self.added = 0   # partitions added to t_part: [200, 240), [240, 280)

    def row_values(self, t, key):
        vals = dict(key)
        for c, typ in t.cols:
            vals[c] = gen_value(self.rng, typ) if t.name == "t_types" else self.small(typ, c, t)
        return vals

    def small(self, typ, col, t):
        r = self.rng
        if col == "owner_name":
            return r.choice(["prop_owner", "prop_reader", None])
        if typ == "int":
            return None if r.random() < 0.1 else str(r.randint(0, 9))
        if typ == "text":
            return None if r.random() < 0.1 else r.choice(["x", "y", "é☃", "", "z" * 3])
        return gen_value(r, typ)

    def insert_sql(self, t, rows, conflict=None):
        cols = [c for c, _ in t.allcols]
        ty = t.types()
        vals = ", ".join("(" + ", ".join(f"%s::{ty[c]}" for c in cols) + ")" for _ in rows)
        params = [row.get(c) for row in rows for c in cols]
        sql = f"INSERT INTO {t.qname} ({', '.join(cols)}) VALUES {vals}"
        pk = ", ".join(c for c, _ in t.pk)
        if conflict == "update":
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c, _ in t.cols)
            sql += f" ON CONFLICT ({pk}) DO UPDATE SET {sets}"
        elif conflict == "nothing":
            sql += f" ON CONFLICT ({pk}) DO NOTHING"
        return sql, params

    def where_keys(self, t, keys):
        ty = t.types()
        conds, params = [], []
        for k in keys:
            conds.append("(" + " AND ".join(f"{c} = %s::{ty[c]}" for c, _ in t.pk) + ")")
            params += [str(k[c]) for c, _ in t.pk]
        return ("(" + " OR ".join(conds) + ")") if conds else "false", params

    def present(self, t):
        return [json.loads(k) for k in self.state[t.name]]

    def absent(self, t):
        pres = set(self.state[t.name])
        return [k for k in t.keyspace if kstr(k) not in pres]

    def pick(self, seq, n):
        return self.rng.sample(seq, min(n, len(seq)))

    def update_stmt(self, t, keys, noop=False, only_excluded=False):
        r = self.rng
        ty = t.types()
        if only_excluded:
            cols = [(c, typ) for c, typ in t.cols if c in t.exclude]
        else:
            cols = r.sample(t.cols, r.randint(1, len(t.cols)))
        if noop:
            sets, params = ", ".join(f"{c} = {c}" for c, _ in cols), []
        else:
            sets = ", ".join(f"{c} = %s::{typ}" for c, typ in cols)
            params = [gen_value(r, typ) if t.name == "t_types" else self.small(typ, c, t) for c, typ in cols]
        where, wp = self.where_keys(t, keys)
        return f"UPDATE {t.qname} SET {sets} WHERE {where}", params + wp

    def moved_update(self, t, pairs):
        """UPDATE changing primary keys: pairs of (old key, new key) in one statement."""
        ty = t.types()
        cases = {c: [] for c, _ in t.pk}
        params = []
        for old, new in pairs:
            for c, _ in t.pk:
                cases[c].append((old, new[c]))
        sets = []
        for c, _ in t.pk:
            whens = []
            for old, newv in cases[c]:
                cond = " AND ".join(f"{pc} = %s::{ty[pc]}" for pc, _ in t.pk)
                whens.append(f"WHEN {cond} THEN %s::{ty[c]}")
                params += [str(old[pc]) for pc, _ in t.pk] + [str(newv)]
            sets.append(f"{c} = CASE {' '.join(whens)} END")
        extra_col, typ = self.rng.choice(t.cols)
        sets.append(f"{extra_col} = %s::{typ}" if self.rng.random() < 0.5 else f"{extra_col} = {extra_col}")
        if sets[-1].endswith(f"::{typ}"):
            params.append(self.small(typ, extra_col, t) if t.name != "t_types" else gen_value(self.rng, typ))
        where, wp = self.where_keys(t, [o for o, _ in pairs])
        moved = {kstr(o): kstr(n) for o, n in pairs}
        return f"UPDATE {t.qname} SET {', '.join(sets)} WHERE {where}", params + wp, moved

    def one_statement(self, t, kinds):
        """A random data-changing statement on t: (kind, part)."""
        r = self.rng
        kind = r.choice(kinds)
        pres, absn = self.present(t), self.absent(t)
        if kind in ("insert", "reinsert") or (not pres and kind not in ("copy", "truncate", "merge")):
            ks = self.pick(absn, r.randint(1, 3))
            if not ks:
                return "truncate", ("stmt", f"TRUNCATE {t.qname}", [], {})
            sql, p = self.insert_sql(t, [self.row_values(t, k) for k in ks])
            return "insert", ("stmt", sql, p, {})
        if kind == "copy":
            ks = self.pick(absn, r.randint(1, 4))
            rows = [self.row_values(t, k) for k in ks]
            cols = [c for c, _ in t.allcols]
            return "copy", ("copy", f"COPY {t.qname} ({', '.join(cols)}) FROM STDIN",
                            [[row[c] if row[c] is None else str(row[c]) for c in cols] for row in rows])
        if kind == "upsert" and t.deferrable:   # ON CONFLICT needs a non-deferrable arbiter
            kind = "merge"
        if kind == "upsert":
            ks = self.pick(pres, r.randint(1, 3)) + self.pick(absn, r.randint(0, 2))
            rows = [self.row_values(t, k) for k in ks]
            if r.random() < 0.3:   # some conflicting rows re-written with their current values
                for row in rows:
                    cur = self.state[t.name].get(kstr(t.key_of(row)))
                    if cur is not None and t.name not in ("t_types",):
                        for c, _ in t.cols:
                            if c in cur:
                                row[c] = None if cur[c] is None else str(cur[c])
            sql, p = self.insert_sql(t, rows, conflict=r.choice(["update", "update", "nothing"]))
            return "upsert", ("stmt", sql, p, {})
        if kind == "update":
            sql, p = self.update_stmt(t, self.pick(pres, r.randint(1, 6)))
            return "update", ("stmt", sql, p, {})
        if kind == "update_all":
            col, typ = r.choice([(c, ty) for c, ty in t.cols if ty in ("int", "text")] or t.cols)
            expr = f"coalesce({col}, 0) + 1" if typ == "int" else f"coalesce({col}, '') || 'é'"
            return "update_all", ("stmt", f"UPDATE {t.qname} SET {col} = {expr}", [], {})
        if kind == "noop":
            sql, p = self.update_stmt(t, self.pick(pres, r.randint(1, 6)), noop=True)
            return "noop", ("stmt", sql, p, {})
        if kind == "excluded_only" and t.exclude:
            sql, p = self.update_stmt(t, self.pick(pres, r.randint(1, 6)), only_excluded=True)
            return "excluded_only", ("stmt", sql, p, {})
        if kind == "pk_change":
            olds = self.pick(pres, r.randint(1, 3))
            news = self.pick(absn, len(olds))
            olds = olds[:len(news)]
            if not olds:
                return self.one_statement(t, ["update"])
            sql, p, moved = self.moved_update(t, list(zip(olds, news)))
            return "pk_change", ("stmt", sql, p, moved)
        if kind == "shift" and t.deferrable:
            # UPDATE t SET id = id + 1 over a run of keys: every new key but the last is an old key too
            lo = r.randint(1, 20)
            hi = lo + r.randint(1, 6)
            moved = {}
            for k in pres:
                if lo <= k["id"] <= hi:
                    moved[kstr(k)] = kstr({"id": k["id"] + 1})
            return "shift", ("stmt", f"UPDATE {t.qname} SET id = id + 1 WHERE id BETWEEN {lo} AND {hi}", [], moved)
        if kind == "delete":
            where, p = self.where_keys(t, self.pick(pres, r.randint(1, 4)))
            return "delete", ("stmt", f"DELETE FROM {t.qname} WHERE {where}", p, {})
        if kind == "truncate":
            return "truncate", ("stmt", f"TRUNCATE {t.qname}", [], {})
        if kind == "cte_move":
            # one query, two statements on the table: DELETE a row and INSERT it under another key
            old = r.choice(pres)
            news = self.pick(absn, 1)
            if not news:
                return self.one_statement(t, ["delete"])
            new = news[0]
            ty = t.types()
            where, p = self.where_keys(t, [old])
            cols = [c for c, _ in t.cols]
            newcols = ", ".join(f"%s::{ty[c]}" for c, _ in t.pk)
            sql = (f"WITH d AS (DELETE FROM {t.qname} WHERE {where} RETURNING *) "
                   f"INSERT INTO {t.qname} ({', '.join(c for c, _ in t.pk)}, {', '.join(cols)}) "
                   f"SELECT {newcols}, {', '.join('d.' + c for c in cols)} FROM d")
            return "cte_move", ("stmt", sql, [str(new[c]) for c, _ in t.pk] + p, {})
        if kind == "cte_two_updates" and len(pres) >= 2:
            a, b = self.pick(pres, 2)
            s1, p1 = self.update_stmt(t, [a])
            s2, p2 = self.update_stmt(t, [b])
            return "cte_two_updates", ("stmt", f"WITH u AS ({s1} RETURNING 1) {s2}", p1 + p2, {})
        if kind == "rename_excluded" and t.exclude and self.ddl_ok:
            old = t.exclude[0]
            new = f"secret_{self.rng.randint(0, 10**6)}"
            return "rename_excluded", ("ddl", f"ALTER TABLE {t.qname} RENAME COLUMN {old} TO {new}", (old, new))
        if kind == "add_partition" and t.partitions:
            lo = 200 + 40 * self.added
            if any(lo <= k["id"] < lo + 40 for k in pres) or self.added >= 2:
                return self.one_statement(t, ["insert"])
            self.added += 1
            if self.rng.random() < 0.5:
                sql = f"CREATE TABLE {t.qname}_n{lo} PARTITION OF {t.qname} FOR VALUES FROM ({lo}) TO ({lo + 40})"
            else:
                sql = (f"CREATE TABLE {t.qname}_n{lo} (LIKE {t.qname}); "
                       f"ALTER TABLE {t.qname} ATTACH PARTITION {t.qname}_n{lo} FOR VALUES FROM ({lo}) TO ({lo + 40})")
            return "add_partition", ("stmt", sql, [], {})
        if kind == "merge":
            ks = self.pick(pres, 3) + self.pick(absn, 2)
            rows = [self.row_values(t, k) for k in ks]
            ty = t.types()
            cols = [c for c, _ in t.allcols]
            vals = ", ".join("(" + ", ".join(f"%s::{ty[c]}" for c in cols) + ", %s::int)" for _ in rows)
            params = [row.get(c) for row in rows for c in cols]
            params = []
            for i, row in enumerate(rows):
                params += [row.get(c) for c in cols] + [str(i % 3)]
            on = " AND ".join(f"t.{c} = s.{c}" for c, _ in t.pk)
            sets = ", ".join(f"{c} = s.{c}" for c, _ in t.cols)
            sql = (f"MERGE INTO {t.qname} t USING (VALUES {vals}) AS s({', '.join(cols)}, act) ON {on} "
                   f"WHEN MATCHED AND s.act = 0 THEN DELETE "
                   f"WHEN MATCHED AND s.act = 1 THEN DO NOTHING "
                   f"WHEN MATCHED THEN UPDATE SET {sets} "
                   f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join('s.' + c for c in cols)})")
            return "merge", ("stmt", sql, params, {})
        return self.one_statement(t, ["update"])

    KINDS = ["insert", "insert", "reinsert", "copy", "upsert", "upsert", "update", "update", "update_all",
             "noop", "excluded_only", "pk_change", "shift", "shift", "shift", "delete", "delete", "truncate", "cte_move", "merge",
             "cte_two_updates", "rename_excluded", "add_partition"]

    def next_step(self):
        """A transaction's plan: phases ("stmt", kinds) | ("savepoint",) | ("rollback_to",); run_step
        draws each statement against the state the transaction sees at that point."""
        r = self.rng
        t = r.choice(self.tables)
        shape = r.choices(["single", "savepoint", "rollback", "multi"], [70, 12, 8, 10])[0]
        step = Step(t, shape)
        step.ddl_ok = shape == "single"
        if r.random() < 0.3:
            step.actor = r.choice(["alice@example.com", "ünïcode actor", "bob"])
        no_trunc = [k for k in self.KINDS if k != "truncate"]
        if shape in ("single", "rollback"):
            step.parts = [("stmt", self.KINDS)]
            step.commit = shape == "single"
        elif shape == "savepoint":   # kept; SAVEPOINT; dropped x2; ROLLBACK TO; kept
            step.parts = [("stmt", no_trunc), ("savepoint",), ("stmt", self.KINDS), ("stmt", self.KINDS),
                          ("rollback_to",), ("stmt", no_trunc)]
        else:
            step.parts = [("stmt", self.KINDS) for _ in range(r.randint(2, 4))]
        return step


# ---------------------------------------------------------------- run
def snapshot(conn, tables):
    """clock_timestamp() and every table's rows, in one statement after the commit."""
    sql = "SELECT clock_timestamp(), " + ", ".join(t.snapshot_sql() for t in tables)
    row = conn.execute(sql).fetchone()
    snap = {}
    for t, rows in zip(tables, row[1:]):
        snap[t.name] = {kstr(k): v for k, v in rows}
    return row[0], snap


def table_snapshot(cur, t):
    rows = cur.execute("SELECT " + t.snapshot_sql()).fetchone()[0]
    return {kstr(k): v for k, v in rows}


def event_counts(t, pre, post, moved):
    """How many log rows each key gets from one statement that turned pre into post."""
    counts = {}

    def add(k):
        counts[k] = counts.get(k, 0) + 1
    moved = {o: n for o, n in moved.items() if o in pre}
    for k, row in pre.items():
        if k in moved:
            add(k)
            add(moved[k])
        elif k not in post:
            add(k)
        elif not same(post[k], row):
            add(k)
    targets = set(moved.values())
    for k in post:
        if k not in pre and k not in targets:
            add(k)
    return counts


def run_step(conn, step, work):
    """Runs one step; returns (txid, committed, expected log rows per key, TRUNCATE events)."""
    t = step.table
    counts, truncates, saved, kinds = {}, 0, None, []
    work.ddl_ok = step.ddl_ok
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        if step.actor:
            cur.execute("SELECT set_config('workflow.actor', %s, true)", (step.actor,))
        txid = cur.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0]
        pre = table_snapshot(cur, t)
        for part in step.parts:
            if part[0] == "savepoint":
                cur.execute("SAVEPOINT sp")
                saved = (dict(counts), truncates, pre)
                kinds.append("SAVEPOINT")
                continue
            if part[0] == "rollback_to":
                cur.execute("ROLLBACK TO SAVEPOINT sp")
                counts, truncates, pre = saved
                kinds.append("ROLLBACK TO")
                continue
            work.state = dict(work.state, **{t.name: pre})
            kind, stmt = work.one_statement(t, part[1])
            kinds.append(kind)
            if stmt[0] == "ddl":   # a rename of the excluded column: the snapshot follows it
                cur.execute(stmt[1])
                old, new = stmt[2]
                t.exclude = [new]
                t.cols = [(new if c == old else c, ty) for c, ty in t.cols]
                moved = {}
            elif stmt[0] == "copy":
                with cur.copy(stmt[1]) as cp:
                    for row in stmt[2]:
                        cp.write_row(row)
                moved = {}
            else:
                cur.execute(stmt[1], stmt[2])
                moved = stmt[3]
            post = table_snapshot(cur, t)
            if kind == "truncate":
                truncates += 1     # one table event, no row events
            else:
                for k, n in event_counts(t, pre, post, moved).items():
                    counts[k] = counts.get(k, 0) + n
            pre = post
        step.desc = ("" if step.commit else "rolled back: ") + " ".join(kinds)
        cur.execute("COMMIT" if step.commit else "ROLLBACK")
    return txid, step.commit, counts, truncates


def setup(conn, schema, tables, seed):
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO prop_reader, prop_blind, prop_auditor")
    for i, t in enumerate(tables):
        t.qname = f"{schema}.{t.name}"
        t.statement_level = (seed + i) % 2 == 0
        for sql in t.ddl(schema):
            conn.execute(sql)
        if t.rls:
            conn.execute(f"ALTER TABLE {t.qname} ENABLE ROW LEVEL SECURITY")
            conn.execute(f"CREATE POLICY own ON {t.qname} USING (owner_name = current_user)")
        if t.name != "t_int" or seed % 3:   # t_int: sometimes no grant at all (prop_reader sees none)
            conn.execute(f"GRANT SELECT ON {t.qname} TO prop_reader")
        conn.execute("SELECT workflow.enable_audit(%s::regclass, %s, %s)",
                     (t.qname, t.exclude, t.statement_level))


def log_of(conn, t, key):
    return conn.execute(
        "SELECT id, operation, row_key, old_values, new_values, actor, txid, changed_at, session_user_name, "
        "current_user_name FROM workflow.row_history(%s::regclass, %s::jsonb)",
        (t.qname, kstr(key))).fetchall()


def as_of_all(conn, t, keys, times):
    """row_as_of for every key at every time, in one query: {(ki, ti): jsonb}."""
    rows = conn.execute(
        "SELECT ki, ti, workflow.row_as_of(%s::regclass, k, at) "
        "FROM unnest(%s::jsonb[]) WITH ORDINALITY AS k(k, ki), unnest(%s::timestamptz[]) WITH ORDINALITY AS a(at, ti)",
        (t.qname, [kstr(k) for k in keys], times)).fetchall()
    return {(ki - 1, ti - 1): v for ki, ti, v in rows}


def replay(t, entries, where):
    """Folds one key's row_history into states; returns [(changed_at, state)] and checks each entry."""
    state, out = None, []
    pkcols = [c for c, _ in t.pk]
    for (lid, op, rkey, old, new, actor, txid, at, su, cu) in entries:
        ctx = f"{where} log id {lid} {op}"
        if op == "TRUNCATE":
            state = None
        elif op == "INSERT":
            check(state is None and old is None, f"{ctx}: INSERT while the row exists ({show(state)}) or old={show(old)}")
            state = new
        elif op == "DELETE":
            check(state is not None and same(old, state) and new is None,
                  f"{ctx}: DELETE old_values {show(old)} != state {show(state)}")
            state = None
        elif op == "UPDATE":
            check(bool(new) and all(not same(old[c], v) for c, v in new.items() if c in (old or {})),
                  f"{ctx}: UPDATE with nothing changed: old {show(old)} new {show(new)}")
            if state is None:   # the new key of a primary-key change: the whole new row
                check(all(c in new for c in pkcols) and set(new) >= set(old or {}),
                      f"{ctx}: UPDATE of an absent row without a whole new row: new {show(new)}")
                state = dict(new)
            else:
                for c, v in (old or {}).items():
                    check(same(state.get(c), v), f"{ctx}: old_values[{c}] {show(v)} != state {show(state.get(c))}")
                state = dict(state)
                state.update(new)
                if any(c in new and not same(new[c], rkey[c]) for c in pkcols):   # moved away under a new key
                    state = None
        out.append((at, state))
    return out


def state_at(states, at):
    s = None
    for t_, st in states:
        if t_ <= at:
            s = st
    return s


def verify(conns, tables, times, snaps, steps_done, seed, via):
    owner, reader, blind, auditor = conns["owner"], conns["reader"], conns["blind"], conns["auditor"]
    committed = {txid for txid, ok, _, _, _ in steps_done if ok}
    rolled_back = {txid for txid, ok, _, _, _ in steps_done if not ok}
    for t in tables:
        keys = {}
        for snap in snaps:
            for k in snap[t.name]:
                keys[k] = json.loads(k)
        for (rk,) in owner.execute("SELECT DISTINCT row_key FROM workflow.audit_log WHERE schema_name = %s "
                                   "AND table_name = %s AND row_key IS NOT NULL", (t.qname.split(".")[0], t.name)):
            keys[kstr(rk)] = rk
        for k in t.keyspace:
            keys.setdefault(kstr(k), k)
        keylist = list(keys.values())
        got = as_of_all(owner, t, keylist, times)
        for ki, key in enumerate(keylist):
            ks = kstr(key)
            hist = log_of(owner, t, key)
            where = f"seed {seed} via {via} table {t.name}{'' if t.statement_level else ' (row-level)'} key {ks}"
            # ordered by id, and by time
            check(all(a[0] < b[0] and a[7] <= b[7] for a, b in zip(hist, hist[1:])),
                  f"{where}: row_history not ordered: {[(h[0], str(h[7])) for h in hist]}")
            # committed only, each committed change once
            per_tx = {}
            for h in hist:
                check(h[6] not in rolled_back, f"{where}: log id {h[0]} {h[1]} from a rolled-back transaction {h[6]}")
                check(h[6] in committed, f"{where}: log id {h[0]} {h[1]} from unknown transaction {h[6]}")
                per_tx.setdefault((h[6], h[1] == "TRUNCATE"), []).append(h)
            for i, (txid, ok, counts, truncs, step) in enumerate(steps_done):
                if not ok or step.table is not t:
                    continue
                n = len(per_tx.get((txid, False), []))
                check(n == counts.get(ks, 0),
                      f"{where}: step {i} ({step.desc}) txid {txid}: {n} log rows, expected {counts.get(ks, 0)}: "
                      f"{[(h[1], show(h[3]), show(h[4])) for h in per_tx.get((txid, False), [])]}")
                n = len(per_tx.get((txid, True), []))
                check(n == truncs, f"{where}: step {i} ({step.desc}): {n} TRUNCATE events, expected {truncs}")
                for h in per_tx.get((txid, False), []):
                    check(h[5] == (step.actor or "prop_owner") and h[8] == "prop_owner" and h[9] == "prop_owner",
                          f"{where}: log id {h[0]}: actor/session/current {h[5]}/{h[8]}/{h[9]}, "
                          f"expected {step.actor or 'prop_owner'}/prop_owner/prop_owner")
            if [c for c, _ in t.pk] == ["id"]:
                h1 = owner.execute("SELECT id FROM workflow.row_history(%s::regclass, %s::jsonb)",
                                   (t.qname, '{"id": %s.0}' % key["id"])).fetchall()
                check([h[0] for h in hist] == [h[0] for h in h1], f"{where}: the key as {key['id']}.0 finds "
                                                                 f"{len(h1)} log rows, as {key['id']} {len(hist)}")
            states = replay(t, hist, where)
            for ti, at in enumerate(times):
                exp = snaps[ti][t.name].get(ks)
                check(same(got[(ki, ti)], exp),
                      f"{where} at T{ti} ({at}): row_as_of expected {show(exp)} got {show(got[(ki, ti)])}")
                check(same(state_at(states, at), exp),
                      f"{where} at T{ti} ({at}): row_history replayed to {show(state_at(states, at))}, "
                      f"snapshot {show(exp)}")
            # the second roles: the same history, none, or per row-level security
            reader_sees = not t.rls and not (t.name == "t_int" and seed % 3 == 0)
            for role, conn, sees in (("prop_reader", reader, reader_sees), ("prop_blind", blind, False),
                                     ("prop_auditor", auditor, True)):
                try:
                    h2 = log_of(conn, t, key)
                except psycopg.errors.InsufficientPrivilege:
                    h2 = []
                check(h2 == (hist if sees else []),
                      f"{where}: {role} row_history has {len(h2)} rows, expected {len(hist) if sees else 0}")
        for role, conn, sees in (("prop_reader", reader, not t.rls and not (t.name == "t_int" and seed % 3 == 0)),
                                 ("prop_blind", blind, False), ("prop_auditor", auditor, True)):
            try:
                got2 = as_of_all(conn, t, keylist, times)
            except psycopg.errors.InsufficientPrivilege:
                got2 = {k: None for k in got}
            bad = [(keylist[ki], ti) for (ki, ti), v in got2.items() if not same(v, got[(ki, ti)] if sees else None)]
            check(not bad, f"seed {seed} via {via} table {t.name}: {role} row_as_of differs from the owner's "
                           f"(expected {'the same' if sees else 'NULL'}) at {len(bad)} (key, T), e.g. {bad[:3]}")
            n = conn.execute("SELECT count(*) FROM workflow.audit_log WHERE schema_name = %s AND table_name = %s",
                             (t.qname.split(".")[0], t.name)).fetchone()[0]
            n_owner = owner.execute("SELECT count(*) FROM workflow.audit_log WHERE schema_name = %s AND table_name = %s",
                                    (t.qname.split(".")[0], t.name)).fetchone()[0]
            check(n == (n_owner if sees else 0), f"seed {seed} via {via} table {t.name}: {role} reads {n} audit_log "
                                                 f"rows, expected {n_owner if sees else 0}")


def run_seed(seed, steps, dsns, via, mutate):
    rng = random.Random(seed)
    conns = {r: psycopg.connect(d, autocommit=True, prepare_threshold=None) for r, d in dsns.items()}
    tables = make_tables()
    schema = f"prop_{via}_{seed}" + (f"_{mutate.replace('-', '_')}" if mutate else "")
    setup(conns["owner"], schema, tables, seed)
    times, snaps, done = [], [], []
    at, snap = snapshot(conns["owner"], tables)
    times.append(at)
    snaps.append(snap)
    work = Workload(rng, tables, snap)
    for _ in range(steps):
        step = work.next_step()
        try:
            txid, ok, counts, truncs = run_step(conns["owner"], step, work)
        except psycopg.Error as e:
            # a generated statement the server refuses (e.g. a key conflict): no change, logged nowhere
            conns["owner"].execute("ROLLBACK")
            work.state = snaps[-1]
            print(f"  seed {seed} step {len(done)} ({step.desc}) refused: {str(e).splitlines()[0]}", file=sys.stderr)
            continue
        done.append((txid, ok, counts, truncs, step))
        time.sleep(0.001)
        at, snap = snapshot(conns["owner"], tables)
        times.append(at)
        snaps.append(snap)
        work.state = snap
        time.sleep(0.001)
    for _, ok, _, _, step in done:
        for k in step.desc.replace("rolled back: ", "").split():
            kinds_seen[k] = kinds_seen.get(k, 0) + 1
    if mutate == "stale-snapshot":   # as if one committed change had not been logged
        i = next(i for i in range(len(snaps) - 1, 0, -1) if canon(snaps[i]) != canon(snaps[i - 1]))
        snaps[i] = snaps[i - 1]
    elif mutate == "rolled-back":    # as if one committed transaction had been rolled back
        i = next(i for i, d in enumerate(done) if d[1] and d[2])
        done[i] = (done[i][0], False) + done[i][2:]
    before = checks
    verify(conns, tables, times, snaps, done, seed, via)
    for c in conns.values():
        c.close()
    return len(done), checks - before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1-3")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--via", default="direct")
    ap.add_argument("--mutate", choices=["stale-snapshot", "rolled-back"],
                    help="self-test: corrupt the expectations; the run must then fail")
    for r in ("owner", "reader", "blind", "auditor"):
        ap.add_argument(f"--{r}-dsn", required=True)
    a = ap.parse_args()
    lo, _, hi = a.seeds.partition("-")
    dsns = {r: getattr(a, f"{r}_dsn") for r in ("owner", "reader", "blind", "auditor")}
    for seed in range(int(lo), int(hi or lo) + 1):
        t0 = time.time()
        nsteps, nchecks = run_seed(seed, a.steps, dsns, a.via, a.mutate)
        print(f"seed {seed} via {a.via}: {nsteps} transactions, {nchecks} checks, {time.time() - t0:.1f} s, "
              f"{len(failures)} mismatches so far", flush=True)
    shown = {}   # at most 3 lines per (seed, via, table, key), 60 in all
    for f in failures:
        m = re.match(r"seed \S+ via \S+ table \S+( \(row-level\))?( key \{[^}]*\})?", f)
        group = m.group(0) if m else f
        shown[group] = shown.get(group, 0) + 1
        if shown[group] <= 3 and sum(min(n, 3) for n in shown.values()) <= 60:
            print("MISMATCH", f)
    print(f"{len(failures)} mismatches in {len(shown)} (seed, via, table, key) groups")
    print("statements: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds_seen.items())))
    print(f"total checks {checks}, mismatches {len(failures)}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
