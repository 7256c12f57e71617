-- Upgrade workflow 1.6 -> 1.7 (ALTER EXTENSION workflow UPDATE TO '1.7').
-- Assembled from the files listed in src/sql/upgrade/1.6--1.7.list: parts of
-- the 1.7 install script that can be re-run on 1.6 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.6--1.7/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.7'" to load this file. \quit
