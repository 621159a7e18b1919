#!/usr/bin/env bash
# The database roles of docker-compose.yml, made when the postgres container first creates
# its data directory (/docker-entrypoint-initdb.d). Safe to run again by hand on an
# existing database, to move it to these roles:
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/10-bankside-roles.sh
#
# - bankside_owner owns the database's tables and runs the migrations (the `migrate`
#   service): only it can change the schema, or drop or disable the audit log's triggers.
# - bankside_app is what web, worker and beat connect as: it reads and writes rows
#   (SELECT, INSERT, UPDATE, DELETE), no more. It owns nothing, so the triggers that keep
#   the audit log append-only hold against it.
# - bankside_partitions (no login) owns the tables partitioned by month (the outcome feed
#   and the delivery attempts, migration notifications/0016), and may create tables:
#   bankside_app is a member, so that beat makes their months ahead and drops expired
#   ones; bankside_owner is one too, so that migrations still change them.
set -euo pipefail

: "${BANKSIDE_OWNER_PASSWORD:?set BANKSIDE_OWNER_PASSWORD}"
: "${BANKSIDE_APP_PASSWORD:?set BANKSIDE_APP_PASSWORD}"
db="${POSTGRES_DB:-bankside}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "$db" \
  -v db="$db" -v owner_password="$BANKSIDE_OWNER_PASSWORD" \
  -v app_password="$BANKSIDE_APP_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE bankside_owner LOGIN PASSWORD %L', :'owner_password')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bankside_owner') \gexec
SELECT format('CREATE ROLE bankside_app LOGIN PASSWORD %L', :'app_password')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bankside_app') \gexec
SELECT 'CREATE ROLE bankside_partitions NOLOGIN'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bankside_partitions') \gexec
ALTER ROLE bankside_owner NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE bankside_app NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE bankside_partitions NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
GRANT bankside_partitions TO bankside_app, bankside_owner;

ALTER DATABASE :"db" OWNER TO bankside_owner;
ALTER SCHEMA public OWNER TO bankside_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO bankside_app;
GRANT USAGE ON SCHEMA public TO bankside_app;
GRANT CREATE ON SCHEMA public TO bankside_partitions;

-- Tables made before these roles existed (a database moved to them) pass to the owner;
-- the month-partitioned ones and their months to bankside_partitions.
SELECT format('ALTER TABLE public.%I OWNER TO %I', c.relname,
    CASE WHEN c.relkind = 'p' OR c.relispartition THEN 'bankside_partitions'
    ELSE 'bankside_owner' END)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    AND pg_get_userbyid(c.relowner) <> CASE WHEN c.relkind = 'p' OR c.relispartition
      THEN 'bankside_partitions' ELSE 'bankside_owner' END \gexec
SELECT format('ALTER SEQUENCE public.%I OWNER TO bankside_owner', s.sequencename)
  FROM pg_sequences s WHERE s.schemaname = 'public' AND s.sequenceowner <> 'bankside_owner'
    AND NOT EXISTS (SELECT FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
      WHERE d.objid = format('public.%I', s.sequencename)::regclass AND t.relkind = 'p') \gexec
SELECT format('ALTER FUNCTION %s OWNER TO bankside_owner', p.oid::regprocedure)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> 'bankside_owner' \gexec

-- Rows only, on every table there is and every table the migrations will make.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO bankside_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO bankside_app;
ALTER DEFAULT PRIVILEGES FOR ROLE bankside_owner IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bankside_app;
ALTER DEFAULT PRIVILEGES FOR ROLE bankside_owner IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO bankside_app;
SQL
