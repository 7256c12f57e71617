-- Survey steps, part 3: the single upsert (the batch form, upsert_survey_steps,
-- is in 31_survey_steps.sql). CREATE OR REPLACE, so that the upgrade from 1.7
-- re-runs this file as it is (src/sql/upgrade/1.7--1.8.list).

CREATE OR REPLACE FUNCTION workflow.upsert_survey_step(session_id text, step_name text,
                                            value jsonb DEFAULT '{}',
                                            completed_at timestamptz DEFAULT now())
  RETURNS workflow.survey_steps
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_session text;
  v_step text;
  v_size integer;
  r workflow.survey_steps;
BEGIN
  SELECT p.session_id INTO v_session FROM workflow.parse_session_id(upsert_survey_step.session_id) p;
  v_step := workflow.normalize_step_name(upsert_survey_step.step_name);
  -- JSON null is refused as SQL NULL is, as the batch form refuses it.
  IF upsert_survey_step.value IS NULL OR jsonb_typeof(upsert_survey_step.value) = 'null' THEN
    RAISE EXCEPTION 'value must not be null (SQL NULL or JSON null)' USING ERRCODE = '22004';
  END IF;
  -- The size of the value itself, as the batch form measures it: a value
  -- read from a table may arrive compressed, and pg_column_size would give
  -- its compressed size. ->0 of a one-element array is a fresh, plain copy.
  v_size := pg_column_size(jsonb_build_array(upsert_survey_step.value) -> 0);
  IF v_size > 65536 THEN
    RAISE EXCEPTION 'value is % bytes, at most 65536 are accepted', v_size USING ERRCODE = '22023';
  END IF;
  IF upsert_survey_step.completed_at IS NULL THEN
    RAISE EXCEPTION 'completed_at must not be null' USING ERRCODE = '22004';
  END IF;
  IF NOT isfinite(upsert_survey_step.completed_at) THEN
    RAISE EXCEPTION 'completed_at "%" must be finite', upsert_survey_step.completed_at USING ERRCODE = '22023';
  END IF;

  -- The session row, locked FOR KEY SHARE until commit, so that
  -- cleanup_survey_sessions cannot delete it between this and the next
  -- statement (the insert below would then write nothing, without an error).
  LOOP
    PERFORM FROM workflow.survey_sessions s WHERE s.session_id = v_session FOR KEY SHARE;
    EXIT WHEN FOUND;
    INSERT INTO workflow.survey_sessions (session_id) VALUES (v_session) ON CONFLICT DO NOTHING;
  END LOOP;
  INSERT INTO workflow.survey_steps AS t (session_id, step_name, week_start, value, completed_at)
  SELECT v_session, v_step, workflow.survey_week_start(upsert_survey_step.completed_at, s.time_zone),
         upsert_survey_step.value, upsert_survey_step.completed_at
    FROM workflow.survey_sessions s WHERE s.session_id = v_session
  ON CONFLICT (session_id, week_start, step_name) DO UPDATE
    SET value = excluded.value, completed_at = excluded.completed_at, updated_at = now()
  RETURNING t.* INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION workflow.upsert_survey_step(text, text, jsonb, timestamptz) IS
  'Records a completed survey step: one row per (session, step, week in the session''s time zone); a second upsert in the same week updates the row. Validates and normalises the session id and step name. Returns the stored row. 22023/22004 on invalid input (22004 for a NULL or JSON null value; 22023 for a value over 64 kB uncompressed), nothing written.';

REVOKE ALL ON FUNCTION workflow.upsert_survey_step(text, text, jsonb, timestamptz) FROM PUBLIC;
