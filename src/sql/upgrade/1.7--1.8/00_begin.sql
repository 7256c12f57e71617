-- Upgrade workflow 1.7 -> 1.8 (ALTER EXTENSION workflow UPDATE TO '1.8').
-- Assembled from the files listed in src/sql/upgrade/1.7--1.8.list: parts of
-- the 1.8 install script that can be re-run on 1.7 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.7--1.8/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.8'" to load this file. \quit
