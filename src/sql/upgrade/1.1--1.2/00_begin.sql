-- Upgrade workflow 1.1 -> 1.2 (ALTER EXTENSION workflow UPDATE TO '1.2').
-- Assembled from the files listed in src/sql/upgrade/1.1--1.2.list: parts of
-- the 1.2 install script that can be re-run on 1.1 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.1--1.2/ for what
-- cannot. A 1.0 database takes 1.0 -> 1.1 (released) and then this script.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.2'" to load this file. \quit
