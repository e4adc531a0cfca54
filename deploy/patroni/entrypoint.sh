#!/bin/sh
# Patroni's passwords from secret files, exported only into Patroni's own process (never part of
# the container's configuration), then Patroni itself.
set -eu
PATRONI_SUPERUSER_PASSWORD="$(cat /run/secrets/pg_superuser_password)"
PATRONI_REPLICATION_PASSWORD="$(cat /run/secrets/pg_replication_password)"
export PATRONI_SUPERUSER_PASSWORD PATRONI_REPLICATION_PASSWORD
exec /opt/patroni/bin/patroni /etc/patroni/patroni.yml
