#!/usr/bin/env python3
"""Start-up time and idle memory of a release build, on an existing database.

Usage: cargo build --release && python3 scripts/measure-startup.py [runs]

Measures, for each run, the time from spawning `castellan serve` to the first 200 answer to
GET /.well-known/openid-configuration (polling the port every millisecond), then the resident
set size (VmRSS) one second later. The database is created and migrated once beforehand, so
the figures are for an existing database (with its signing key).
"""
import os, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "castellan")
PORT = 18181
runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15

with tempfile.TemporaryDirectory() as tmp:
    env = dict(os.environ, CASTELLAN_LISTEN=f"127.0.0.1:{PORT}", CASTELLAN_LOG="warn",
               CASTELLAN_DATABASE_URL=f"sqlite://{tmp}/castellan.db?mode=rwc")
    # First start creates the database, migrates and generates the key.
    subprocess.run([BIN, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    first = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    first.terminate(); first.wait()
    times, rss = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", PORT), timeout=0.05)
                s.sendall(b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                head = s.recv(20)
                s.close()
                if head.startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                time.sleep(0.001)
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(1.0)
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    rss.append(int(line.split()[1]) / 1024)
        p.terminate(); p.wait()

print(f"runs: {runs}")
print(f"start to first discovery answer: median {statistics.median(times):.1f} ms "
      f"(min {min(times):.1f}, max {max(times):.1f})")
print(f"idle RSS one second after start: median {statistics.median(rss):.1f} MB (max {max(rss):.1f})")
