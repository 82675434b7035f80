"""lambdaship next to the conventional pipelines, measured side by side in one run (issue 11).

    python bench/pipelines.py [--runs 3] [--quick] [--write] [--only lambdaship,nopyc,uv,pip,buildah]

Workload: bench/workloads/seed-app — a seed-sized Chalice app (chalice + numpy + pandas, 24 pinned
packages from PyPI) for Python 3.11 x86_64 on the debootstrap Lambda-like base (python3 + pip +
awslambdaric, `lambdaship local base`), which the bench pushes to its own distribution registry.
The target repository is on a second registry (one fresh registry per pipeline and repetition, so
the bytes each step adds to its storage are exactly the bytes that step had to upload).

Pipelines (scripts in bench/peers/):
* lambdaship: `lambdaship push --repository R` (build + push; ECR on moto, blobs on the registry);
  nopyc: the same with LAMBDASHIP_BYTECODE=0 (cold only)
* (a) buildah: the seeds' Dockerfile, `buildah build --layers` + `buildah push` (overlay storage, chroot isolation)
* (b) pip: `pip install --platform … --only-binary=:all: --target` + tar + `umoci raw add-layer` x2 + `skopeo copy`
* (b') uv: `uv pip install --python-platform … --target` + umoci + skopeo
* floor: the installed dependency tree → tar | gzip -6 / pigz -6 / pigz -1 / nothing, + sha256

Scenarios, per pipeline and repetition:
* cold: empty caches (LAMBDASHIP_HOME, uv cache, buildah storage, pip --no-cache-dir), empty registry
  (one untimed install first warms the path to PyPI; the pipelines' order rotates per repetition);
* fresh: one-line change to app.py on a fresh runner (empty local caches; the registry holds the
  previous image);
* warm: one more one-line change on the same runner (its caches as the fresh step left them).
Also: full deploy to the local stack (moto), cold start of each pipeline's image (fresh runtime in a
chroot of the unpacked image → first GET /health answer), warm `serve` overhead (bench/local.py),
deps layer next to a naive `pip install --target` layer.

--write puts the results into docs/benchmarks.md (Pipelines section).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "bench" / "workloads" / "seed-app"
PEERS = REPO / "bench" / "peers"
sys.path.insert(0, str(REPO / "src"))

from _common import parser, publish, settle  # noqa: E402  (bench/ is on sys.path when run as a script)

from lambdaship.local import stack  # noqa: E402

PIPELINES = ("lambdaship", "nopyc", "uv", "pip", "buildah")
LABEL = {"lambdaship": "lambdaship", "nopyc": "lambdaship, no bytecode (`LAMBDASHIP_BYTECODE=0`), cold only",
         "buildah": "(a) Dockerfile + buildah", "pip": "(b) pip --target + umoci + skopeo",
         "uv": "(b') uv --target + umoci + skopeo"}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
class Load:
    """Samples the 1-minute load average while the bench runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> str:
        self._stop.set()
        s = self.samples or [os.getloadavg()[0]]
        return f"{min(s):.1f}-{max(s):.1f} (mean {statistics.fmean(s):.1f})"


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 900) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd[:5]))}… failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return dt, p.stdout


def blobs(storage: Path) -> dict[str, int]:
    """Every blob in a distribution registry's filesystem storage: digest → size."""
    out: dict[str, int] = {}
    root = storage / "docker" / "registry" / "v2" / "blobs" / "sha256"
    if root.is_dir():
        for data in root.glob("*/*/data"):
            out[data.parent.name] = data.stat().st_size
    return out


class Registry:
    """A fresh distribution registry; ``added()`` = bytes of blobs new since the last call."""

    def __init__(self, where: Path) -> None:
        self.dir = where
        self.url, self.proc = stack.start_registry(where)
        self.host = self.url.removeprefix("http://")
        self._seen: dict[str, int] = {}

    def added(self) -> int:
        now = blobs(self.dir / "registry-data")
        new = sum(size for d, size in now.items() if d not in self._seen)
        self._seen = now
        return new

    def stop(self) -> None:
        stack.stop_registry(self.proc)


def image_info(registry_url: str, repo: str, ref: str) -> dict:
    from lambdaship.oci.client import RegistryClient

    client = RegistryClient.for_registry(registry_url)
    raw, _mt, digest = client.get_manifest(repo, ref)
    m = json.loads(raw)
    sizes = [lay["size"] for lay in m["layers"]]
    return {"digest": digest, "size": sum(sizes) + m["config"]["size"], "added": sum(sizes[1:]),
            "layers": sizes}


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def prepare_app(dest: Path, base: str) -> Path:
    shutil.copytree(WORKLOAD, dest)
    cfg = dest / "lambdaship.toml"
    cfg.write_text(cfg.read_text().replace('package_type = "image"',
                                           f'package_type = "image"\nbase_image = "{base}"'))
    return dest


def change(app: Path, n: int) -> None:
    p = app / "app.py"
    p.write_text(p.read_text() + f"\n# change {n}\n")


def change_view(app: Path, n: int) -> None:
    """A change to what a view returns (not a comment): the deploy must ship it."""
    p = app / "app.py"
    text = p.read_text()
    head, sep, _ = text.partition('    return {"status": "ok"')
    p.write_text(head + sep + f', "change": {n}}}' + text.split('    return {"status": "ok"', 1)[1].split("}", 1)[1])


def reset(app: Path) -> None:
    shutil.copy2(WORKLOAD / "app.py", app / "app.py")


# ---------------------------------------------------------------------------------------------
# pipelines: each returns (seconds, image digest) for one push of the app to ``target``
# ---------------------------------------------------------------------------------------------
def push_lambdaship(app: Path, reg: Registry, repo: str, tag: str, home: Path,
                    bytecode: bool = True) -> tuple[float, str, dict]:
    dt, out = run([sys.executable, "-m", "lambdaship.cli", "push", "-C", str(app), "--repository", repo,
                   "--tag", tag, "--json"],
                  env={"LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv-cache"),
                       "LAMBDASHIP_REGISTRY_URL": reg.url, "LAMBDASHIP_BYTECODE": "1" if bytecode else "0"})
    res = json.loads(out)
    return dt, res["digest"], res


def push_peer(kind: str, app: Path, reg: Registry, repo: str, tag: str, work: Path, base: str,
              mode: str = "full") -> tuple[float, str]:
    target = f"{reg.host}/{repo}:{tag}"
    if kind == "buildah":
        dt, out = run(["sh", str(PEERS / "buildah.sh"), str(work), str(app), base, target])
    else:
        dt, out = run(["sh", str(PEERS / "umoci_skopeo.sh"), kind, str(work), str(app), base, target, mode])
    return dt, out.strip().splitlines()[-1]


def scenario_set(kind: str, app: Path, reg: Registry, base: str, tmp: Path, rep: int) -> dict:
    """cold → fresh-runner code change → warm code change, one registry; returns figures."""
    repo = f"seed-{kind}-{rep}-{uuid.uuid4().hex[:6]}"
    out: dict = {}
    reset(app)
    reg.added()
    homes = [tmp / f"{kind}-{rep}-{i}" for i in range(2)]
    for h in homes:
        h.mkdir(parents=True)
    steps = (("cold", homes[0], "full"), ("fresh", homes[1], "full"), ("warm", homes[1], "code"))
    for step, home, mode in steps[:1] if kind == "nopyc" else steps:
        if step != "cold":
            change(app, rep * 10 + len(out))
        if kind in ("lambdaship", "nopyc"):
            dt, digest, res = push_lambdaship(app, reg, repo, step, home, bytecode=kind == "lambdaship")
            out[f"{step}_client_bytes"] = res["uploaded_bytes"]
        else:
            dt, digest = push_peer(kind, app, reg, repo, step, home, base, mode)
        out[step] = dt
        out[f"{step}_bytes"] = reg.added()
        out[f"{step}_digest"] = digest
        print(f"  {kind:10s} {step:5s} {dt:6.2f} s  {out[f'{step}_bytes'] / 1e6:8.2f} MB  load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
    info = image_info(reg.url, repo, "cold")
    out["image_size"], out["added_size"], out["layers"] = info["size"], info["added"], info["layers"]
    out["ref"] = f"{reg.host}/{repo}@{out['cold_digest']}"
    out["deps_tree"] = next((p for p in (homes[0] / "deps").glob("*/tree")), None) if kind == "lambdaship" else (
        homes[0] / "deps")
    reset(app)
    return out


def warm_network(app: Path, tmp: Path) -> None:
    """One untimed install of the workload's wheels (own cache, kept until the run's tmp goes):
    every timed cold run starts from the same upstream state (caches between this machine and
    PyPI); each still has an empty installer cache of its own. (The first cold run of a run was
    4-7 s slower than the next ones; most of that was the file system after a deletion, see
    ``_common.settle``.)"""
    work = tmp / "warm-network"
    t = time.perf_counter()
    run(["uv", "pip", "install", "-q", "--no-progress", "--only-binary", ":all:", "--python-platform",
         "x86_64-manylinux2014", "--python-version", "3.11", "--target", str(work / "deps"),
         "-r", str(app / "requirements.txt")], env={"UV_CACHE_DIR": str(work / "uv-cache")})
    print(f"network warmed (untimed): {time.perf_counter() - t:.1f} s", flush=True)


def floor(tree: Path, tmp: Path, kinds: tuple[str, ...]) -> dict[str, float]:
    res = {}
    for how in kinds:
        if how.startswith("pigz") and not shutil.which("pigz"):
            continue
        dt, _ = run(["sh", str(PEERS / "floor.sh"), str(tree), str(tmp / f"floor-{how}.tar"), how])
        res[how] = dt
        (tmp / f"floor-{how}.tar").unlink()
    return res


def lambdaship_layer_work(app: Path, home: Path) -> dict:
    """In-process timings of a build whose dependencies are installed but whose layers are not:
    the layer work (tar + gzip + sha256 of the deps and app layers), comparable to the floor. The
    layer caches are moved aside (deleted with ``home`` later, not while timing: ``_common.settle``)."""
    for sub in ("layers", "blobs"):
        if (home / sub).exists():
            (home / sub).rename(home / f"spent-{sub}-{uuid.uuid4().hex[:6]}")
    _, out = run([sys.executable, "-m", "lambdaship.cli", "build", "-C", str(app), "--json", "--out",
                  str(home / "layout")],
                 env={"LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv-cache")})
    return json.loads(out)


def push_compare(layout: Path, tmp: Path, rep: int) -> dict[str, float]:
    """The same OCI layout (base + deps + app) pushed to an empty registry: lambdaship's
    ``push_image`` (in-process, as `lambdaship deploy` runs it) vs `skopeo copy`."""
    from lambdaship.image.model import read_layout
    from lambdaship.registries import push_image

    out = {}
    for who in ("lambdaship", "skopeo"):
        reg = Registry(tmp / f"push-{who}-{rep}")
        try:
            t = time.perf_counter()
            if who == "lambdaship":
                push_image(read_layout(layout), f"{reg.host}/push:1")
            else:
                run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest",
                     f"docker://{reg.host}/push:1"])
            out[who] = time.perf_counter() - t
            out["bytes"] = reg.added()
        finally:
            reg.stop()
    return out


def cold_starts(ref: str, runs: int) -> list[float]:
    """Fresh runtime (chroot of the cached, unpacked image) → first GET /health answer."""
    from lambdaship.local.serve import cold_start

    return [float(cold_start(ref)["seconds"]) for _ in range(runs)]


def deploy_figures(base: str, tmp: Path, runs: int) -> dict:
    """`lambdaship deploy` to the local stack: first deploy, then code changes on fresh runners."""
    app = prepare_app(tmp / "deploy-app", base)
    cfg = app / "lambdaship.toml"
    name = f"seed-deploy-{uuid.uuid4().hex[:6]}"
    cfg.write_text(cfg.read_text().replace('function_name = "seed-app"', f'function_name = "{name}"'))
    env = {"LAMBDASHIP_HOME": str(tmp / "deploy-home0"), "UV_CACHE_DIR": str(tmp / "deploy-home0" / "uv")}
    first, out = run([sys.executable, "-m", "lambdaship.cli", "deploy", "-C", str(app), "--create-role",
                      "--skip-smoke", "--json"], env=env)
    times, models = [], []
    for i in range(runs):
        change_view(app, 100 + i)
        home = tmp / f"deploy-home{i + 1}"
        dt, out = run([sys.executable, "-m", "lambdaship.cli", "deploy", "-C", str(app), "--skip-smoke", "--json"],
                      env={"LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv")})
        times.append(dt)
        models.append((json.loads(out).get("app") or {}).get("model"))
    res = json.loads(out)
    return {"first": first, "fresh": times, "steps": res.get("steps", []), "smoke": bool(res.get("smoke")),
            "models": models}


def naive_layer(app: Path, tmp: Path) -> dict:
    """What a naive `pip install --target` (pip's defaults: it compiles .pyc) gives, tar | gzip -6."""
    target = tmp / "naive"
    env = {"PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}
    run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--only-binary=:all:",
         "--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp",
         "--target", str(target), "-r", str(app / "requirements.txt")], env=env)
    res = {}
    for label, excl in (("compiled", []), ("no_pyc", ["--exclude=__pycache__"])):
        p = subprocess.run(f"tar -C {target} {' '.join(excl)} -cf - . | gzip -6 | wc -c", shell=True,
                           capture_output=True, text=True, check=True)
        res[label] = int(p.stdout.strip())
    return res


def serve_overhead() -> float | None:
    p = subprocess.run([sys.executable, str(REPO / "bench" / "local.py"), "--requests", "1000"],
                       capture_output=True, text=True, timeout=600)
    for line in p.stdout.splitlines():
        if line.startswith("| HTTP GET through `serve`"):
            return float(line.rsplit("|", 2)[-2].strip().split()[0])
    return None


def compile_lambdaship() -> None:
    """Measure lambdaship as installed: pip compiles a package's modules at install time, but this
    machine sets PYTHONDONTWRITEBYTECODE=1, which would make every CLI run compile lambdaship's
    own sources first (~0.2 s; the peers are Go binaries or pip from site-packages)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "lambdaship")], check=False)


@contextlib.contextmanager
def stack_and_base(prefix: str) -> Iterator[tuple[Path, str]]:
    """A work directory with a fresh local stack (its env set) and, on a registry of its own, the
    offline base: yields (work directory, base reference); everything is removed afterwards."""
    from lambdaship.local.base import ensure_base

    with tempfile.TemporaryDirectory(prefix=prefix, dir=os.environ.get("BENCH_TMP")) as tmp_s:
        tmp = Path(tmp_s)
        state = stack.up(tmp / "stack")
        base_reg = None
        try:
            os.environ.update(state.env())
            os.environ["LAMBDASHIP_HOME"] = str(tmp / "bench-home")  # cold-start rootfs cache
            base_reg = Registry(tmp / "base-registry")
            yield tmp, ensure_base(base_reg.url)
        finally:
            if base_reg is not None:
                base_reg.stop()
            stack.down(tmp / "stack")
            subprocess.run(["rm", "-rf", str(tmp)], check=False)  # faster than TemporaryDirectory's rmtree
            tmp.mkdir()


# ---------------------------------------------------------------------------------------------
def main() -> None:
    ap = parser(runs=3)
    ap.add_argument("--quick", action="store_true", help="1 repetition; no deploy, serve or floor variants")
    ap.add_argument("--only", default=",".join(PIPELINES), help="comma-separated subset of " + ",".join(PIPELINES))
    args = ap.parse_args()
    runs = 1 if args.quick else args.runs
    kinds = tuple(k for k in PIPELINES if k in args.only.split(","))
    missing = [t for t, k in (("buildah", "buildah"), ("umoci", "pip"), ("skopeo", "pip"), ("uv", "uv"))
               if k in kinds and not shutil.which(t)]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)} "
                         "(apt-get install buildah umoci skopeo pigz; pip install uv)")
    compile_lambdaship()
    load = Load()
    t_start = time.perf_counter()
    with stack_and_base("bench-pipelines-") as (tmp, base):
        print(f"base: {base}", flush=True)
        results = measure(args, kinds, runs, base, tmp)
    results["load"] = load.stop()
    results["wall"] = time.perf_counter() - t_start
    publish(render(results, runs, kinds, args.quick), args.write, "pipelines",
            "Pipelines: lambdaship vs Dockerfile/buildah, pip/uv + umoci + skopeo")


def measure(args: argparse.Namespace, kinds: tuple[str, ...], runs: int, base: str, tmp: Path) -> dict:
    per: dict[str, list[dict]] = {k: [] for k in kinds}
    floors: list[dict[str, float]] = []
    layer_work: list[float] = []
    pushes: list[dict[str, float]] = []
    cold: dict[str, list[float]] = {}
    kept: dict[str, tuple[Registry, str]] = {}
    apps = {k: prepare_app(tmp / f"app-{k}", base) for k in kinds}
    warm_network(apps[kinds[0]], tmp)  # nothing is deleted while timing (``_common.settle``): tmp goes at the end
    for rep in range(runs):
        print(f"repetition {rep + 1}/{runs}", flush=True)
        for kind in kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]:  # the order rotates
            reg = Registry(tmp / f"reg-{kind}-{rep}")
            try:
                settle(tmp)
                r = scenario_set(kind, apps[kind], reg, base, tmp, rep)
                per[kind].append(r)
                if rep == 0:  # unpack + cache the rootfs now (not timed); keep the registry for later
                    from lambdaship.local.serve import cold_start

                    cold_start(r["ref"])
                    kept[kind] = (reg, r["ref"])
            finally:
                if kept.get(kind, (None,))[0] is not reg:
                    reg.stop()
            if kind == "lambdaship":
                home = tmp / f"lambdaship-{rep}-0"
                info = lambdaship_layer_work(apps[kind], home)
                layer_work.append(info["timings"]["layers"])
                pushes.append(push_compare(home / "layout", tmp, rep))
                print(f"  push of the layout: {pushes[-1]}", flush=True)
                tree = per[kind][-1]["deps_tree"]
                floors.append(floor(tree, tmp, ("gzip6", "pigz6", "pigz1", "none") if rep == 0 else ("pigz6",)))
                print(f"  layer work {layer_work[-1]:.2f} s; floor {floors[-1]}", flush=True)
    # Cold starts: interleaved rounds over the pipelines' images, so each sees the same load.
    try:
        for _ in range(2 if args.quick else 5):
            for kind, (_reg, ref) in kept.items():
                cold.setdefault(kind, []).extend(cold_starts(ref, 1))
        print("  cold starts: " + ", ".join(f"{k} {median(v):.3f} s" for k, v in cold.items()), flush=True)
    finally:
        for reg, _ref in kept.values():
            reg.stop()
    out: dict = {"per": per, "floors": floors, "layer_work": layer_work, "cold": cold, "pushes": pushes}
    app0 = apps[kinds[0]]
    out["naive"] = naive_layer(app0, tmp)
    if not args.quick and "lambdaship" in kinds:
        try:
            settle(tmp)
            out["deploy"] = deploy_figures(base, tmp, runs)
            print(f"  deploy {out['deploy']}", flush=True)
        except (SystemExit, Exception) as exc:  # keep the other figures
            print(f"  deploy failed: {exc}", flush=True)
        out["serve"] = serve_overhead()
    return out


def fmt_s(x: float) -> str:
    return f"{x:.2f} s" if x == x else "—"


def fmt_b(n: float) -> str:
    if n != n:
        return "—"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.1f} kB"


def render(res: dict, runs: int, kinds: tuple[str, ...], quick: bool) -> str:
    per = res["per"]
    m = {k: {s: median([r[s] for r in per[k] if s in r]) for s in ("cold", "fresh", "warm")} for k in kinds}
    b = {k: {s: median([r[f"{s}_bytes"] for r in per[k] if f"{s}_bytes" in r]) for s in ("cold", "fresh", "warm")}
         for k in kinds}
    repro = {k: (len({r["cold_digest"] for r in per[k]}) == 1 if runs > 1 else None) for k in kinds}
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"median of {runs}; load average during the run {res['load']} — other jobs shared the 2 cores, so "
        "compare columns of one run, not absolute times. Whole run: "
        f"{res['wall'] / 60:.1f} min.",
        "",
        "Workload: bench/workloads/seed-app (chalice + numpy + pandas, 24 pinned packages), Python 3.11 x86_64 "
        "on the debootstrap Lambda-like base (84 MB gzip) in one local registry, pushed to a fresh second "
        "registry. Bytes = blob bytes new in the target registry's storage after the step. Times are wall "
        "times of the whole commands (lambdaship: the CLI process, its modules compiled as after `pip install`).",
        "",
        "| pipeline | cold build+push | code change, fresh runner | code change, warm | image (gzip) | "
        "cold start | reproducible |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in kinds:
        cs = res["cold"].get(k)
        rp = {True: "yes", False: "no", None: "not checked (1 run)"}[repro[k]]
        lines.append(
            f"| {LABEL[k]} | {fmt_s(m[k]['cold'])}, {fmt_b(b[k]['cold'])} | {fmt_s(m[k]['fresh'])}, "
            f"{fmt_b(b[k]['fresh'])} | {fmt_s(m[k]['warm'])}, {fmt_b(b[k]['warm'])} | "
            f"{fmt_b(per[k][0]['image_size'])} (+{fmt_b(per[k][0]['added_size'])}) | "
            f"{(f'{median(cs):.2f} s' if cs else '—')} | {rp} |")
    fl = res["floors"]
    if fl:
        fm = {h: median([f[h] for f in fl if h in f]) for h in fl[0]}  # gzip -6, pigz -1, none: first run only
        lines.append(
            "| floor: lambdaship's deps tree → tar + compress + sha256 | "
            + ", ".join(f"{h.replace('6', ' -6').replace('1', ' -1')}: {fmt_s(v)}" for h, v in fm.items())
            + " | | | | | |")
    lines += ["", "Targets (issue 11), ratios from this run:", ""]
    checks = []
    if "lambdaship" in kinds:
        ls = m["lambdaship"]
        if "buildah" in kinds:
            checks.append(("code change, fresh runner ≤ 1/20 of (a)", ls["fresh"] / m["buildah"]["fresh"], 1 / 20))
            checks.append(("bytes pushed, fresh runner ≤ 1 % of (a)", b["lambdaship"]["fresh"]
                           / max(1, b["buildah"]["fresh"]), 0.01))
        if "uv" in kinds:
            checks.append(("code change, fresh runner ≤ 1/4 of (b')", ls["fresh"] / m["uv"]["fresh"], 1 / 4))
            checks.append(("cold build+push ≤ 0.8x (b')", ls["cold"] / m["uv"]["cold"], 0.8))
            if "nopyc" in kinds:
                checks.append(("the same without bytecode (what (b') ships)", m["nopyc"]["cold"] / m["uv"]["cold"],
                               0.8))
        if fl and res["layer_work"]:
            lw = median(res["layer_work"])
            checks.append((f"layer work ({lw:.2f} s, in-process) ≤ 1.5x pigz -6 floor", lw / fm["pigz6"], 1.5)
                          if "pigz6" in fm else ("layer work ≤ gzip -6 floor", lw / fm["gzip6"], 1.0))
        if "buildah" in kinds and res["cold"].get("buildah") and res["cold"].get("lambdaship"):
            checks.append(("cold start ≤ (a)'s", median(res["cold"]["lambdaship"]) / median(res["cold"]["buildah"]),
                           1.0))
        if res.get("pushes"):
            pl = median([p["lambdaship"] for p in res["pushes"]])
            ps = median([p["skopeo"] for p in res["pushes"]])
            mb = res["pushes"][0]["bytes"] / 1e6
            checks.append((f"push of one layout ({mb:.0f} MB) to an empty registry: push_image {pl:.2f} s "
                           f"({mb / pl:.0f} MB/s) vs skopeo copy {ps:.2f} s ({mb / ps:.0f} MB/s); time ratio",
                           pl / ps, 1.0))
        naive = res.get("naive")
        if naive:
            ours = sum(per["lambdaship"][0]["layers"][1:-1])  # the deps layers (base: one layer; app: the last)
            checks.append((f"deps layers ({fmt_b(ours)}) ≤ 0.85x naive pip --target ({fmt_b(naive['compiled'])} "
                           f"with pip's .pyc; {fmt_b(naive['no_pyc'])} without)", ours / naive["compiled"], 0.85))
        if res.get("serve") is not None:
            checks.append((f"warm `serve` overhead ({res['serve']:.3f} ms p50, bench/local.py) ≤ 2 ms",
                           res["serve"] / 2.0, 1.0))
    lines += ["| target | ratio | limit | met |", "|---|---|---|---|"]
    for label, ratio, limit in checks:
        lines.append(f"| {label} | {ratio:.3f} | {limit:.3f} | {'yes' if ratio <= limit else 'no'} |")
    d = res.get("deploy")
    if d:
        models = ", ".join(str(m) for m in d.get("models") or []) or "-"
        lines += ["", f"Full deploy to the local stack (moto + registry + data plane; build, push, update by digest, "
                  "publish, alias, the app's API; `--skip-smoke`, the image's cold start is its own row): "
                  f"first deploy {fmt_s(d['first'])}; a change to a view's return value on a fresh runner "
                  f"{fmt_s(median(d['fresh']))} (median of {len(d['fresh'])}; the app model came from: {models})."]
    if "lambdaship" in kinds:
        cb = median([r["fresh_client_bytes"] for r in per["lambdaship"]])
        lines += ["", f"lambdaship's own count of bytes uploaded on a fresh runner: {fmt_b(cb)} (config + app layer "
                  "+ manifest; the dependency layer is recognised in the registry by its dependency hash)."]
    lines += ["", "Reproduce: `python bench/pipelines.py` (`--quick`: one repetition, no deploy/serve; `--write` "
              "rewrites this section). Needs root, buildah, umoci, skopeo, pigz, uv, docker-registry, moto."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
