#!/usr/bin/env bash
# What the test suite needs on this kind of machine (Debian, PostgreSQL and MariaDB installed), set up
# when missing: both servers started if they are down, Debian's chromium installed for the browser
# test, Debian's pgbouncer installed for the pooler tests, Debian's clickhouse-server and zookeeper
# installed for the ClickHouse tests (the tests start their own PgBouncer, ClickHouse and ZooKeeper
# processes; the system services are never used). Anything that cannot be set up fails the run here,
# loudly: database tests never skip.
# `npm test` runs this first; LOCKSTEP_TEST_PG_URL / LOCKSTEP_TEST_MYSQL_URL point the tests at
# other servers (then those are only checked, never started); LOCKSTEP_TEST_CHROMIUM,
# LOCKSTEP_TEST_PGBOUNCER, LOCKSTEP_TEST_CLICKHOUSE (a clickhouse-server) and LOCKSTEP_TEST_ZOOKEEPER
# (a zkServer.sh) to other binaries (then those are only checked, never installed).
set -euo pipefail

say() { echo "test-env: $*" >&2; }
fatal() { say "FATAL: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else return 1; fi
}

wait_for() { # name, probe command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  fatal "$name is not reachable after 60 s; the tests need it (see DEVELOPERS.md, \"Services\")"
}

pg_probe() { psql "${LOCKSTEP_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}" -tAc 'SELECT 1'; }
if ! pg_probe >/dev/null 2>&1; then
  [ -z "${LOCKSTEP_TEST_PG_URL:-}" ] || fatal "PostgreSQL at \$LOCKSTEP_TEST_PG_URL is not reachable"
  command -v pg_ctlcluster >/dev/null || fatal "PostgreSQL is down and not installed (pg_ctlcluster missing)"
  say "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi
wait_for PostgreSQL pg_probe

mysql_probe() {
  if [ -n "${LOCKSTEP_TEST_MYSQL_URL:-}" ]; then
    node -e "require('mysql2/promise').createConnection(process.argv[1]).then(c=>c.end())" "$LOCKSTEP_TEST_MYSQL_URL"
  else
    mariadb -h 127.0.0.1 -u root -e 'SELECT 1' test
  fi
}
if ! mysql_probe >/dev/null 2>&1; then
  [ -z "${LOCKSTEP_TEST_MYSQL_URL:-}" ] || fatal "MySQL at \$LOCKSTEP_TEST_MYSQL_URL is not reachable"
  [ -x /usr/sbin/mariadbd ] || fatal "MariaDB is down and not installed (/usr/sbin/mariadbd missing)"
  say "starting MariaDB"
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
wait_for MariaDB mysql_probe

# A Debian package's binary, installed when missing (as root, updating the package lists if the
# first try fails); a binary named by an environment variable is only checked.
need_binary() { # binary, package, what it is for, the variable that may name another binary
  local binary=$1 package=$2 purpose=$3 variable=$4
  [ -x "$binary" ] && return 0
  [ -z "${!variable:-}" ] || fatal "\$$variable ($binary) is not executable"
  say "installing Debian's $package for $purpose"
  { as_root apt-get install -y --no-install-recommends "$package" >/dev/null 2>&1 ||
    { as_root apt-get update >/dev/null 2>&1 &&
      as_root apt-get install -y --no-install-recommends "$package" >/dev/null 2>&1; }; } || true
  [ -x "$binary" ] || fatal "$binary is missing and could not be installed (apt-get install $package, as root)"
}

# The status page's browser test drives Debian's Chromium (there is no browser download here).
need_binary "${LOCKSTEP_TEST_CHROMIUM:-/usr/bin/chromium}" chromium "the browser test (a minute or two)" LOCKSTEP_TEST_CHROMIUM
# The pooler tests start their own PgBouncer instances (test/helpers/pgbouncer.ts); only the binary
# is needed here.
need_binary "${LOCKSTEP_TEST_PGBOUNCER:-/usr/sbin/pgbouncer}" pgbouncer "the pooler tests" LOCKSTEP_TEST_PGBOUNCER
# The ClickHouse tests start their own single nodes, and a cluster of two nodes with a standalone
# ZooKeeper (test/helpers/clickhouse.ts); only the binaries are needed here.
need_binary "${LOCKSTEP_TEST_CLICKHOUSE:-/usr/sbin/clickhouse-server}" clickhouse-server "the ClickHouse tests" LOCKSTEP_TEST_CLICKHOUSE
need_binary "${LOCKSTEP_TEST_ZOOKEEPER:-/usr/share/zookeeper/bin/zkServer.sh}" zookeeper "the ClickHouse cluster tests" LOCKSTEP_TEST_ZOOKEEPER
# The schema-file tests run the dump tools, as dbmate does; the URL tests make a TLS certificate.
need_binary "${LOCKSTEP_TEST_PG_DUMP:-/usr/bin/pg_dump}" postgresql-client "the schema-file tests" LOCKSTEP_TEST_PG_DUMP
need_binary "${LOCKSTEP_TEST_MARIADB_DUMP:-/usr/bin/mariadb-dump}" mariadb-client "the schema-file tests" LOCKSTEP_TEST_MARIADB_DUMP
need_binary "${LOCKSTEP_TEST_SQLITE3:-/usr/bin/sqlite3}" sqlite3 "the schema-file tests" LOCKSTEP_TEST_SQLITE3
need_binary "${LOCKSTEP_TEST_OPENSSL:-/usr/bin/openssl}" openssl "the TLS URL tests" LOCKSTEP_TEST_OPENSSL
say "PostgreSQL, MariaDB, chromium, pgbouncer, clickhouse-server, zookeeper and the dump tools are ready"
