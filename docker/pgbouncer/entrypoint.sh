#!/usr/bin/env bash
# PgBouncer in front of the postgres service, in transaction mode: a server connection is
# a client's for one transaction, then serves the next client's. bankside connects through
# it as bankside_app with DATABASE_POOLER=pgbouncer (no prepared statements, no server-side
# cursors, no session settings); migrations go to PostgreSQL directly (bankside_owner).
#
# Settings, from the environment (README "Scaling out" says how to size them):
# - PGBOUNCER_POOL_SIZE (20): server connections per database and user, the most
#   transactions running at once; keep it under PostgreSQL's max_connections;
# - PGBOUNCER_MAX_CLIENT_CONN (1000): connections from web threads and worker processes;
# - PGBOUNCER_RESERVE_POOL_SIZE (5): extra server connections for a client that has
#   waited PGBOUNCER_RESERVE_POOL_TIMEOUT seconds (3);
# - BANKSIDE_APP_PASSWORD: bankside_app's password, as in DATABASE_URL.
set -euo pipefail

: "${BANKSIDE_APP_PASSWORD:?set BANKSIDE_APP_PASSWORD}"
umask 077
quoted() { printf '"%s"' "${1//\"/\"\"}"; }
printf '%s %s\n' "$(quoted bankside_app)" "$(quoted "$BANKSIDE_APP_PASSWORD")" \
  > /run/pgbouncer/userlist.txt

cat > /run/pgbouncer/pgbouncer.ini <<INI
[databases]
* = host=${PGBOUNCER_SERVER_HOST:-postgres} port=${PGBOUNCER_SERVER_PORT:-5432}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
auth_type = scram-sha-256
auth_file = /run/pgbouncer/userlist.txt
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
reserve_pool_size = ${PGBOUNCER_RESERVE_POOL_SIZE:-5}
reserve_pool_timeout = ${PGBOUNCER_RESERVE_POOL_TIMEOUT:-3}
max_client_conn = ${PGBOUNCER_MAX_CLIENT_CONN:-1000}
; A client waits at most this long for a server connection, then gets an error.
query_wait_timeout = 60
; Server connections are renewed after an hour, and closed after 10 idle minutes.
server_lifetime = 3600
server_idle_timeout = 600
; Clients that psycopg2 is not (JDBC's) send it; harmless to ignore.
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
INI

exec pgbouncer /run/pgbouncer/pgbouncer.ini
