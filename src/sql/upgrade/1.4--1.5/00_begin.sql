-- Upgrade workflow 1.4 -> 1.5 (ALTER EXTENSION workflow UPDATE TO '1.5').
-- Assembled from the files listed in src/sql/upgrade/1.4--1.5.list: parts of
-- the 1.5 install script that can be re-run on 1.4 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.4--1.5/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.5'" to load this file. \quit
