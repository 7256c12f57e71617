-- Upgrade workflow 1.5 -> 1.6 (ALTER EXTENSION workflow UPDATE TO '1.6').
-- Assembled from the files listed in src/sql/upgrade/1.5--1.6.list: parts of
-- the 1.6 install script that can be re-run on 1.5 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.5--1.6/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.6'" to load this file. \quit
