-- Upgrade workflow 1.2 -> 1.3 (ALTER EXTENSION workflow UPDATE TO '1.3').
-- Assembled from the files listed in src/sql/upgrade/1.2--1.3.list: parts of
-- the 1.3 install script that can be re-run on 1.2 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.2--1.3/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.3'" to load this file. \quit
