#!/usr/bin/env bash
# Where the instructions go on one scenario: runs the release server under
# `valgrind --tool=callgrind` and drives it with the shared harness's bench.py (refresh by default),
# then prints the inclusive top of `callgrind_annotate`. Instruction counts do not depend on what
# else the machine is doing, so two profiles compare even on a busy machine.
#   cargo build --release && scripts/profile-callgrind.sh [refresh|flow_sso|userinfo|introspection] [seconds]
# Needs valgrind and python3 with aiohttp (`pip install aiohttp`). NO_VALGRIND=1 runs the same
# scenario on the plain server at CONC (default 4) for a quick throughput check.
set -euo pipefail
SCEN=${1:-refresh}
SECS=${2:-20}
BENCH=${BENCH:-/work/shared/bench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/castellan-profile.XXXXXX)
cp "${BIN:-$ROOT/target/release/castellan}" "$work/castellan"
C=$work/castellan
PORT=${PORT:-4290}
unset CASTELLAN_CONFIG
export CASTELLAN_DATABASE_URL="sqlite://$work/castellan.db?mode=rwc"
export CASTELLAN_LISTEN="127.0.0.1:$PORT" CASTELLAN_ISSUER="http://127.0.0.1:$PORT" CASTELLAN_LOG=warn
export CASTELLAN_RATE_LIMIT__LOGIN_PER_MINUTE=0
"$C" migrate >/dev/null
"$C" client create --name profile --redirect-uri http://127.0.0.1:8999/callback --skip-consent \
  --scope "openid email profile offline_access" --json > "$work/client.json"
CID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$work/client.json")
CSECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$work/client.json")
printf '%s' profile-password-123 | "$C" user create --email profile@example.test --password-stdin >/dev/null
if [ -n "${NO_VALGRIND:-}" ]; then
  ${WRAP:-} "$C" serve > "$work/server.log" 2>&1 &
else
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$C" serve \
    > "$work/server.log" 2>&1 &
fi
VG=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2
done
python3 "$BENCH/bench.py" --name profile --server-pid "$VG" --no-openssl \
  --discovery "http://127.0.0.1:$PORT/.well-known/openid-configuration" \
  --client-id "$CID" --client-secret "$CSECRET" --redirect-uri http://127.0.0.1:8999/callback \
  --username profile@example.test --password profile-password-123 \
  --scope "openid email profile" --rt-scope openid --rt-auth-params \
  --scenarios "$SCEN" --concurrency "${CONC:-4}" --duration "$SECS" --warmup 2 --out "$work" \
  > "$work/bench.log" 2>&1 || { echo "bench failed: $work/bench.log" >&2; }
kill -INT "$VG"; wait "$VG" || true
grep -E "req|flows|/s" "$work/bench.log" | tail -5 || true
if [ -z "${NO_VALGRIND:-}" ]; then
  callgrind_annotate --inclusive=yes "$work/callgrind.out" 2>/dev/null | head -60
  echo "profile: $work/callgrind.out"
fi
