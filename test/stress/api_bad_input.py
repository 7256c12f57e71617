#!/usr/bin/python3
"""Hostile-input sweep of every public function in schema workflow (psycopg 3).
Each call gets one argument replaced (NULL, '', 10k chars, -1/0/2^31-1, odd intervals,
wrong-shaped jsonb, empty/NULL/2-D arrays, unknown ids, +-infinity), inside a rolled-back
savepoint over a small fixture. Fails (exit 1) on a crash, XX000, a 5 s timeout, a valid call
that fails, or an id or name of only spaces written (the caller's free text aside); prints
P0001, NULL accepted for a required argument, and rows written on an edge value for review.
"""
import argparse
import collections
import sys
import time

import psycopg

X10K = "repeat('x', 10000)"
EDGES = {
    'text': ["''", "'   '", X10K],
    'name': ["''", X10K, "'no_such_role'", "'pg_monitor'"],
    'integer': ['-1', '0', '2147483647'],
    'interval': ["'-1 day'", "'0'", "'1000 years'", "'1 microsecond'", "'1 mon -31 days'"],
    'jsonb': ["'[]'", "'\"x\"'", "'{}'", "'null'", "(repeat('[', 5000) || repeat(']', 5000))",
              """('{"x": "' || repeat('y', 100000) || '"}')"""],
    'timestamptz': ["'infinity'", "'-infinity'"],
    'boolean': [],
    'regclass': ["'pg_class'", "'public.nopk'", "'workflow.audit_log'", "'workflow.jobs'", "0",
                 "'workflow.queue_depth'", "'public.aud_v'"],
    'text[]': ["'{}'", 'ARRAY[NULL]', "ARRAY['']", "ARRAY[['a','b'],['c','d']]", "'[0:1]={a,b}'",
               "array_fill('w'::text, ARRAY[10001])"],
    'integer[]': ["'{}'", 'ARRAY[NULL]::int[]', 'ARRAY[-1,-1]', 'ARRAY[[1,1],[1,1]]'],
    'jsonb[]': ["'{}'", 'ARRAY[NULL]::jsonb[]', "ARRAY['[]','\"x\"']", "ARRAY[['{}','{}'],['{}','{}']]",
                "'[0:1]={\"{}\",\"{}\"}'", "array_fill('{}'::jsonb, ARRAY[1000001])"],
}
# Extra edges by meaning of the argument.
# j2 failed, j4 cancelled; j2:1:0 dead, j2:1:1 cancelled, j1:1:2 queued (fixture below).
KIND = {'job': ["'no-such-job'", "'j2'", "'j4'"],
        'task': ["'j1:9:9'", "'no-such-task'", "'j2:1:0'", "'j2:1:1'", "'j1:1:2'"],
        'worker': ["'w-other'", "E'w\\n1'"]}
NEEDS_EXTENSION = ('distribute', 'schedule', 'fire_schedule', 'unschedule')   # Citus, pg_cron
UNKNOWN = ("'no-such-job'", "'j1:9:9'", "'no-such-task'")

# function: [(type, valid SQL, NULL allowed?, kind, free)]; the fixture below makes them valid.
# free: any value of the type is the caller's data (a result, a reason), so writing it is no finding.
A = lambda t, v, null_ok=False, kind=None, free=False: (t, v, null_ok, kind, free)
FUNCS = {
    'add_tasks': [A('text', "'j1'", kind='job'), A('integer', '2'), A('text', "'tt2'"),
                  A('jsonb[]', "ARRAY['{}','{}']"), A('boolean', 'true'), A('integer', '0'),
                  A('integer', '3'), A('integer', '64'), A('timestamptz', 'NULL', True),
                  A('integer', '0', free=True), A('interval', 'NULL', True)],
    'advance_job_stage': [A('text', "'j3'", kind='job'), A('integer', '1'), A('integer', '2'),
                          A('jsonb', "'{}'", True, free=True)],
    'cancel_job': [A('text', "'j1'", kind='job'), A('text', "'why'", True, free=True)],
    'check_invariants': [A('text', "'j1'", True, 'job')],
    'check_job_completion': [A('text', "'j1'", kind='job')],
    'claim_stage_handovers': [A('text', "'w9'", kind='worker'), A('integer', '1'), A('interval', "'5 minutes'")],
    'claim_tasks': [A('text', "'w9'", kind='worker'), A('integer', '1'), A('text[]', "ARRAY['tq']", True),
                    A('interval', "'5 minutes'")],
    'claim_tasks_for_workers': [A('text[]', "ARRAY['w8','w9']"), A('text[]', "ARRAY['tq']", True),
                                A('interval', "'5 minutes'")],
    'cleanup_survey_sessions': [A('interval', "'90 days'")],
    'complete_claimed_tasks': [A('text[]', "ARRAY['j1','j1']"), A('text[]', "ARRAY['j1:1:0','j1:1:1']"),
                               A('integer[]', 'ARRAY[1,1]'), A('jsonb[]', "ARRAY['{}','{}']", True, free=True),
                               A('text[]', "ARRAY['w1','w1']")],
    'complete_task_and_check_stage': [A('text', "'j1:1:0'", kind='task'), A('text', "'j1'", kind='job'),
                                      A('integer', '1'), A('jsonb', "'{}'", True, free=True), A('boolean', 'true'),
                                      A('text', "'w1'", True, 'worker')],
    'complete_tasks': [A('text[]', "ARRAY['j1','j1']"), A('text[]', "ARRAY['j1:1:0','j1:1:1']"),
                       A('integer[]', 'ARRAY[1,1]'), A('jsonb[]', "ARRAY['{}','{}']", True, free=True),
                       A('text', "'w1'", True, 'worker')],
    'create_job': [A('text', "'t'"), A('jsonb', "'{}'", free=True), A('integer', '2'), A('text', "'jnew'", True),
                   A('timestamptz', 'NULL', True), A('text', 'NULL', True)],
    'disable_audit': [A('regclass', "'public.aud'")],
    'distribute': [A('integer', 'NULL', True)],
    'enable_audit': [A('regclass', "'public.aud2'"), A('text[]', "'{}'"), A('boolean', 'true')],
    'expire_timed_out_tasks': [A('integer', '100')],
    'fail_task': [A('text', "'j1:1:0'", kind='task'), A('text', "'j1'", kind='job'), A('text', "'err'", free=True),
                  A('boolean', 'true'), A('interval', "'2 seconds'"), A('interval', "'1 hour'"),
                  A('text', "'w1'", True, 'worker')],
    'fire_schedule': [A('text', "'s1'")],
    'get_weekly_survey_steps': [A('text', "'C024BE91L'"), A('timestamptz', 'now()')],
    'heartbeat_task': [A('text', "'j1:1:0'", kind='task'), A('text', "'j1'", kind='job'),
                       A('text', "'w1'", kind='worker'), A('interval', "'5 minutes'")],
    'is_valid_session_id': [A('text', "'C024BE91L'", True)],
    'job_progress': [A('text', "'j1'", kind='job')],
    'list_schedules': [],
    'normalize_step_name': [A('text', "'connects'")],
    'parse_session_id': [A('text', "'C024BE91L'")],
    'pause_job': [A('text', "'j1'", kind='job')],
    'pause_task_type': [A('text', "'tt'")],
    'purge_audit_log': [A('interval', "'90 days'")],
    'purge_jobs': [A('interval', "'1 day'"), A('text[]', "ARRAY['cancelled']"), A('integer', '10')],
    'report_progress': [A('text', "'j1:1:0'", kind='task'), A('text', "'j1'", kind='job'),
                        A('jsonb', "'{\"p\": 1}'", free=True), A('text', "'w1'", True, 'worker')],
    'resume_job': [A('text', "'j1'", kind='job')],
    'resume_task_type': [A('text', "'tt'")],
    'retry_delay': [A('integer', '3'), A('interval', "'2 seconds'"), A('interval', "'1 hour'"),
                    A('boolean', 'false')],
    'retry_job': [A('text', "'j2'", kind='job')],
    'retry_task': [A('text', "'j2:1:0'", kind='task'), A('text', "'j2'", kind='job')],
    'row_as_of': [A('regclass', "'public.aud'"), A('jsonb', "'{\"id\": 1}'"), A('timestamptz', 'clock_timestamp()')],
    'row_history': [A('regclass', "'public.aud'"), A('jsonb', "'{\"id\": 1}'")],
    'schedule': [A('text', "'s1'"), A('text', "'0 2 * * *'"), A('text', "'t'"), A('jsonb', "'{}'"),
                 A('integer', '1'), A('text', 'NULL', True), A('jsonb[]', 'NULL', True)],
    'seal_stage': [A('text', "'j1'", kind='job'), A('integer', '2')],
    'set_handover_lease': [A('text', "'j1'", kind='job'), A('interval', "'30 seconds'")],
    'set_job_owner': [A('text', "'j1'", kind='job'), A('name', "'postgres'", True)],
    'set_session_timezone': [A('text', "'C024BE91L'"), A('text', "'Europe/Berlin'")],
    'set_task_type_limit': [A('text', "'tt'"), A('integer', '5', True)],
    'step_name_key': [A('text', "'HTTPServer2Go'", True)],
    'survey_week_start': [A('timestamptz', 'now()'), A('text', "'UTC'")],
    'tolerate_dead_tasks': [A('text', "'j1'", kind='job'), A('integer', '1'), A('integer', '1')],
    'unschedule': [A('text', "'s1'")],
    'upsert_survey_step': [A('text', "'C024BE91L'"), A('text', "'connects'"), A('jsonb', "'{\"n\": 1}'"),
                           A('timestamptz', 'now()')],
    'upsert_survey_steps': [A('jsonb', """'[{"session_id": "C024BE91L", "step_name": "connects", "value": 3}]'""")],
    'validate': [],
    'version': [],
}

FIXTURE = """
CREATE TABLE public.aud (id int PRIMARY KEY, v text);
CREATE TABLE public.aud2 (id int PRIMARY KEY, v text);
CREATE TABLE public.nopk (id int, v text);
CREATE VIEW public.aud_v AS SELECT * FROM public.aud;
SELECT workflow.enable_audit('public.aud');
INSERT INTO public.aud VALUES (1, 'a');
UPDATE public.aud SET v = 'b' WHERE id = 1;
SELECT workflow.create_job('t', '{}', 3, 'j1');
SELECT workflow.add_tasks('j1', 1, 'tt', ARRAY['{}', '{}']::jsonb[], seal => false);
SELECT workflow.add_tasks('j1', 1, 'tq', ARRAY['{}']::jsonb[], first_index => 2);
SELECT count(*) FROM workflow.claim_tasks('w1', 5, ARRAY['tt']);
SELECT workflow.create_job('t', '{}', 2, 'j2');
SELECT workflow.add_tasks('j2', 1, 'dd', ARRAY['{}', '{}']::jsonb[], max_retries => 0);
SELECT count(*) FROM workflow.claim_tasks('w2', 2, ARRAY['dd']);
SELECT * FROM workflow.fail_task('j2:1:0', 'j2', 'boom', worker => 'w2');
SELECT workflow.create_job('t', '{}', 2, 'j3');
SELECT workflow.seal_stage('j3', 1);
SELECT workflow.create_job('t', '{}', 1, 'j4');
SELECT workflow.cancel_job('j4');
SELECT workflow.set_session_timezone('C024BE91L', 'UTC');
SELECT workflow.upsert_survey_step('C024BE91L', 'connects', '3');
"""
TABLES = ['jobs', 'stages', 'stage_slots', 'tasks', 'audit_log', 'audit_tables', 'schedules',
          'survey_sessions', 'survey_steps', 'task_type_settings']
DIGEST = "SELECT " + ", ".join(
    "(SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
    "FROM workflow.%s t)" % t for t in TABLES)


def variants(args):
    """(label, [sql args], what) for every call: what is valid, null (a NULL the README
    allows), null_required, unknown (an id that does not exist), free (the caller's data), edge."""
    valid = [a[1] for a in args]
    yield 'valid', valid, 'valid'
    for i, (typ, v, null_ok, kind, free) in enumerate(args):
        for e in ['NULL'] + EDGES[typ] + KIND.get(kind, []):
            if e == v:
                continue
            call = list(valid)
            call[i] = e
            what = ('null' if null_ok else 'null_required') if e == 'NULL' else \
                'unknown' if e in UNKNOWN else 'free' if free else 'edge'
            yield 'arg%d=%s' % (i + 1, e if len(e) < 50 else e[:47] + '...'), call, what


class Sweep:
    def __init__(self, dsn):
        self.dsn, self.conn = dsn, None

    def connect(self):
        for _ in range(60):
            try:
                self.conn = psycopg.connect(self.dsn)
                break
            except psycopg.OperationalError:
                time.sleep(1)
        self.conn.execute("SET statement_timeout = '5s'")
        self.conn.execute("SET client_min_messages = warning")
        self.conn.commit()

    def arg_types(self, fn):
        row = self.conn.execute(
            "SELECT array_agg(format_type(t, NULL) ORDER BY o) FROM pg_proc p, "
            "unnest(p.proargtypes) WITH ORDINALITY u(t, o) WHERE p.oid = %s::regproc",
            ('workflow.' + fn,)).fetchone()[0] or []
        self.conn.rollback()
        return [{'timestamp with time zone': 'timestamptz'}.get(t, t) for t in row]

    def run_function(self, fn, args, after=None):
        """One transaction: fixture, then each variant in a savepoint rolled back.
        after: the label of a variant that crashed the server; start past it."""
        types = self.arg_types(fn)
        todo = list(variants(args))
        if after:
            todo = todo[[v[0] for v in todo].index(after) + 1:]
        out = []
        c = self.conn
        c.execute(FIXTURE)
        base = c.execute(DIGEST).fetchone()
        for label, call, what in todo:
            sql = 'SELECT r::text FROM workflow.%s(%s) r' % (
                fn, ', '.join('(%s)::%s' % (a, t) for a, t in zip(call, types)))
            c.execute('SAVEPOINT s')
            t0 = time.monotonic()
            try:
                rows = c.execute(sql).fetchall()
                wrote = c.execute(DIGEST).fetchone() != base
                res = dict(state='ok', msg=repr([r[0] for r in rows])[:120], wrote=wrote)
                c.execute('ROLLBACK TO SAVEPOINT s')
            except psycopg.Error as e:
                if c.broken or c.closed:
                    out.append((fn, label, what, dict(state='CRASH', msg=' '.join(str(e).split())[:200], wrote=None),
                                sql, time.monotonic() - t0))
                    self.connect()
                    return out + self.run_function(fn, args, after=label)
                res = dict(state=e.sqlstate or '?', msg=' '.join((e.diag.message_primary or str(e)).split())[:200], wrote=False)
                c.execute('ROLLBACK TO SAVEPOINT s')
            out.append((fn, label, what, res, sql, time.monotonic() - t0))
        c.rollback()
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dsn', required=True)
    ap.add_argument('--log', help='PostgreSQL server log, scanned for crashes')
    ap.add_argument('--out', help='write every call and its answer here (TSV)')
    ap.add_argument('--only', nargs='*', help='function names')
    a = ap.parse_args()
    s = Sweep(a.dsn)
    s.connect()
    have = {r[0] for r in s.conn.execute(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'workflow' AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype) "
        "AND coalesce(obj_description(p.oid, 'pg_proc'), '') NOT LIKE 'Internal%%'")}
    s.conn.rollback()
    missing = sorted(have - set(FUNCS))
    if missing:
        print('not covered by the sweep (add them to FUNCS):', ', '.join(missing))
    t0 = time.monotonic()
    results = []
    for fn in sorted(FUNCS):
        if a.only and fn not in a.only:
            continue
        if fn not in have:
            print('gone from the schema:', fn)
            continue
        results += s.run_function(fn, FUNCS[fn])
    fatal, review = [], []
    for fn, label, what, r, sql, dt in results:
        st = r['state']
        if st in ('CRASH', 'XX000', '57014'):
            fatal.append((fn, label, st, r['msg']))
        elif st == 'ok' and what == 'edge' and r['wrote'] and label.endswith("='   '"):
            fatal.append((fn, label, 'an id or name of only spaces was written', r['msg']))
        elif what == 'valid' and st != 'ok' and fn not in NEEDS_EXTENSION:
            fatal.append((fn, label, 'valid call failed ' + st, r['msg']))
        elif st == 'P0001':
            review.append((fn, label, 'P0001', r['msg']))
        elif st == 'ok' and what == 'null_required':
            review.append((fn, label, 'NULL accepted' + (', wrote' if r['wrote'] else ''), r['msg']))
        elif st == 'ok' and what == 'unknown':
            review.append((fn, label, 'unknown id accepted' + (', wrote' if r['wrote'] else ''), r['msg']))
        elif st == 'ok' and what == 'edge' and r['wrote']:
            review.append((fn, label, 'edge accepted, wrote', r['msg']))
    if a.out:
        with open(a.out, 'w') as f:
            for fn, label, what, r, sql, dt in results:
                f.write('\t'.join([fn, label, what, r['state'], str(r['wrote']), '%.3f' % dt,
                                   r['msg'].replace('\n', ' '), sql[:300]]) + '\n')
    states = collections.Counter(r[3]['state'] for r in results)
    print('%d calls of %d functions in %.1f s; answers: %s' % (
        len(results), len({r[0] for r in results}), time.monotonic() - t0,
        ', '.join('%s %d' % kv for kv in sorted(states.items()))))
    for f in review:
        print('REVIEW %s(%s): %s: %s' % f)
    for f in fatal:
        print('FAIL %s(%s): %s: %s' % f)
    if a.log:
        with open(a.log, errors='replace') as f:
            crashes = [l.strip() for l in f if 'terminated by signal' in l or 'was terminated' in l]
        for l in crashes:
            print('FAIL server log:', l)
        fatal += crashes
    print('FAIL' if fatal else 'ok', '(%d fatal, %d to review)' % (len(fatal), len(review)))
    return 1 if fatal else 0


if __name__ == '__main__':
    sys.exit(main())
