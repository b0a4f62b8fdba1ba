#!/usr/bin/env bash
# Sign-in throughput by kind of authentication (issue 17): whole authorization-code flows per
# second at concurrency C with a password, a password and a TOTP code, and a passkey alone,
# measured by `examples/signin_bench.rs` against a release build on a fresh SQLite database,
# with production argon2id parameters. The issuer is on `localhost` (WebAuthn needs a domain).
# Each scenario runs twice: the whole code flow (authorization request to tokens), then the
# sign-in alone (login page to session, SIGNIN_ONLY=1). The passkey user and the TOTP users
# are fresh for each run (a passkey or TOTP user cannot register again by password alone).
#   CASTELLAN=target/release/castellan DRIVER=target/release/examples/signin_bench \
#     C=32 DURATION=8 TOTP_USERS=500 bench/second-factors.sh
set -euo pipefail
SRC=${CASTELLAN:-target/release/castellan}
DRIVER=${DRIVER:-target/release/examples/signin_bench}
PORT=${PORT:-4210}
C=${C:-32}
DURATION=${DURATION:-8}
TOTP_USERS=${TOTP_USERS:-500}
work=$(mktemp -d /tmp/castellan-2fa-bench.XXXXXX)
cp "$SRC" "$work/castellan"
cast=$work/castellan
export CASTELLAN_DATABASE_URL="sqlite://$work/castellan.db?mode=rwc"
export CASTELLAN_LISTEN="127.0.0.1:$PORT" CASTELLAN_ISSUER="http://localhost:$PORT"
export CASTELLAN_LOG=${CASTELLAN_LOG:-warn}
export CASTELLAN_PASSWORD__ARGON2_MEMORY_KIB=19456 CASTELLAN_PASSWORD__ARGON2_ITERATIONS=2 \
       CASTELLAN_PASSWORD__ARGON2_PARALLELISM=1
"$cast" migrate >/dev/null
"$cast" client create --name bench --redirect-uri http://127.0.0.1:8999/callback \
  --scope openid --skip-consent --json > "$work/client.json"
CID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$work/client.json")
CSECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$work/client.json")
users=(pw@bench.test pk@bench.test pk2@bench.test)
for i in $(seq 0 $((2 * TOTP_USERS - 1))); do users+=("totp$i@bench.test"); done
printf '%s\n' "${users[@]}" | xargs -P 2 -I{} sh -c \
  "printf load-test-passphrase-42 | '$cast' user create --email {} --password-stdin >/dev/null"
"$cast" serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
rev=$(git -C "$(dirname "$SRC")" rev-parse --short HEAD 2>/dev/null || echo '?')
for only in 0 1; do
  pk_user=pk@bench.test; [ "$only" = 1 ] && pk_user=pk2@bench.test
  for scenario in ${SCENARIOS:-password totp passkey}; do
    out=$(SIGNIN_ONLY=$only TOTP_OFFSET=$((only * TOTP_USERS)) PASSKEY_USER=$pk_user \
      "$DRIVER" "http://localhost:$PORT" "$CID" "$CSECRET" http://127.0.0.1:8999/callback \
      "$scenario" "$C" "$DURATION" "$TOTP_USERS")
    echo "{\"castellan\":\"$rev\",\"result\":$out}"
  done
done
