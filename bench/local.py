"""Warm-request overhead of `lambdaship serve` and `run` (sandboxed) vs calling the handler in-process,
and the cold start of a sandboxed image runtime.

    python bench/local.py [--requests 2000] [--write]

On a copy of examples/chalice-app built on lambdaship's offline base (Python 3.11; a throwaway
local stack holds the base), GET /health:
  * direct:   the Chalice app object called in a loop by the base's Python, inside the sandbox,
              with the target's dependencies (the same interpreter and code the workers run)
  * engine:   Engine.invoke (sandboxed worker + Runtime API emulator), no HTTP gateway
  * serve:    a real HTTP client (httpx, keep-alive) → `lambdaship serve` → sandboxed worker → back
  * rie:      the same through the RIE endpoint (POST /2015-03-31/functions/function/invocations)
  * run:      httpx → `lambdaship run <layout>` → the image's own runtime in the sandbox
plus `serve` start-up to first answer and the cold start of a fresh sandboxed runtime of the
image (rootfs cached) to its first answer. --write puts the text into docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import parse_args, publish

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "examples" / "chalice-app"
sys.path.insert(0, str(REPO / "src"))

EVENT = {
    "resource": "/health", "path": "/health", "httpMethod": "GET",
    "headers": {"Host": "localhost"}, "multiValueHeaders": {"Host": ["localhost"]},
    "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
    "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/health", "httpMethod": "GET", "path": "/api/health", "stage": "api",
                       "requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}},
}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(name: str, ms: list[float]) -> dict:
    return {"name": name, "n": len(ms), "p50": pct(ms, 50), "p99": pct(ms, 99), "mean": statistics.fmean(ms)}


def bench_direct(n: int, spec: Any) -> list[float]:
    from lambdaship.local.engine import Engine

    code = f"""
import json, sys, time
sys.path.insert(0, "/var/task")
from app import app
class Ctx:
    aws_request_id = "x"; function_name = "f"; invoked_function_arn = "arn"; memory_limit_in_mb = 512
    def get_remaining_time_in_millis(self): return 30000
ev = json.loads({json.dumps(json.dumps(EVENT))})
ctx = Ctx()
for _ in range(200): app(ev, ctx)
out = []
for _ in range({n}):
    t = time.perf_counter(); r = app(ev, ctx); out.append((time.perf_counter() - t) * 1000)
    assert r["statusCode"] == 200
print(json.dumps(out))
"""
    with Engine() as engine:
        proc = engine.run_command(spec, ["python3", "-c", code], timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def bench_engine(n: int, spec: Any) -> list[float]:
    from lambdaship.local.engine import Engine

    payload = json.dumps(EVENT).encode()
    out = []
    with Engine(max_workers=1) as engine:
        for _ in range(200):
            engine.invoke(spec, payload)
        for _ in range(n):
            t = time.perf_counter()
            r = engine.invoke(spec, payload)
            out.append((time.perf_counter() - t) * 1000)
            assert r.ok
    return out


def _served(args: list[str]) -> tuple[Any, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lambdaship.cli", *args, "--port", "0", "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, proc.stdout.readline().split()[-1], t0


def bench_http(n: int, args: list[str], rie: bool) -> tuple[list[float], list[float], float]:
    import httpx

    proc, url, t0 = _served(args)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            while client.get("/health").status_code != 200:
                pass
            startup = time.perf_counter() - t0
            for _ in range(200):
                client.get("/health")
            http_ms, rie_ms = [], []
            body = json.dumps(EVENT).encode()
            for _ in range(n):  # interleaved, so both see the same machine load
                t = time.perf_counter()
                r = client.get("/health")
                http_ms.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
                if rie:
                    t = time.perf_counter()
                    r = client.post("/2015-03-31/functions/function/invocations", content=body)
                    rie_ms.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)
    return http_ms, rie_ms, startup


def bench_cold(image: str, runs: int = 7) -> list[dict]:
    from lambdaship.local.serve import cold_start

    cold_start(image)  # unpack + cache the rootfs (not timed)
    return [cold_start(image) for _ in range(runs)]


def prepare(work: Path) -> tuple[Path, Path, list]:
    """A copy of the example on the offline base (pushed to a throwaway registry), and its layout."""
    import re
    import shutil

    from lambdaship.local import stack
    from lambdaship.local.base import ensure_base

    state = stack.up(work / "stack")
    base_ref = ensure_base(state.registry.url)
    app = work / "chalice-app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    cfg = app / "lambdaship.toml"
    cfg.write_text(re.sub(r'(?m)^python = "3\.12"$', f'python = "3.11"\nbase_image = "{base_ref}"', cfg.read_text()))
    layout = work / "layout"
    subprocess.run([sys.executable, "-m", "lambdaship.cli", "build", "-C", str(app), "--out", str(layout)],
                   check=True, capture_output=True)
    return app, layout, [state]


def table(rows: list[dict], direct_p50: float, startups: dict[str, float], load: str) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, host Python {platform.python_version()}; "
        f"examples/chalice-app (on the offline base, Python 3.11) GET /health, {rows[0]['n']} warm requests "
        f"after 200 warm-up, one worker, every worker in the bubblewrap sandbox; load average {load} "
        "(other jobs shared the machine). The HTTP rows include the client's own cost (httpx).",
        "",
        "| path | p50 ms | p99 ms | mean ms | added over direct (p50) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        added = "—" if r["name"].startswith("direct") else f"{r['p50'] - direct_p50:+.3f} ms"
        lines.append(f"| {r['name']} | {r['p50']:.3f} | {r['p99']:.3f} | {r['mean']:.3f} | {added} |")
    lines += ["", "Target (issue 16): ≤ 2 ms p50 added per warm request through `serve` and `run`.", "",
              ", ".join(f"`{k}` start-up to first answer (caches warm): {v:.2f} s" for k, v in startups.items())
              + ".", "",
              "Reproduce: `python bench/local.py --requests 2000 --write`."]
    return "\n".join(lines)


def main() -> None:
    import tempfile

    args = parse_args(requests=2000)
    from lambdaship.config import load_project
    from lambdaship.local import stack
    from lambdaship.local.specs import project_spec

    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        work = Path(tmp)
        app, layout, _ = prepare(work)
        try:
            spec = project_spec(load_project(app).function())
            load0 = os.getloadavg()[0]
            direct = summary("direct in-process call (in the sandbox)", bench_direct(args.requests, spec))
            engine = summary("Engine.invoke (sandboxed worker + emulator)", bench_engine(args.requests, spec))
            http_ms, rie_ms, serve_start = bench_http(args.requests, ["serve", "-C", str(app), "--no-reload"], True)
            run_ms, _, run_start = bench_http(args.requests, ["run", str(layout), "-C", str(app)], False)
            cold = bench_cold(str(layout))
            load = f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        finally:
            stack.down(work / "stack")
    rows = [direct, engine, summary("HTTP GET through `serve` (httpx keep-alive)", http_ms),
            summary("RIE endpoint through `serve`", rie_ms), summary("HTTP GET through `run <layout>`", run_ms)]
    text = table(rows, direct["p50"], {"serve": serve_start, "run": run_start}, load)
    secs = sorted(c["seconds"] for c in cold)
    text += (f"\n\nCold start (a fresh runtime in the sandbox, {cold[0]['mode']}, rootfs cached) to the first "
             f"`GET /health` answer, {len(secs)} runs: median {statistics.median(secs):.3f} s "
             f"(min {secs[0]:.3f}, max {secs[-1]:.3f}); target ≤ 0.26 s.")
    publish(text, args.write, "local", "Local: warm request overhead of `serve` and `run` (sandboxed), cold start")


if __name__ == "__main__":
    main()
