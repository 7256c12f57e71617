-- Counter pages pruned as soon as they are 10% full (see workflow.stage_slots
-- in src/sql/10_engine_tables.sql); it takes effect for every page at once.
ALTER TABLE workflow.stage_slots SET (fillfactor = 10);
