#!/usr/bin/env python3
"""Another user's sign-in while 300 wrong current passwords are posted to /account/password
at once from one (stolen) session: what the per-account lockout and the bounded password queue
protect (issue 14, item 8).

Usage: scripts/measure-password-burst.py BINARY [PORT] [alone]
  BINARY  a built castellan (cargo build --release: target/release/castellan)
  alone   only time 40 sign-ins of the other user, without the burst
Starts the server on a fresh SQLite file in a temporary directory with default settings."""
import http.cookiejar, os, re, statistics, subprocess, sys, tempfile, threading, time, urllib.parse, urllib.request

BIN = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 18181
BASE = f"http://127.0.0.1:{PORT}"
tmp = tempfile.mkdtemp()
env = dict(os.environ, CASTELLAN_LISTEN=f"127.0.0.1:{PORT}", CASTELLAN_ISSUER=BASE,
           CASTELLAN_DATABASE_URL=f"sqlite://{tmp}/c.db?mode=rwc", CASTELLAN_LOG="error")
PW = "correct horse battery staple"
for email in ["a@example.com", "b@example.com"]:
    subprocess.run([BIN, "user", "create", "--email", email, "--password-stdin"], input=PW.encode(), env=env, check=True, capture_output=True)
server = subprocess.Popen([BIN, "serve"], env=env)
time.sleep(1.5)

def browser():
    jar = http.cookiejar.CookieJar()
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k): return None
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)

def csrf(page):
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

def post(opener, path, fields):
    data = urllib.parse.urlencode(fields).encode()
    try:
        r = opener.open(urllib.request.Request(BASE + path, data=data))
        return r.status
    except urllib.error.HTTPError as e:
        return e.code

def login(email):
    b = browser()
    page = b.open(BASE + "/login").read().decode()
    t = time.perf_counter()
    status = post(b, "/login", {"csrf_token": csrf(page), "email": email, "password": PW})
    return b, status, (time.perf_counter() - t) * 1000

try:
    if len(sys.argv) > 3 and sys.argv[3] == "alone":
        xs = sorted(login("b@example.com")[2] for _ in range(40))
        print(f"alone: median {statistics.median(xs):.1f} ms  p10 {xs[4]:.1f}  p90 {xs[35]:.1f}")
        raise SystemExit
    base = [login("b@example.com")[2] for _ in range(10)]
    thief, st, _ = login("a@example.com")
    assert st == 303, st
    token = csrf(thief.open(BASE + "/account").read().decode())
    statuses = []
    def guess(i):
        statuses.append(post(thief, "/account/password", {"csrf_token": token, "current_password": f"guess {i}", "password": "new passphrase 1234"}))
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(300)]
    t0 = time.perf_counter()
    for t in threads: t.start()
    during = []
    while any(t.is_alive() for t in threads) and len(during) < 10:
        during.append(login("b@example.com")[2])
    for t in threads: t.join()
    burst = (time.perf_counter() - t0) * 1000
    counts = {s: statuses.count(s) for s in set(statuses)}
    print(f"B sign-in alone: median {statistics.median(base):.1f} ms (10)")
    print(f"B sign-in during the burst: median {statistics.median(during):.1f} ms, max {max(during):.1f} ms ({len(during)})")
    print(f"300 guesses answered in {burst:.0f} ms; statuses {counts}")
finally:
    server.terminate(); server.wait()
