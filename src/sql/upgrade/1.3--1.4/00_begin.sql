-- Upgrade workflow 1.3 -> 1.4 (ALTER EXTENSION workflow UPDATE TO '1.4').
-- Assembled from the files listed in src/sql/upgrade/1.3--1.4.list: parts of
-- the 1.4 install script that can be re-run on 1.3 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.3--1.4/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.4'" to load this file. \quit
