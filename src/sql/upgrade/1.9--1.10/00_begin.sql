-- Upgrade workflow 1.9 -> 1.10 (ALTER EXTENSION workflow UPDATE TO '1.10').
-- Assembled from the files listed in src/sql/upgrade/1.9--1.10.list: parts of
-- the 1.10 install script that can be re-run on 1.9 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.9--1.10/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.10'" to load this file. \quit
