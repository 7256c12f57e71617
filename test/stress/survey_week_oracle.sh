#!/usr/bin/env bash
# The survey week against an independent oracle (Python zoneinfo, the same
# tzdata): survey_week_start for every zone set_session_timezone accepts, and
# the single and batch upserts and the weekly query for zones with DST at
# midnight, odd offsets, skipped days and names that are also abbreviations
# (test/stress/survey_week_oracle.py says what). Then single and batch
# upserts on generated inputs: same refusals (SQLSTATE), same stored rows
# (test/stress/survey_upsert_paths.py). Runs on its OWN cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg.sh   # $PY, fail, build, cluster helpers and the trap
cluster_start >/dev/null
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE EXTENSION workflow"
DSN="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
timeout 300 "$PY" test/stress/survey_week_oracle.py --dsn "$DSN" || fail "the survey week differs from the oracle"
# Even with another set of abbreviations ('EST' is UTC+10 in it), a zone is its IANA zone.
PGOPTIONS="-c timezone_abbreviations=Australia" timeout 300 "$PY" - "$DSN" <<'PY' || fail "timezone_abbreviations changed a week"
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    if not c.execute("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = 'EST')").fetchone()[0]:
        print("EST is no zone in this system's tzdata (no tzdata-legacy): no EST session to check")
        sys.exit(0)
    c.execute("SELECT workflow.set_session_timezone('C0ABBREV1', 'EST')")
    row = c.execute("SELECT week_start FROM workflow.upsert_survey_step('C0ABBREV1', 'connects', '1', "
                    "'2026-06-14 20:00Z')").fetchone()  # Sunday 15:00 in EST (UTC-5), Monday 06:00 at UTC+10
    batch = c.execute("SELECT workflow.upsert_survey_steps('[{\"session_id\": \"C0ABBREV1\", \"step_name\": "
                      "\"workload_today\", \"completed_at\": \"2026-06-14T20:00:00Z\"}]')").fetchone()
    weeks = c.execute("SELECT array_agg(DISTINCT week_start::text) FROM workflow.survey_steps "
                      "WHERE session_id = 'C0ABBREV1'").fetchone()[0]
    if weeks != ["2026-06-08"]:
        sys.exit(f"EST session under timezone_abbreviations=Australia: weeks {weeks}, want ['2026-06-08']")
    c.execute("DELETE FROM workflow.survey_sessions WHERE session_id = 'C0ABBREV1'")
PY
timeout 300 "$PY" test/stress/survey_upsert_paths.py --dsn "$DSN" || fail "single and batch upserts differ"
echo "survey week oracle ok"
