#!/bin/sh
# Patroni's post_bootstrap hook (argument: a superuser connection URL to the new primary): the
# role Temporal's persistence uses, with the password from its secret file.
set -eu
pw="$(cat /run/secrets/temporal_db_password)"
psql -v ON_ERROR_STOP=1 -v pw="$pw" "$1" <<'SQL'
SELECT format('CREATE ROLE temporal LOGIN CREATEDB PASSWORD %L', :'pw')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'temporal') \gexec
SQL
