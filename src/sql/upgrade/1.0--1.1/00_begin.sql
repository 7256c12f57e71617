-- Upgrade workflow 1.0 -> 1.1 (ALTER EXTENSION workflow UPDATE TO '1.1').
-- Assembled from the files listed in src/sql/upgrade/1.0--1.1.list: parts of
-- the 1.1 install script that are new or can be re-run as they are (CREATE
-- OR REPLACE), and the deltas in src/sql/upgrade/1.0--1.1/ for what cannot.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.1'" to load this file. \quit
