#!/usr/bin/env python3
"""Fill a Castellan database with many rows, to check that cost stays flat as the store grows.

Usage:
  python3 scripts/seed.py DATABASE_URL [--users N] [--refresh N] [--audit N]

DATABASE_URL is the server's: sqlite://PATH?mode=rwc or postgres://USER@HOST/DB. The schema
is created first with `castellan migrate` (target/release/castellan, else target/debug).
Defaults: 1,000,000 users, 1,000,000 refresh tokens (90 % expired, as on a long-running
server), 1,000,000 audit events one every 10 s over the last 116 days (a fifth past the default
90-day retention). Rows are generated inside the database (recursive CTE on SQLite,
generate_series on PostgreSQL), so a million rows take seconds, not minutes. Seeded users
have an unusable password hash; seeded ids start with `seed`.
"""
import argparse, os, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2VlZHNlZWRzZWVk$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

def castellan():
    for p in ("release", "debug"):
        b = os.path.join(ROOT, "target", p, "castellan")
        if os.path.exists(b):
            return b
    sys.exit("build castellan first (cargo build --release)")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--refresh", type=int, default=1_000_000)
    ap.add_argument("--audit", type=int, default=1_000_000)
    a = ap.parse_args()
    env = dict(os.environ, CASTELLAN_DATABASE_URL=a.url)
    subprocess.run([castellan(), "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    now = int(time.time())
    t0 = time.time()
    if a.url.startswith("sqlite:"):
        seed_sqlite(a, now)
    else:
        seed_postgres(a, now)
    print(f"seeded {a.users} users, {a.refresh} refresh tokens, {a.audit} audit events in {time.time() - t0:.1f} s")

def client_sql(now):
    return ("INSERT INTO clients (id, secret_hash, name, redirect_uris, post_logout_redirect_uris, grant_types, "
            "scopes, auth_method, public, skip_consent, introspect_any, created_at, updated_at) VALUES "
            f"('seed-client', NULL, 'seed', '[]', '[]', 'authorization_code refresh_token', 'openid', 'none', "
            f"TRUE, FALSE, FALSE, {now}, {now})")

def seed_sqlite(a, now):
    import sqlite3
    path = a.url.split("://", 1)[1].split("?", 1)[0]
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(client_sql(now))
    db.execute(f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {a.users})
        INSERT INTO users (id, email, email_lower, email_verified, password_hash, name, roles, disabled,
                           failed_logins, created_at, updated_at)
        SELECT printf('seed%04x-0000-4000-8000-%012d', i / 100000000, i), 'seed' || i || '@seed.test',
               'seed' || i || '@seed.test', 1, '{HASH}', 'Seed ' || i, 'user', 0, 0, {now} - i, {now} - i FROM n""")
    db.execute(f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {a.refresh})
        INSERT INTO refresh_tokens (token_hash, family_id, parent_hash, client_id, user_id, scope, auth_time,
                                    amr, sid, created_at, expires_at, rotated_at, revoked)
        SELECT printf('%064d', i), 'seedfam' || i, NULL, 'seed-client',
               printf('seed%04x-0000-4000-8000-%012d', 0, 1 + (i - 1) % {max(a.users, 1)}), 'openid', {now} - 86400,
               'pwd', NULL, {now} - 86400,
               CASE WHEN i % 10 = 0 THEN {now} + 86400 ELSE {now} - 3600 END, NULL, 0 FROM n""")
    db.execute(f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {a.audit})
        INSERT INTO audit_events (at, kind, actor, user_id, client_id, ip, detail)
        SELECT {now} - i * 10, 'seed_event', NULL, NULL, NULL, '192.0.2.1', '' FROM n""")
    db.commit()
    db.execute("ANALYZE")
    db.close()

def seed_postgres(a, now):
    if not shutil.which("psql"):
        sys.exit("psql is needed for PostgreSQL")
    sql = f"""
    {client_sql(now)};
    INSERT INTO users (id, email, email_lower, email_verified, password_hash, name, roles, disabled,
                       failed_logins, created_at, updated_at)
    SELECT format('seed%s-0000-4000-8000-%s', lpad(to_hex(i / 100000000), 4, '0'), lpad(i::text, 12, '0')),
           'seed' || i || '@seed.test', 'seed' || i || '@seed.test', TRUE, '{HASH}', 'Seed ' || i, 'user', FALSE, 0,
           {now} - i, {now} - i FROM generate_series(1, {a.users}) AS i;
    INSERT INTO refresh_tokens (token_hash, family_id, parent_hash, client_id, user_id, scope, auth_time,
                                amr, sid, created_at, expires_at, rotated_at, revoked)
    SELECT lpad(i::text, 64, '0'), 'seedfam' || i, NULL, 'seed-client',
           format('seed0000-0000-4000-8000-%s', lpad((1 + (i - 1) % {max(a.users, 1)})::text, 12, '0')), 'openid',
           {now} - 86400, 'pwd', NULL, {now} - 86400,
           CASE WHEN i % 10 = 0 THEN {now} + 86400 ELSE {now} - 3600 END, NULL, FALSE
    FROM generate_series(1, {a.refresh}) AS i;
    INSERT INTO audit_events (at, kind, actor, user_id, client_id, ip, detail)
    SELECT {now} - i * 10, 'seed_event', NULL, NULL, NULL, '192.0.2.1', ''
    FROM generate_series(1, {a.audit}) AS i;
    ANALYZE;
    """
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", a.url], input=sql, text=True, check=True)
    # Flush the bulk load's dirty pages now, so that the checkpoint it triggers does not land in
    # the middle of a benchmark (needs superuser or pg_checkpoint; skipped with a note otherwise).
    if subprocess.run(["psql", "-q", "-c", "CHECKPOINT", a.url]).returncode != 0:
        print("note: CHECKPOINT after the load was refused; the first benchmark cells may see it")

if __name__ == "__main__":
    main()
