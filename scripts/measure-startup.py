"""Start-up time, alternated: `python3 scripts/measure-startup.py BINARY_A BINARY_B [ROUNDS]`.
Each round migrates a fresh SQLite file, starts `serve` and polls the discovery document every
millisecond until it answers; prints the median, minimum and maximum per binary."""
import subprocess, time, urllib.request, os, sys, tempfile, statistics
BINARIES = sys.argv[1:3]
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 10
res={}
for rnd in range(ROUNDS):
    for name in BINARIES:
        d=tempfile.mkdtemp()
        env=dict(os.environ, CASTELLAN_DATABASE_URL=f"sqlite://{d}/c.db?mode=rwc", CASTELLAN_LISTEN="127.0.0.1:4300", CASTELLAN_ISSUER="http://127.0.0.1:4300", CASTELLAN_LOG="warn")
        subprocess.run([name,"migrate"],env=env,capture_output=True)
        t=time.perf_counter()
        p=subprocess.Popen([name,"serve"],env=env,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:4300/.well-known/openid-configuration",timeout=1).read(); break
            except Exception: time.sleep(0.001)
        res.setdefault(name,[]).append((time.perf_counter()-t)*1000)
        p.terminate(); p.wait()
for k,v in res.items(): print(k, "median %.1f ms"%statistics.median(v), "min %.1f max %.1f"%(min(v),max(v)))
