-- The user side of an installation, made the same way on every database the
-- upgrade test compares (under 1.0 before the upgrade, under 1.1 on the
-- fresh install): audited tables of each kind (row- and statement-level,
-- excluded column, partitioned, one dropped after its history was written),
-- an updated_at trigger, and audit attached to an extension table. Their
-- triggers and registry rows are part of the catalog comparison, so a 1.1
-- that attaches audit differently than 1.0 did must migrate old tables.
SELECT workflow.enable_audit('workflow.tasks');
CREATE SCHEMA app;
CREATE TABLE app.account (id int PRIMARY KEY, email text NOT NULL, pw text,
                          updated_at timestamptz NOT NULL DEFAULT now());
CREATE TRIGGER account_updated_at BEFORE INSERT OR UPDATE ON app.account
  FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at('updated_at', 'skip_noop');
SELECT workflow.enable_audit('app.account', '{pw}');
CREATE TABLE app.note (id int PRIMARY KEY, body text);
SELECT workflow.enable_audit('app.note', statement_level => false);
CREATE TABLE app.event (id int, region text, note text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE app.event_eu PARTITION OF app.event FOR VALUES IN ('eu');
SELECT workflow.enable_audit('app.event');
CREATE TABLE app.event_us PARTITION OF app.event FOR VALUES IN ('us');
CREATE TABLE app.gone (id int PRIMARY KEY, v text);
SELECT workflow.enable_audit('app.gone');
INSERT INTO app.gone VALUES (1, 'written before the drop');
UPDATE app.gone SET v = 'and changed' WHERE id = 1;
DROP TABLE app.gone;
