#!/usr/bin/env bash
# Benchmarks castellan with the shared harness (../shared/bench) through `run.sh custom`:
# a fresh SQLite database, production argon2id parameters, the client and user provisioned
# through the CLI. SEED=1 fills the database with a million rows per table first.
#   CASTELLAN=target/release/castellan CASTELLAN_PORT=4200 bench/run-castellan.sh [extra bench.py args]
#   DRY=1 ...   provision and print the bench command without running it
set -euo pipefail
export TOOLS=${TOOLS:-/tmp/benchtools}
PY=${PY:-$TOOLS/benchvenv/bin/python}
BENCH=${BENCH:-/work/shared/bench}
SRC=${CASTELLAN:-/work/main/target/release/castellan}
PORT=${CASTELLAN_PORT:-4200}
work=$(mktemp -d "${BENCH_TMP:-/tmp}/castellan-bench.XXXXXX")  # BENCH_TMP=/dev/shm: the database on tmpfs, as run.sh glewlwyd does
cp "$SRC" "$work/castellan"          # snapshot: a rebuild during the run cannot swap the binary
C=$work/castellan
unset CASTELLAN_CONFIG ${!CASTELLAN_PASSWORD__*} 2>/dev/null || true
# DB_URL=postgres://... runs on PostgreSQL instead (the database must exist and be empty).
export CASTELLAN_DATABASE_URL="${DB_URL:-sqlite://$work/castellan.db?mode=rwc}"
STORE=sqlite; [ -n "${DB_URL:-}" ] && STORE=postgres
export CASTELLAN_LISTEN="127.0.0.1:$PORT" CASTELLAN_ISSUER="http://127.0.0.1:$PORT"
export CASTELLAN_LOG=${CASTELLAN_LOG:-warn}
# production argon2id defaults, stated explicitly
export CASTELLAN_PASSWORD__ARGON2_MEMORY_KIB=19456 CASTELLAN_PASSWORD__ARGON2_ITERATIONS=2 \
       CASTELLAN_PASSWORD__ARGON2_PARALLELISM=1
# The per-address login limit counts failed sign-ins only (since issue 16), so the benchmark's
# logins from one address run at the default (60 failures a minute). LOGIN_PER_MINUTE=N sets it.
if [ -n "${LOGIN_PER_MINUTE:-}" ]; then export CASTELLAN_RATE_LIMIT__LOGIN_PER_MINUTE=$LOGIN_PER_MINUTE; fi
if ! out=$("$C" migrate 2>&1); then
  case "$out" in
  *"unknown field \`login_per_minute\`"*)  # a binary built before the limiter: nothing to lift
    unset CASTELLAN_RATE_LIMIT__LOGIN_PER_MINUTE; "$C" migrate >/dev/null ;;
  *) echo "$out" >&2; exit 1 ;;
  esac
fi
# SEED=1: fill the database first (1,000,000 users, refresh tokens, audit events).
if [ -n "${SEED:-}" ]; then python3 "$(cd "$(dirname "$0")/.." && pwd)/scripts/seed.py" "$CASTELLAN_DATABASE_URL"; fi
"$C" client create --name bench --redirect-uri http://127.0.0.1:8999/callback \
  --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials \
  --scope "openid email profile offline_access" --json > "$work/client.json"
CID=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$work/client.json")
CSECRET=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$work/client.json")
printf '%s' load-test-passphrase-42 | "$C" user create --email bench@example.test --password-stdin >/dev/null
# The commit of the checkout the binary sits in; a binary copied elsewhere (/tmp, for an A/B)
# is named by REV=… or, failing that, by its path and the checkout this script belongs to.
REV=${REV:-$(git -C "$(dirname "$SRC")" rev-parse --short HEAD 2>/dev/null \
  || echo "? ($SRC; this script's checkout at $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo '?'))")}
cmd=("$BENCH/run.sh" custom -- --name "castellan${DB_URL:+-postgres}${SEED:+-seeded}${NAME_SUFFIX:-}"
  --server-version "castellan $REV; $STORE; argon2id m=19456 t=2 p=1; login_per_minute=${CASTELLAN_RATE_LIMIT__LOGIN_PER_MINUTE:-default}${CASTELLAN_KEY_ENCRYPTION_KEY:+; key-encryption key set}"
  --discovery "http://127.0.0.1:$PORT/.well-known/openid-configuration"
  --client-id "$CID" --client-secret "$CSECRET" --redirect-uri http://127.0.0.1:8999/callback
  --username bench@example.test --password load-test-passphrase-42
  --adapter form --login-field email --password-field password --consent-name decision --consent-value allow
  --scope "openid email profile" --rt-scope openid --rt-auth-params
  --server-cmd "$C serve" --server-log /tmp/castellan-bench.log "$@")
if [ -n "${DRY:-}" ]; then printf '%q ' "${cmd[@]}"; echo; echo "db: $work"; exit 0; fi
exec "${cmd[@]}"
