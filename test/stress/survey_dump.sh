#!/usr/bin/env bash
# pg_dump keeps survey data: administrator-added step names and aliases (not
# the builtin rows, which CREATE EXTENSION makes), sessions with their zones,
# steps, and the steps' identity sequence. Needs the test cluster (scripts/test).
set -euo pipefail
: "${PGHOST:?no server: run via scripts/test}" "${PGPORT:?no server}"
SRC=wf_survey_dump_src DST=wf_survey_dump_dst
cleanup() { psql -qX -d postgres -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $DST" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $SRC" -c "CREATE DATABASE $DST"
psql -qX -d $SRC -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION workflow;
INSERT INTO workflow.survey_step_names (name) VALUES ('mood_today');
INSERT INTO workflow.survey_step_aliases (alias, step_name) VALUES ('team_mood', 'mood_today');
SELECT workflow.set_session_timezone('C024BE91L', 'Pacific/Kiritimati');
SELECT workflow.upsert_survey_steps('[{"session_id": "C024BE91L", "step_name": "teamMood", "completed_at": "2026-11-22T10:30:00Z"},
                                      {"session_id": "G0123ABCD", "step_name": "connects", "value": 7}]');
SQL
pg_dump -d $SRC | psql -qX -d $DST -v ON_ERROR_STOP=1 >/dev/null
q() { psql -qXAt -d "$1" -v ON_ERROR_STOP=1 -c "$2"; }
STATE="SELECT (SELECT string_agg(name, ',' ORDER BY name) FROM workflow.survey_step_names) || '|' ||
              (SELECT string_agg(alias, ',' ORDER BY alias) FROM workflow.survey_step_aliases) || '|' ||
              (SELECT string_agg(session_id || '@' || time_zone, ',' ORDER BY session_id) FROM workflow.survey_sessions) || '|' ||
              (SELECT string_agg(concat_ws('/', id, session_id, step_name, week_start, value), ',' ORDER BY id) FROM workflow.survey_steps)"
before=$(q $SRC "$STATE"); after=$(q $DST "$STATE")
echo "source:   $before"; echo "restored: $after"
[ "$before" = "$after" ] || { echo "FAIL: restored survey data differs"; exit 1; }
grep -q "C024BE91L/mood_today/2026-11-23" <<<"$after" || { echo "FAIL: expected row missing"; exit 1; }
next=$(q $DST "SELECT (workflow.upsert_survey_step('D0ABCDEFGH', 'mood today')).id")
[ "$next" = 3 ] || { echo "FAIL: identity sequence not restored (next id $next)"; exit 1; }
echo "survey dump: ok"
