-- survey_week_start reads a legacy zone name as the zone it links to (the
-- library does; the SQL definition is unchanged): its comment says so.
COMMENT ON FUNCTION workflow.survey_week_start(timestamptz, text) IS
  'The local Monday (a date) starting the week that contains the instant in the given time zone. An IANA zone name wins over a time zone abbreviation of the same spelling; a legacy name that tzdata 2024b made a link (CET, EET, MET, WET, EST, MST, HST, EST5EDT, CST6CDT, MST7MDT, PST8PDT) is read as the zone it links to, on every system (CET: Europe/Brussels, with its summer time); other strings are read as timezone() reads them.';
