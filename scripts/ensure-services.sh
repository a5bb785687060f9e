#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on loopback for the test suite.
# Starts them when installed but stopped; says in one line what is missing otherwise.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up || { echo "make test needs PostgreSQL on 127.0.0.1:5432 (apt-get install postgresql), and it is not running." >&2; exit 1; }
fi

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
  fi
  redis_up || { echo "make test needs Redis on 127.0.0.1:6379 (apt-get install redis-server), and it is not running." >&2; exit 1; }
fi

# The suite's database: created once, test databases are made from it by pytest-django.
db_user=${PGUSER:-postgres}
if ! psql -h 127.0.0.1 -U "$db_user" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='mailroom'" | grep -q 1; then
  createdb -h 127.0.0.1 -U "$db_user" mailroom
fi
