"""Runs ../shared/bench/bench.py with its three Python-driven scenarios (refresh, flow_sso,
flow_login) handed to the compiled driver (this directory, `cargo build --release`).
Everything else -- oha scenarios, RSS and CPU sampling, start-up timing, the report -- is
bench.py's own. Called by `bench-python` as `patch.py /path/to/bench.py ARGS...`."""
import asyncio
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.environ.get("FLOWDRIVER", os.path.join(HERE, "target", "release", "flowdriver"))

bench_py = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.dirname(bench_py))
import bench  # noqa: E402  (the shared harness)


async def run_driver(ctx, scenario, conc, warmup, duration):
    a, d = ctx.a, ctx.disco
    cfg = {
        "scenario": scenario, "concurrency": conc, "warmup": warmup, "duration": duration,
        "authorization_endpoint": d["authorization_endpoint"], "token_endpoint": d["token_endpoint"],
        "client_id": a.client_id, "client_secret": a.client_secret, "redirect_uri": a.redirect_uri,
        "username": a.username, "password": a.password, "scope": a.scope, "rt_scope": a.rt_scope,
        "rt_auth_params": [p.split("=", 1) for p in (a.rt_auth_params or [])],
        "adapter": a.adapter, "login_field": a.login_field, "password_field": a.password_field,
        "consent_name": a.consent_name, "consent_value": a.consent_value,
    }
    proc = await asyncio.create_subprocess_exec(
        DRIVER, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(json.dumps(cfg).encode())
    if proc.returncode != 0:
        raise bench.FlowError(err.decode(errors="replace")[-500:])
    return json.loads(out)


async def scen_refresh(ctx, conc, warmup, duration):
    return await run_driver(ctx, "refresh", conc, warmup, duration)


async def scen_flow(ctx, conc, warmup, duration, sso):
    return await run_driver(ctx, "flow_sso" if sso else "flow_login", conc, warmup, duration)


if not os.access(DRIVER, os.X_OK):
    raise SystemExit(f"no flow driver at {DRIVER}: cd {HERE} && cargo build --release")
bench.scen_refresh = scen_refresh
bench.scen_flow = scen_flow
sys.argv = [bench_py] + sys.argv[2:]
bench.main()
