#!/usr/bin/env bash
# Two Castellan instances and a Redis on one PostgreSQL database, and a sign-in across them
# (README: "Running several instances"):
#   scripts/two-instances.sh
# Instance A serves the login pages; the code exchange, UserInfo and a refresh happen at
# instance B; then failed sign-ins alternate between them until Redis's shared count refuses
# one. Both instances use A's URL as the issuer, standing in for a load balancer's.
#
# Needs PostgreSQL where the user may create databases (PG_URL, default
# postgres://postgres@127.0.0.1:5432) and redis-server on PATH. CASTELLAN=path picks the binary
# (default target/release/castellan, else target/debug/castellan, built if neither exists).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
C=${CASTELLAN:-}
if [ -z "$C" ]; then
  if [ -x target/release/castellan ]; then C=target/release/castellan
  else [ -x target/debug/castellan ] || cargo build -q; C=target/debug/castellan; fi
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PA=$(free_port); PB=$(free_port); RP=$(free_port)
DB=castellan_two_$$_$(date +%s)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -q "$PG_URL/postgres" -c "CREATE DATABASE $DB" >/dev/null
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)

export CASTELLAN_DATABASE_URL="$PG_URL/$DB"
export CASTELLAN_ISSUER="http://127.0.0.1:$PA"
export CASTELLAN_REDIS_URL="redis://127.0.0.1:$RP"
CASTELLAN_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export CASTELLAN_KEY_ENCRYPTION_KEY
export CASTELLAN_RATE_LIMIT__LOGIN_PER_MINUTE=3
export CASTELLAN_LOG=${CASTELLAN_LOG:-warn}

"$C" migrate >/dev/null
"$C" client create --name two-instances --redirect-uri http://127.0.0.1:9/cb \
  --scope "openid email offline_access" --skip-consent --json >"$work/client.json"
printf '%s' 'two instances, one database' \
  | "$C" user create --email two@example.test --password-stdin >/dev/null

CASTELLAN_LISTEN=127.0.0.1:$PA "$C" serve >"$work/a.log" 2>&1 & pids+=($!)
CASTELLAN_LISTEN=127.0.0.1:$PB "$C" serve >"$work/b.log" 2>&1 & pids+=($!)
for port in "$PA" "$PB"; do
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
done
echo "instance A: http://127.0.0.1:$PA  instance B: http://127.0.0.1:$PB  Redis: 127.0.0.1:$RP"
echo "database: $PG_URL/$DB"
python3 scripts/sign-in-across.py --a "http://127.0.0.1:$PA" --b "http://127.0.0.1:$PB" \
  --client "$work/client.json" --email two@example.test --password 'two instances, one database'
