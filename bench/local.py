"""Warm-request overhead of `lambdaship serve` vs calling the handler in-process.

    python bench/local.py [--requests 2000] [--write]

Measures, on examples/chalice-app's GET /health:
  * direct:   the Chalice app object called in this process with a prepared API Gateway event
  * runtime:  RuntimeAPI.invoke (Runtime API emulator + a warm awslambdaric worker), no HTTP gateway
  * serve:    a real HTTP client (httpx, keep-alive) → `lambdaship serve` → worker → back
  * rie:      the same through the RIE endpoint (POST /2015-03-31/functions/function/invocations)
and `serve` start-up to first answer. --write puts the table into docs/benchmarks.md (Local section).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _docs import write_section

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


def bench_direct(n: int, pythonpath: list[str]) -> list[float]:
    code = f"""
import json, sys, time
sys.path[:0] = {pythonpath!r}
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
    proc = subprocess.run([sys.executable, "-c", code], cwd=APP, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def bench_runtime(n: int, pythonpath: list[str]) -> list[float]:
    from lambdaship.local.runtime_api import RuntimeAPI

    payload = json.dumps(EVENT).encode()
    out = []
    with RuntimeAPI("app.app", cwd=APP, pythonpath=pythonpath, max_workers=1) as api:
        for _ in range(200):
            api.invoke(payload)
        for _ in range(n):
            t = time.perf_counter()
            r = api.invoke(payload)
            out.append((time.perf_counter() - t) * 1000)
            assert r.ok
    return out


def bench_serve(n: int) -> tuple[list[float], list[float], float]:
    import httpx

    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lambdaship.cli", "serve", "-C", str(APP), "--port", "0",
                             "--no-reload", "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        url = proc.stdout.readline().split()[-1]
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                if client.get("/health").status_code == 200:
                    break
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
                t = time.perf_counter()
                r = client.post("/2015-03-31/functions/function/invocations", content=body)
                rie_ms.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)
    return http_ms, rie_ms, startup


def bench_cold(image: str, runs: int = 5) -> list[dict]:
    from lambdaship.local.serve import cold_start

    cold_start(image)  # unpack + cache the rootfs (not timed)
    return [cold_start(image) for _ in range(runs)]


def table(rows: list[dict], direct_p50: float, startup: float) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"examples/chalice-app GET /health, {rows[0]['n']} warm requests after 200 warm-up, one worker; "
        f"load average during the run {os.getloadavg()[0]:.1f} (other jobs shared the machine). "
        "The HTTP rows include the client's own cost (httpx).",
        "",
        "| path | p50 ms | p99 ms | mean ms | added over direct (p50) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        added = "—" if r["name"].startswith("direct") else f"{r['p50'] - direct_p50:+.3f} ms"
        lines.append(f"| {r['name']} | {r['p50']:.3f} | {r['p99']:.3f} | {r['mean']:.3f} | {added} |")
    lines += ["", "Target (issue 11): ≤ 2 ms p50 added per warm request through `serve`.",
              "", f"`serve` start-up to first answer (deps cached): {startup:.2f} s.", "",
              "Reproduce: `python bench/local.py --requests 2000 [--image LAYOUT|REF] --write`."]
    return "\n".join(lines)


def write_docs(text: str) -> None:
    write_section('local', 'Local: warm request overhead of `serve`', text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--image", help="also time a cold start of this image (layout or ref) to GET /health")
    args = ap.parse_args()
    from lambdaship.config import load_project
    from lambdaship.local.serve import host_pythonpath

    fn = load_project(APP).function()
    pythonpath = [str(p) for p in host_pythonpath(fn)[0]]
    direct = summary("direct in-process call", bench_direct(args.requests, pythonpath))
    runtime = summary("RuntimeAPI.invoke (emulator + awslambdaric)", bench_runtime(args.requests, pythonpath))
    http_ms, rie_ms, startup = bench_serve(args.requests)
    serve = summary("HTTP GET through `serve` (httpx keep-alive)", http_ms)
    rie = summary("RIE endpoint through `serve`", rie_ms)
    text = table([direct, runtime, serve, rie], direct["p50"], startup)
    if args.image:
        cold = bench_cold(args.image)
        secs = sorted(c["seconds"] for c in cold)
        text += (f"\n\nCold start (fresh runtime, {cold[0]['mode']}, rootfs cached) to the first `GET /health` "
                 f"answer, {len(secs)} runs: median {statistics.median(secs):.3f} s "
                 f"(min {secs[0]:.3f}, max {secs[-1]:.3f}).")
    print(text)
    if args.write:
        write_docs(text)


if __name__ == "__main__":
    main()
