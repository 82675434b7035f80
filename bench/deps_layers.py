"""One-package bump with split dependency layers (issue 21.1), side by side with one dependency layer.

    python bench/deps_layers.py [--runs 3] [--write]

Workload: bench/workloads/seed-app (chalice + numpy + pandas, 24 pins), Python 3.11 x86_64 on the
debootstrap Lambda-like base in a local registry, pushed with `lambdaship push --repository R`
(ECR on moto, blobs on a fresh distribution registry per variant and repetition). The workload
starts with six==1.16.0; the bump is six 1.16.0 -> 1.17.0 (a small pure-Python dependency that
python-dateutil needs).

Variants: split (the default, `layer_split_mb = 10`: numpy, pandas, botocore get layers of their own),
split-2 (`layer_split_mb = 2`: also pip, setuptools, pytz, tzdata, …) and single (`layer_split_mb = 0`:
every dependency in one layer, as before issue 21).

Steps per variant and repetition:
* cold: empty caches (LAMBDASHIP_HOME, uv cache), empty registry: build + push;
* bump, fresh runner: six bumped, empty local caches (the registry holds the cold image);
* bump, warm runner: six bumped once more (1.17.0 -> 1.15.0) on the fresh step's runner (its caches as left).
Bytes = blob bytes new in the target registry's storage after the step (what had to be uploaded);
"dependency bytes" = the compressed dependency layers of the image. Times are wall times of the
whole `lambdaship push` processes.

--write puts the result into docs/benchmarks.md (section "Dependency layers").
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from _common import parser, publish  # noqa: E402  (bench/ is on sys.path when run as a script)
from pipelines import Load, Registry, median, prepare_app, run  # noqa: E402

from lambdaship.local import stack  # noqa: E402

VARIANTS = {"split": "layer_split_mb = 10", "split-2": "layer_split_mb = 2", "single": "layer_split_mb = 0"}
OLD, NEW, THIRD = "six==1.16.0", "six==1.17.0", "six==1.15.0"


def set_six(app: Path, spec: str) -> None:
    req = app / "requirements.txt"
    lines = [spec if ln.startswith("six==") else ln for ln in req.read_text().splitlines()]
    req.write_text("\n".join(lines) + "\n")


def make_app(dest: Path, base: str, variant: str) -> Path:
    app = prepare_app(dest, base)
    cfg = app / "lambdaship.toml"
    cfg.write_text(cfg.read_text().replace('package_type = "image"', f'package_type = "image"\n{VARIANTS[variant]}'))
    set_six(app, OLD)
    return app


def push(app: Path, reg: Registry, repo: str, home: Path) -> tuple[float, dict]:
    dt, out = run([sys.executable, "-m", "lambdaship.cli", "push", "-C", str(app), "--repository", repo,
                   "--json"],
                  env={"LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv-cache"),
                       "LAMBDASHIP_REGISTRY_URL": reg.url})
    return dt, json.loads(out)


def build_info(app: Path, home: Path) -> dict:
    """The image's layers as `build --json` reports them (all caches warm: no timing taken)."""
    _, out = run([sys.executable, "-m", "lambdaship.cli", "build", "-C", str(app), "--json"],
                 env={"LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv-cache")})
    return json.loads(out)


def one_set(variant: str, base: str, tmp: Path, rep: int) -> dict:
    """cold → bump on a fresh runner → bump on the warm runner, into one fresh registry."""
    app = make_app(tmp / f"app-{variant}-{rep}", base, variant)
    reg = Registry(tmp / f"reg-{variant}-{rep}")
    repo = f"bump-{variant}-{rep}-{uuid.uuid4().hex[:6]}"
    homes = [tmp / f"home-{variant}-{rep}-{i}" for i in range(2)]
    out: dict = {}
    try:
        reg.added()
        for step, home, six in (("cold", homes[0], OLD), ("fresh", homes[1], NEW), ("warm", homes[1], THIRD)):
            set_six(app, six)
            dt, res = push(app, reg, repo, home)
            out[step] = dt
            out[f"{step}_bytes"] = reg.added()
            out[f"{step}_client_bytes"] = res["uploaded_bytes"]
            out[f"{step}_digest"] = res["digest"]
            print(f"  {variant:6s} {step:5s} {dt:6.2f} s  {out[f'{step}_bytes'] / 1e6:8.2f} MB  load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
        info = build_info(app, homes[1])
        deps = [x for x in info["layers"] if x["role"] == "deps"]
        out["deps_bytes"] = sum(x["size"] for x in deps)
        out["deps_unpacked"] = sum(x["uncompressed_size"] or 0 for x in deps)
        out["layers"] = [(x["name"], x["size"], len(x["packages"])) for x in deps]
        out["same_as_pushed"] = info["manifest_digest"] == out["warm_digest"]
    finally:
        reg.stop()
        for h in homes:
            shutil.rmtree(h, ignore_errors=True)
    return out


def fmt_b(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def render(per: dict[str, list[dict]], runs: int, load: str, loadavg: tuple[str, str], wall: float) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; median of "
        f"{runs}; load average while it ran {load} (`/proc/loadavg` before: {loadavg[0]}; after: {loadavg[1]}). "
        f"Whole run: {wall / 60:.1f} min.",
        "",
        "Workload: bench/workloads/seed-app (chalice + numpy + pandas, 24 pins) with six==1.16.0, then six bumped "
        "to 1.17.0; `lambdaship push --repository` to the local stack (ECR on moto, a fresh registry per variant "
        "and repetition). Bytes = blob bytes the step added to the registry; dependency bytes = the image's "
        "compressed dependency layers.",
        "",
        "| variant | dependency layers (gzip) | cold build+push | bump, fresh runner | bump, warm runner | "
        "bytes pushed by the bump / dependency bytes | fresh bump / cold time (median of the repetitions' ratios) | "
        "reproducible |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, rows in per.items():
        m = {k: median([r[k] for r in rows]) for k in ("cold", "fresh", "warm", "cold_bytes", "fresh_bytes",
                                                       "warm_bytes", "deps_bytes")}
        layers = ", ".join(f"{name} {fmt_b(size)}" + (f" ({n} packages)" if n > 1 else "")
                           for name, size, n in rows[0]["layers"])
        repro = len({r["cold_digest"] for r in rows}) == 1 and all(r["same_as_pushed"] for r in rows)
        ratio = median([r["fresh"] / r["cold"] for r in rows])  # within a repetition: the same load
        lines.append(
            f"| {variant} ({VARIANTS[variant]}) | {layers} | {m['cold']:.2f} s, {fmt_b(m['cold_bytes'])} | "
            f"{m['fresh']:.2f} s, {fmt_b(m['fresh_bytes'])} | {m['warm']:.2f} s, {fmt_b(m['warm_bytes'])} | "
            f"{100 * m['fresh_bytes'] / m['deps_bytes']:.1f} % | {ratio:.2f} | {'yes' if repro else 'no'} |")
    lines += ["", "Per repetition (wall s: cold / bump on a fresh runner / bump on a warm runner):"]
    for variant, rows in per.items():
        lines.append(f"- {variant}: " + "; ".join(f"{r['cold']:.2f} / {r['fresh']:.2f} / {r['warm']:.2f}"
                                                  for r in rows) + ".")
    split = per.get("split")
    if split:
        lines += ["", f"lambdaship's own count of bytes it uploaded for the fresh-runner bump (split): "
                  f"{fmt_b(median([r['fresh_client_bytes'] for r in split]))} (six's shared layer, the app layer, "
                  "the config); the bump installs, compiles and compresses only the packages of six's shared layer: "
                  "the large ones' layers are taken from the previous image (`image/reuse.py`)."]
    lines += ["", "Targets (issue 21), one-package bump on a fresh runner: bytes pushed ≤ 5 % of the dependency bytes, "
              "time ≤ 0.25x the cold build. Reproduce: `python bench/deps_layers.py` (`--write` rewrites this "
              "section)."]
    return "\n".join(lines)


def main() -> None:
    args = parser(runs=3).parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measure lambdaship as installed (see pipelines.py)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "lambdaship")], check=False)
    before = Path("/proc/loadavg").read_text().strip()
    load = Load()
    t0 = time.perf_counter()
    from lambdaship.local.base import ensure_base

    per: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-deps-layers-", dir=os.environ.get("BENCH_TMP")) as tmp_s:
        tmp = Path(tmp_s)
        state = stack.up(tmp / "stack")
        base_reg = None
        try:
            os.environ.update(state.env())
            os.environ["LAMBDASHIP_HOME"] = str(tmp / "bench-home")
            base_reg = Registry(tmp / "base-registry")
            base = ensure_base(base_reg.url)
            for rep in range(args.runs):
                print(f"repetition {rep + 1}/{args.runs}", flush=True)
                for variant in VARIANTS:
                    per[variant].append(one_set(variant, base, tmp, rep))
        finally:
            if base_reg is not None:
                base_reg.stop()
            stack.down(tmp / "stack")
    after = Path("/proc/loadavg").read_text().strip()
    text = render(per, args.runs, load.stop(), (before, after), time.perf_counter() - t0)
    publish(text, args.write, "deps-layers", "Dependency layers: a one-package bump")


if __name__ == "__main__":
    main()
