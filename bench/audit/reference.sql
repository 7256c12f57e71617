-- Reference designs the native triggers are compared against (bench only).
CREATE EXTENSION IF NOT EXISTS moddatetime;

-- The usual hand-written audit trigger: whole OLD and NEW rows as jsonb.
CREATE TABLE bench_plpgsql_log (
  id         bigserial PRIMARY KEY,
  table_name text NOT NULL,
  row_id     int,
  action     text NOT NULL,
  old_values jsonb,
  new_values jsonb,
  actor      text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON bench_plpgsql_log (table_name, row_id);

CREATE FUNCTION bench_plpgsql_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench_plpgsql_log (table_name, row_id, action, old_values, new_values, actor)
  VALUES (TG_TABLE_NAME, coalesce(NEW.id, OLD.id), TG_OP,
          CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
          coalesce(nullif(current_setting('workflow.actor', true), ''), current_user));
  RETURN NULL;
END;
$$;

CREATE FUNCTION bench_plpgsql_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;
