-- Survey steps, part 1: step names (registry + legacy aliases) and session ids.

CREATE FUNCTION workflow.step_name_key(raw text) RETURNS text
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'workflow_step_name_key';
COMMENT ON FUNCTION workflow.step_name_key(text) IS
  'Folds a survey step name spelling into its snake_case key (trim, case fold, spaces/hyphens/camelCase to "_") without consulting the registry; 22023 on an invalid spelling, 22004 on NULL.';

-- The registry of step names. Administrators extend it with INSERT.
CREATE TABLE workflow.survey_step_names (
  name        text PRIMARY KEY CHECK (workflow.step_name_key(name) = name),
  description text,
  builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE workflow.survey_step_names IS
  'Registry of survey step names (snake_case keys). Administrators add steps with INSERT; builtin rows ship with the extension.';

-- Legacy spellings, stored as their folded key, resolving to a registry name.
CREATE TABLE workflow.survey_step_aliases (
  alias     text PRIMARY KEY CHECK (workflow.step_name_key(alias) = alias),
  step_name text NOT NULL REFERENCES workflow.survey_step_names (name) ON UPDATE CASCADE ON DELETE CASCADE,
  builtin   boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE workflow.survey_step_aliases IS
  'Legacy step-name spellings (stored folded, see workflow.step_name_key) resolving to a registry name. A registry name wins over an alias with the same key.';

INSERT INTO workflow.survey_step_names (name, description, builtin) VALUES
  ('workload_today',    'Workload for today',               true),
  ('workload_nextweek', 'Expected workload next week',      true),
  ('connects_thisweek', 'Connects made this week',          true),
  ('day_off_nextweek',  'Days off planned next week',       true),
  ('day_off_thisweek',  'Days off taken this week',         true);

INSERT INTO workflow.survey_step_aliases (alias, step_name, builtin) VALUES
  ('workload_next_week',  'workload_nextweek', true),
  ('connects_this_week',  'connects_thisweek', true),
  ('day_off_next_week',   'day_off_nextweek',  true),
  ('day_off_this_week',   'day_off_thisweek',  true),
  ('workload',            'workload_today',    true),
  ('today_workload',      'workload_today',    true),
  ('next_week_workload',  'workload_nextweek', true),
  ('connects',            'connects_thisweek', true),
  ('weekly_connects',     'connects_thisweek', true),
  ('dayoff_nextweek',     'day_off_nextweek',  true),
  ('days_off_next_week',  'day_off_nextweek',  true),
  ('dayoff_thisweek',     'day_off_thisweek',  true),
  ('days_off_this_week',  'day_off_thisweek',  true);

-- Keep administrator-added rows in pg_dump; builtin rows come from CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('workflow.survey_step_names', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('workflow.survey_step_aliases', 'WHERE NOT builtin');
GRANT SELECT ON workflow.survey_step_names, workflow.survey_step_aliases TO PUBLIC;

CREATE FUNCTION workflow.normalize_step_name(raw text) RETURNS text
  LANGUAGE c STABLE PARALLEL RESTRICTED
  AS 'MODULE_PATHNAME', 'workflow_normalize_step_name';
COMMENT ON FUNCTION workflow.normalize_step_name(text) IS
  'The registry name for a step-name spelling: folds it (see step_name_key), then resolves it in workflow.survey_step_names or workflow.survey_step_aliases. Unknown names raise 22023 naming the value and the accepted names; NULL raises 22004.';

CREATE FUNCTION workflow.parse_session_id(raw text, OUT kind text, OUT session_id text)
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'workflow_parse_session_id';
COMMENT ON FUNCTION workflow.parse_session_id(text) IS
  'Parses a chat channel id (C, G or D followed by letters and digits, 9 to 21 characters; trimmed and upper-cased): kind (channel, group, direct) and the normalised id. 22023 when invalid, 22004 on NULL.';

CREATE FUNCTION workflow.is_valid_session_id(raw text) RETURNS boolean
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'workflow_is_valid_session_id';
COMMENT ON FUNCTION workflow.is_valid_session_id(text) IS
  'True when workflow.parse_session_id would accept the value; false for NULL.';
