"""The local stack's data plane: Lambda Invoke of an image function, warm and first-of-a-version.

    python bench/dataplane.py [--requests 500] [--write]

Starts its own stack (moto + registry + data plane), deploys a small image function on the
offline Lambda-like base (``lambdaship deploy``, smoke test included), then measures on the
same image (interleaved, so both see the same machine load):
  * run:    POST to the RIE endpoint of ``lambdaship run IMAGE`` (httpx keep-alive): the engine's
            warm invoke behind run's HTTP server
  * stack:  POST /2015-03-31/functions/{name}/invocations?Qualifier=live on the stack's endpoint
            (httpx keep-alive): resolution, the engine's warm invoke, the log lines
  * boto3:  the same through boto3's ``invoke`` (what user code sees; boto3's own cost included)
and the first invoke of a new version: (a) same image, rootfs cached (a configuration change
publishes a new version: a new worker set starts); (b) a new image that differs only in its app
layer (lower layers cached; deployed with --skip-smoke so the first invoke is the bench's).
--write puts the table into docs/benchmarks.md ("Local data plane" section).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import parse_args, publish

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

APP = """import json
def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"answer": "%s", "path": event.get("path")})}
"""


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(name: str, ms: list[float]) -> dict:
    return {"name": name, "n": len(ms), "p50": pct(ms, 50), "p99": pct(ms, 99), "mean": statistics.fmean(ms)}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "lambdaship.cli", *args], env=env, capture_output=True, text=True,
                       timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"lambdaship {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warm(endpoint: str, name: str, image: str, n: int, env: dict[str, str]) -> tuple[dict, dict, dict]:
    import boto3
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lambdaship.cli", "run", image, "--port", str(port),
                             "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lam = boto3.client("lambda", endpoint_url=endpoint)
    body = json.dumps({"path": "/health"}).encode()
    invoke_url = f"{endpoint}/2015-03-31/functions/{name}/invocations?Qualifier=live"
    rie_url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
    try:
        with httpx.Client(timeout=60) as c:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if c.post(rie_url, content=body).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("lambdaship run did not answer")
                time.sleep(0.2)
            for _ in range(100):
                c.post(rie_url, content=body)
                c.post(invoke_url, content=body)
                lam.invoke(FunctionName=name, Qualifier="live", Payload=body)["Payload"].read()
            run_ms, stack_ms, boto_ms = [], [], []
            for _ in range(n):
                t = time.perf_counter()
                r = c.post(rie_url, content=body)
                run_ms.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and b"answer" in r.content
                t = time.perf_counter()
                r = c.post(invoke_url, content=body)
                stack_ms.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and b"answer" in r.content and "X-Amz-Function-Error" not in r.headers
                t = time.perf_counter()
                out = lam.invoke(FunctionName=name, Qualifier="live", Payload=body)["Payload"].read()
                boto_ms.append((time.perf_counter() - t) * 1000)
                assert b"answer" in out
    finally:
        proc.terminate()
        proc.wait(15)
    return (summary("`lambdaship run IMAGE`, RIE endpoint (httpx keep-alive)", run_ms),
            summary("stack: Invoke `?Qualifier=live` (httpx keep-alive)", stack_ms),
            summary("stack: boto3 `invoke(Qualifier='live')`", boto_ms))


def first_invokes(endpoint: str, name: str, proj: Path, env: dict[str, str], runs: int) -> tuple[list, list]:
    import boto3

    lam = boto3.client("lambda", endpoint_url=endpoint)
    body = json.dumps({"path": "/health"}).encode()
    same, fresh = [], []
    for i in range(runs):  # (a) new version, same image: rootfs cached, a new worker set
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"RUN": str(i)}})
        version = lam.publish_version(FunctionName=name)["Version"]
        t = time.perf_counter()
        r = lam.invoke(FunctionName=name, Qualifier=version, Payload=body)
        same.append(time.perf_counter() - t)
        assert "FunctionError" not in r, r["Payload"].read()
    for i in range(max(2, runs // 2)):  # (b) a new image: only its app layer is new
        (proj / "app.py").write_text(APP % f"new-{i}")
        out = json.loads(cli("deploy", "-C", str(proj), "--skip-smoke", "--json", env=env).stdout)
        t = time.perf_counter()
        r = lam.invoke(FunctionName=name, Qualifier=str(out["version"]), Payload=body)
        fresh.append(time.perf_counter() - t)
        payload = r["Payload"].read()
        assert "FunctionError" not in r and f"new-{i}".encode() in payload, payload
    return same, fresh


def table(rows: list[dict], same: list[float], fresh: list[float], load: str) -> str:
    run, stack = rows[0], rows[1]
    lines = ["| path | n | p50 ms | p99 ms | mean ms |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['name']} | {r['n']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['mean']:.2f} |" for r in rows]
    lines += ["", f"Warm overhead of the stack over `run`: **{stack['p50'] - run['p50']:.2f} ms p50** "
                  f"({stack['p50']:.2f} vs {run['p50']:.2f} ms; target ≤ 5 ms).", "",
              f"First invoke of a new version, same image (rootfs cached; a new worker set starts): "
              f"median **{statistics.median(same):.2f} s** (min {min(same):.2f}, max {max(same):.2f}, "
              f"n={len(same)}; target ≤ 1.5 s).",
              f"First invoke of a new image that differs in its app layer only (pull + unpack that layer, "
              f"new worker set): median {statistics.median(fresh):.2f} s (n={len(fresh)}).", "",
              f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
              f"load during the run: {load}. Function: a small JSON handler on the offline base "
              "(Debian bookworm, Python 3.11, awslambdaric) in the bubblewrap sandbox; one warm worker."]
    return "\n".join(lines)


def main() -> None:
    args = parse_args(requests=500, runs=5)
    from lambdaship.local import stack
    from lambdaship.local.base import ensure_base

    with tempfile.TemporaryDirectory(prefix="bench-dataplane-") as tmp:
        state = stack.up(Path(tmp) / "stack")
        env = {**os.environ, **state.env()}
        os.environ.update(state.env())
        try:
            base = ensure_base(state.registry.url)
            proj = Path(tmp) / "app"
            proj.mkdir()
            name = "bench-dataplane"
            (proj / "lambdaship.toml").write_text(
                f'function_name = "{name}"\nhandler = "app.handler"\npython = "3.11"\nbase_image = "{base}"\n'
                'package_type = "image"\n\n[smoke]\npath = "/health"\n')
            (proj / "app.py").write_text(APP % "one")
            cli("deploy", "-C", str(proj), "--create-role", env=env)
            import boto3

            image = boto3.client("lambda", endpoint_url=state.endpoint).get_function(
                FunctionName=name, Qualifier="live")["Code"]["ImageUri"]
            rows = warm(state.endpoint, name, image, args.requests, env)
            same, fresh = first_invokes(state.endpoint, name, proj, env, args.runs)
            load = os.getloadavg()
        finally:
            stack.down(Path(tmp) / "stack")
    text = table(list(rows), same, fresh, f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min)")
    publish(text, args.write, "dataplane", "Local data plane")


if __name__ == "__main__":
    main()
