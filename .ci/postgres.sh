#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL for the session-store tests, then print
# the URL to use. Needs root and apt-get; prints nothing if it cannot set one up.
set -uo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then exit 0; fi
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 || exit 0
fi
cluster=$(pg_lsclusters --no-header 2>/dev/null | head -n 1)
if [ -z "$cluster" ]; then exit 0; fi
read -r version name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
  pg_ctlcluster "$version" "$name" start >/dev/null 2>&1 || exit 0
fi
for _ in $(seq 1 30); do
  su postgres -c "psql -p $port -tAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -p $port -tAc \"select 1 from pg_roles where rolname='tiermem'\"" | grep -q 1 \
  || su postgres -c "psql -p $port -c \"create role tiermem login superuser password 'tiermem'\"" >/dev/null
su postgres -c "psql -p $port -tAc \"select 1 from pg_database where datname='tiermem_test'\"" | grep -q 1 \
  || su postgres -c "createdb -p $port -O tiermem tiermem_test" >/dev/null
echo "postgresql://tiermem:tiermem@127.0.0.1:$port/tiermem_test"
