-- The C++ module loads and answers.
SELECT workflow.version();
SELECT extname, extversion FROM pg_extension WHERE extname = 'workflow';
