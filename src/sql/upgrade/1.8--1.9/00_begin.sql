-- Upgrade workflow 1.8 -> 1.9 (ALTER EXTENSION workflow UPDATE TO '1.9').
-- Assembled from the files listed in src/sql/upgrade/1.8--1.9.list: parts of
-- the 1.9 install script that can be re-run on 1.8 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.8--1.9/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.9'" to load this file. \quit
