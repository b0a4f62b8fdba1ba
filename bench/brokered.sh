#!/usr/bin/env bash
# The brokered flow (issue 18): whole authorization-code flows per second at concurrency C
# against Castellan A, signing in through its upstream provider `corp`, a second Castellan B on
# the same machine (release builds, fresh SQLite databases, production argon2id parameters).
# Scenarios, each by `examples/signin_bench.rs`:
#   password      A's own login page with a password (the reference);
#   brokered-sso  through B, where the browser has a session already: A's authorize, A's start
#                 of the upstream flow, B's authorize, A's callback (B's token endpoint, B's
#                 keys, the ID token checked), A's authorize again, A's token endpoint;
#   brokered      the same with a password sign-in at B in every flow.
#   CASTELLAN=target/release/castellan DRIVER=target/release/examples/signin_bench \
#     C=32 DURATION=8 bench/brokered.sh
set -euo pipefail
SRC=${CASTELLAN:-target/release/castellan}
DRIVER=${DRIVER:-target/release/examples/signin_bench}
A_PORT=${A_PORT:-4310}
B_PORT=${B_PORT:-4311}
C=${C:-32}
DURATION=${DURATION:-8}
work=$(mktemp -d /tmp/castellan-brokered-bench.XXXXXX)
cp "$SRC" "$work/castellan"
cast=$work/castellan
export CASTELLAN_LOG=${CASTELLAN_LOG:-warn}
export CASTELLAN_PASSWORD__ARGON2_MEMORY_KIB=19456 CASTELLAN_PASSWORD__ARGON2_ITERATIONS=2 \
       CASTELLAN_PASSWORD__ARGON2_PARALLELISM=1
# One address (this driver) begins every flow: the per-address limit on upstream starts is
# lifted for the measurement.
export CASTELLAN_RATE_LIMIT__LOGIN_PER_MINUTE=1000000
A=http://127.0.0.1:$A_PORT
B=http://127.0.0.1:$B_PORT
as_a() { CASTELLAN_DATABASE_URL="sqlite://$work/a.db?mode=rwc" CASTELLAN_LISTEN=127.0.0.1:$A_PORT CASTELLAN_ISSUER=$A "$cast" "$@"; }
as_b() { CASTELLAN_DATABASE_URL="sqlite://$work/b.db?mode=rwc" CASTELLAN_LISTEN=127.0.0.1:$B_PORT CASTELLAN_ISSUER=$B "$cast" "$@"; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
as_a migrate >/dev/null
as_b migrate >/dev/null
# B: the person, and A as its client (redirect URI: A's callback for `corp`).
printf load-test-passphrase-42 | as_b user create --email pw@bench.test --password-stdin >/dev/null
as_b client create --name castellan-a --redirect-uri "$A/login/upstream/corp/callback" \
  --scope "openid email profile" --skip-consent --json > "$work/b-client.json"
B_CID=$(json client_id < "$work/b-client.json")
B_SECRET=$(json client_secret < "$work/b-client.json")
# A: B as upstream `corp` (trusted for email: the first flow links B's pw@bench.test to A's,
# which the reference flow signs in to with its password), and an app.
printf '%s\n' "$B_SECRET" | as_a upstream create --id corp --kind oidc --name "Castellan B" \
  --issuer "$B" --client-id "$B_CID" --client-secret-stdin --trust-email >/dev/null
printf load-test-passphrase-42 | as_a user create --email pw@bench.test --password-stdin >/dev/null
as_a client create --name bench --redirect-uri http://127.0.0.1:8999/callback \
  --scope openid --skip-consent --json > "$work/a-client.json"
CID=$(json client_id < "$work/a-client.json")
CSECRET=$(json client_secret < "$work/a-client.json")
# exec: the background job is the server itself, so the trap's kill reaches it.
(as_a() { CASTELLAN_DATABASE_URL="sqlite://$work/a.db?mode=rwc" CASTELLAN_LISTEN=127.0.0.1:$A_PORT CASTELLAN_ISSUER=$A exec "$cast" "$@"; }; as_a serve) >"$work/a.log" 2>&1 &
a_pid=$!
(as_b() { CASTELLAN_DATABASE_URL="sqlite://$work/b.db?mode=rwc" CASTELLAN_LISTEN=127.0.0.1:$B_PORT CASTELLAN_ISSUER=$B exec "$cast" "$@"; }; as_b serve) >"$work/b.log" 2>&1 &
b_pid=$!
trap 'kill $a_pid $b_pid 2>/dev/null; wait $a_pid $b_pid 2>/dev/null; rm -rf "$work"' EXIT
for p in $A_PORT $B_PORT; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
done
# Our servers, not leftovers of another run on the same ports.
kill -0 $a_pid && kill -0 $b_pid
rev=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
for scenario in ${SCENARIOS:-password brokered-sso brokered}; do
  out=$(UPSTREAM=$B "$DRIVER" "$A" "$CID" "$CSECRET" http://127.0.0.1:8999/callback \
    "$scenario" "$C" "$DURATION")
  echo "{\"castellan\":\"$rev\",\"scenario\":\"$scenario\",\"result\":$out}"
done
