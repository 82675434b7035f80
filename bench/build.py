"""Build speed: `lambdaship build` next to `pip install --target` + tar + gzip of the same files.

    python bench/build.py [--runs 3] [--heavy] [--write]

Workload: examples/chalice-app (chalice==1.34.0 and its dependencies; with --heavy also
numpy and pandas, closer to the seeds' app). The base image is a tiny Lambda-like image in a
fresh local distribution registry (the build reads only its manifest and config, so the base's
size does not matter). Every lambdaship figure is the wall time of a `lambdaship build --json`
process (CLI start-up included); median of --runs.

Scenarios
* cold: empty lambdaship cache and empty uv cache (downloads included) — lambdaship vs
  `pip install --platform … --only-binary=:all: --target` (no pip cache) + app copy +
  `tar | gzip -6` + sha256;
* warm, unchanged: the same build again (lambdaship: dependency and layer caches hit;
  peer: pip with its cache, then tar + gzip again);
* warm, code-only change: one line of app.py changed;
* fresh runner, code-only change: empty local caches, the previous image in the registry
  (lambdaship: `--reuse-deps-from`; the peer has no such path, so it is its cold time).
Also reported: deps layer size (compressed), and whether two cold builds give the same digest.

--write puts the table into docs/benchmarks.md (Build section).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from _common import parser, publish  # noqa: E402  (bench/ is on sys.path when run as a script)

from lambdaship.local import stack  # noqa: E402


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}… failed:\n{p.stderr[-2000:]}")
    return dt, p.stdout


def lambdaship_build(app: Path, base: str, home: Path, uv_cache: Path, *extra: str) -> tuple[float, dict]:
    dt, out = run([sys.executable, "-m", "lambdaship.cli", "build", "-C", str(app), "--base-image", base,
                   "--json", *extra],
                  env={"LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(uv_cache)})
    return dt, json.loads(out)


def peer_build(app: Path, work: Path, *, cached: bool) -> tuple[float, str, int]:
    """pip --target for the Lambda platform + app files, then tar | gzip -6 and sha256."""
    target = work / "pkg"
    shutil.rmtree(target, ignore_errors=True)
    env = {"PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
           "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "--target", str(target),
           "-r", str(app / "requirements.txt")]
    if not cached:
        cmd.append("--no-cache-dir")
    p = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    if p.returncode != 0 and "ERROR: Could not" in p.stderr:
        raise SystemExit(p.stderr[-2000:])
    for f in ("app.py", "chalicelib"):
        src = app / f
        if src.is_dir():
            shutil.copytree(src, target / f, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target / f)
    gz = work / "layer.tar.gz"
    subprocess.run(f"tar -C {target} -cf - . | gzip -6 > {gz}", shell=True, check=True)
    digest = hashlib.sha256(gz.read_bytes()).hexdigest()
    return time.perf_counter() - t, digest, gz.stat().st_size


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = parser(runs=3)
    ap.add_argument("--heavy", action="store_true", help="add numpy and pandas to the requirements")
    args = ap.parse_args()

    from tests.images import push_base  # the tiny Lambda-like base used by the tests

    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp_s:
        tmp = Path(tmp_s)
        state = stack.up(tmp / "stack")
        try:
            os.environ.update(state.env())
            base = push_base(state.registry.url, tmp)
            app = tmp / "chalice-app"
            shutil.copytree(REPO / "examples" / "chalice-app", app)
            if args.heavy:
                (app / "requirements.txt").write_text("chalice==1.34.0\nnumpy==2.2.6\npandas==2.2.3\n")
            rows = measure(args, app, base, tmp, state.registry.url)
        finally:
            stack.down(tmp / "stack")
    publish(render(rows, args), args.write, "build", "Build: `lambdaship build` vs `pip install --target` + tar + gzip")


def measure(args: argparse.Namespace, app: Path, base: str, tmp: Path, registry_url: str) -> dict:
    from lambdaship.image.model import read_layout
    from lambdaship.registries import push_image

    res: dict[str, list[float]] = {k: [] for k in (
        "ls_cold", "ls_warm", "ls_code", "ls_fresh", "peer_cold", "peer_warm", "peer_code")}
    digests, peer_digests = [], []
    info: dict = {}
    app_py = app / "app.py"
    original = app_py.read_text()
    for i in range(args.runs):
        app_py.write_text(original)
        home, uvc = tmp / f"home{i}", tmp / f"uv{i}"
        dt, cold = lambdaship_build(app, base, home, uvc, "--out", str(tmp / f"layout{i}"))
        res["ls_cold"].append(dt)
        digests.append(cold["manifest_digest"])
        info["deps_layer"] = sum(x["size"] for x in cold["layers"] if x["role"] == "deps")  # every deps layer
        info["deps_unpacked"] = sum(x["uncompressed_size"] for x in cold["layers"] if x["role"] == "deps")
        info["bytecode"] = cold["bytecode"]
        for k in ("deps_install", "deps_bytecode", "layers", "total"):
            info.setdefault("cold_" + k, []).append(cold["timings"].get(k, 0.0))
        dt, _ = lambdaship_build(app, base, home, uvc)
        res["ls_warm"].append(dt)
        # push the first image so a "fresh runner" can find its dependency layer
        repo_ref = f"{registry_url.removeprefix('http://')}/bench-{uuid.uuid4().hex[:8]}:live"
        push_image(read_layout(tmp / f"layout{i}"), repo_ref)
        app_py.write_text(original + f"\n# change {i}\n")
        dt, _ = lambdaship_build(app, base, home, uvc)
        res["ls_code"].append(dt)
        dt, fresh = lambdaship_build(app, base, tmp / f"fresh{i}", uvc, "--reuse-deps-from", repo_ref)
        assert fresh["deps_reused"], "the fresh runner did not reuse the deps layer"
        res["ls_fresh"].append(dt)

        app_py.write_text(original)
        work = tmp / f"peer{i}"
        work.mkdir()
        dt, d, size = peer_build(app, work, cached=False)
        res["peer_cold"].append(dt)
        peer_digests.append(d)
        info["peer_layer"] = size
        time.sleep(1.1)  # let file times move on, as between two CI runs
        dt, _, _ = peer_build(app, work, cached=True)
        res["peer_warm"].append(dt)
        app_py.write_text(original + f"\n# change {i}\n")
        dt, _, _ = peer_build(app, work, cached=True)
        res["peer_code"].append(dt)
    app_py.write_text(original)
    return {"res": res, "info": info, "reproducible": len(set(digests)) == 1,
            "peer_reproducible": len(set(peer_digests)) == 1}


def render(rows: dict, args: argparse.Namespace) -> str:
    r, info = rows["res"], rows["info"]
    m = {k: median(v) for k, v in r.items()}
    workload = "chalice + numpy + pandas" if args.heavy else "examples/chalice-app (chalice==1.34.0)"
    lines = [
        f"Workload: {workload}, python 3.12 x86_64; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; median of {args.runs}; wall time of the whole command.",
        "",
        "| scenario | lambdaship build | pip --target + tar + gzip -6 | ratio |",
        "|---|---|---|---|",
    ]
    for label, ours, peer in (
        ("cold (empty caches, downloads included)", "ls_cold", "peer_cold"),
        ("warm, unchanged", "ls_warm", "peer_warm"),
        ("warm, one-line code change", "ls_code", "peer_code"),
        ("fresh runner, one-line code change (previous image in the registry)", "ls_fresh", "peer_cold"),
    ):
        lines.append(f"| {label} | {m[ours]:.2f} s | {m[peer]:.2f} s | {m[ours] / m[peer]:.2f}x |")
    lines += [
        "",
        f"- dependency layers: {info['deps_layer'] / 1e6:.1f} MB gzip ({info['deps_unpacked'] / 1e6:.1f} MB tar), "
        f"bytecode for 3.12 {'included' if info['bytecode'] else 'not included (no python3.12 here)'}; "
        f"peer layer {info['peer_layer'] / 1e6:.1f} MB (no bytecode).",
        f"- lambdaship cold, in-process (median): install {median(info['cold_deps_install']):.2f} s, "
        f"bytecode {median(info['cold_deps_bytecode']):.2f} s, layers (tar + gzip + sha256, 2 threads) "
        f"{median(info['cold_layers']):.2f} s, total {median(info['cold_total']):.2f} s.",
        f"- reproducible (same digest from {args.runs} cold builds): lambdaship "
        f"{'yes' if rows['reproducible'] else 'NO'}, peer {'yes' if rows['peer_reproducible'] else 'no'}.",
        "- lambdaship's numbers include CLI start-up and reading the base image's manifest and config "
        "from the registry; the peer's include no base image work at all.",
        "",
        f"Reproduce: `python bench/build.py --runs {args.runs}{' --heavy' if args.heavy else ''} --write`.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
