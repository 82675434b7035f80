"""A big dependency set (issue 21): lambdaship next to uv --target + umoci + skopeo and a pigz floor.

    python bench/bigset.py [--runs 3] [--write]

Workload: bench/workloads/big-app — a handler importing pandas, pyarrow, scipy, scikit-learn,
matplotlib, statsmodels and numba (23 pinned packages from PyPI, cp311 manylinux x86_64 wheels,
~710 MB installed) for Python 3.11 x86_64 on the debootstrap Lambda-like base (`lambdaship local
base`), which the bench pushes to a registry of its own (bench/pipelines.py: `stack_and_base`).

Per repetition (the two pipelines in alternating order), each on a fresh target registry:
* lambdaship: `lambdaship push --repository R` (ECR on moto, blobs on the registry), empty
  LAMBDASHIP_HOME and uv cache; peak RSS of its process tree sampled from /proc (VmHWM per process);
* (b') uv: `uv pip install --target` + tar + `umoci raw add-layer` + `skopeo copy`, empty uv cache
  (bench/peers/umoci_skopeo.sh);
* floor over lambdaship's installed tree (the one its layers are made from, bytecode included):
  tar | pigz -6 / pigz -1 on all cores | sha256 (first repetition also gzip -6 and plain tar);
* lambdaship's layer work for that tree: `lambdaship build --json` with the dependencies installed
  and the layer cache emptied, its `timings.layers` (bench/pipelines.py: `lambdaship_layer_work`).
First repetition only: one more cold `lambdaship build --json` under `/usr/bin/time -v` for the stage
breakdown (install, bytecode, layers) and the image's layers, and the push of the built layout alone:
lambdaship's `push_image` vs `skopeo copy` (bench/pipelines.py: `push_compare`).

Results: printed, and saved to /tmp/bigset-results.md; --write also puts them into docs/benchmarks.md
(section "Big dependency set", markers `<!-- bigset:start -->` / `<!-- bigset:end -->`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "bench" / "workloads" / "big-app"
RESULTS = Path("/tmp/bigset-results.md")
sys.path.insert(0, str(REPO / "src"))

from _common import parser, publish, settle  # noqa: E402  (bench/ is on sys.path when run as a script)
from pipelines import (  # noqa: E402
    PEERS,
    Load,
    Registry,
    compile_lambdaship,
    image_info,
    lambdaship_layer_work,
    median,
    push_compare,
    push_lambdaship,
    push_peer,
    run,
    stack_and_base,
    warm_network,
)

FLOORS = ("pigz6", "pigz1")
FLOORS_FIRST = ("gzip6", "none")
FLOOR_LABEL = {"pigz6": r"tar \| pigz -6 \| sha256", "pigz1": r"tar \| pigz -1 \| sha256",  # \|: in a table
               "gzip6": r"tar \| gzip -6 \| sha256 (one core)", "none": r"tar \| sha256 (no compression)"}
REPRO = {True: "yes", False: "no", None: "not checked (1 run)"}
TARGETS = {"cold": 0.5, "layers": 1.2, "rss": 500e6}


# ---------------------------------------------------------------------------------------------
# measurement helpers
# ---------------------------------------------------------------------------------------------
class TreeRss:
    """Samples the process tree of the first descendant of this process whose command line holds
    ``marker`` (the lambdaship CLI, also under /usr/bin/time): the peak of each process (VmHWM,
    the kernel's own high-water mark, so a peak between two samples still counts) and the peak of
    the tree's summed VmRSS (shared pages counted once per process)."""

    def __init__(self, marker: str = "lambdaship.cli", every: float = 0.25) -> None:
        self.marker, self.every = marker.encode(), every
        self.root: int | None = None
        self.peaks: dict[int, tuple[str, int]] = {}  # pid → (command, VmHWM bytes)
        self.tree_peak = 0
        self.timeline: list[tuple[float, int]] = []  # (seconds since start, CLI VmRSS bytes)
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeRss:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()

    @staticmethod
    def _parents() -> dict[int, int]:
        out = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat", "rb") as fh:
                        out[int(d)] = int(fh.read().rsplit(b")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        return out

    @staticmethod
    def _under(parents: dict[int, int], top: int) -> list[int]:
        kids: dict[int, list[int]] = {}
        for pid, ppid in parents.items():
            kids.setdefault(ppid, []).append(pid)
        out, todo = [], [top]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(kids.get(pid, ()))
        return out

    def _cmd(self, pid: int) -> bytes:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                return fh.read().replace(b"\0", b" ").strip()
        except OSError:
            return b""

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            parents = self._parents()
            if self.root is None or self.root not in parents:
                self.root = next((p for p in self._under(parents, os.getpid())[1:] if self.marker in self._cmd(p)
                                  and b"/usr/bin/time" not in self._cmd(p)), self.root)
                if self.root is None or self.root not in parents:
                    continue
            total = 0
            for pid in self._under(parents, self.root):
                try:
                    with open(f"/proc/{pid}/status") as fh:
                        st = dict(line.split(":", 1) for line in fh if ":" in line)
                except OSError:
                    continue
                hwm = int(st.get("VmHWM", "0 kB").split()[0]) * 1024
                rss = int(st.get("VmRSS", "0 kB").split()[0]) * 1024
                total += rss
                if pid == self.root:
                    self.timeline.append((time.perf_counter() - self._t0, rss))
                name = self.peaks.get(pid, (None,))[0] or self._cmd(pid).decode(errors="replace")[:90]
                self.peaks[pid] = (name, max(hwm, self.peaks.get(pid, ("", 0))[1]))
            self.tree_peak = max(self.tree_peak, total)

    def peak_between(self, start: float, end: float) -> int:
        """The CLI's largest sampled VmRSS between two times (seconds since the sampler started)."""
        return max((r for t, r in self.timeline if start <= t <= end), default=0)

    def summary(self) -> dict:
        cli = self.peaks.get(self.root or -1, ("", 0))
        kids = [v for p, v in self.peaks.items() if p != self.root]
        big = max(kids, key=lambda v: v[1], default=("—", 0))
        return {"cli": cli[1], "child": big[1], "child_cmd": big[0], "tree": self.tree_peak,
                "processes": len(self.peaks)}


def du(path: Path) -> tuple[int, int]:
    """(apparent bytes, files) of a tree, as `du -sb` counts bytes."""
    size = int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])
    files = sum(len(f) for _d, _s, f in os.walk(path))
    return size, files


def floor_sized(tree: Path, tmp: Path, how: str) -> tuple[float, int]:
    """bench/pipelines.py's `floor` for one kind (bench/peers/floor.sh), keeping the output's size."""
    out = tmp / f"floor-{how}.tar"
    dt, _ = run(["sh", str(PEERS / "floor.sh"), str(tree), str(out), how])
    size = out.stat().st_size
    out.unlink()
    return dt, size


def timed_build(app: Path, home: Path) -> dict:
    """A cold `lambdaship build --json` under `/usr/bin/time -v` and the /proc sampler."""
    env = {**os.environ, "LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv-cache")}
    with TreeRss() as rss:
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "lambdaship.cli", "build", "-C", str(app),
                            "--json"], env=env, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"lambdaship build failed ({p.returncode}):\n{p.stderr[-3000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return {"wall": wall, "json": json.loads(p.stdout), "time_v_rss": int(m.group(1)) * 1024 if m else 0,
            "rss": rss.summary()}


STAGE_RE = re.compile(r"^\s*(base|resolve|download|install|bytecode|compress|built)\s+([\d.]+) s\b")


def staged_push(app: Path, reg: Registry, repo: str, home: Path) -> dict:
    """A cold `lambdaship push` in line mode (no --json: one stderr line per finished stage), each
    line timestamped as it arrives: the stages of one process, the push included."""
    env = {**os.environ, "CI": "true", "LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv-cache"),
           "LAMBDASHIP_REGISTRY_URL": reg.url}
    marks: list[tuple[float, str, float]] = []  # (arrival, stage, its own seconds)
    with TreeRss() as rss:
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-m", "lambdaship.cli", "push", "-C", str(app), "--repository", repo,
                              "--tag", "staged"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stderr is not None and p.stdout is not None
        tail = []
        for line in p.stderr:
            tail = [*tail[-40:], line]
            m = STAGE_RE.match(line)
            if m:
                marks.append((time.perf_counter() - t0, m.group(1), float(m.group(2))))
        stdout = p.stdout.read()
        rc = p.wait()
        wall = time.perf_counter() - t0
        offset = rss._t0 - t0  # sampler clock → this clock
    if rc != 0:
        raise SystemExit(f"lambdaship push failed ({rc}):\n{''.join(tail)[-3000:]}")
    first = {st: (at, sec) for at, st, sec in reversed(marks)}
    last = {st: at for at, st, _sec in marks}
    built = last.get("built", wall)
    before = last.get("bytecode", built)
    return {"wall": wall, "stages": {st: sec for st, (_at, sec) in first.items() if st not in ("compress", "built")},
            "layers": built - before, "push": wall - built, "built": built, "digest": stdout.strip().split("@")[-1],
            "rss_build": rss.peak_between(0, built - offset), "rss_push": rss.peak_between(built - offset, wall),
            "rss": rss.summary()}


def prepare(dest: Path, base: str) -> Path:
    shutil.copytree(WORKLOAD, dest)
    cfg = dest / "lambdaship.toml"
    cfg.write_text(cfg.read_text().replace('package_type = "image"',
                                           f'package_type = "image"\nbase_image = "{base}"'))
    return dest


def version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------------------------------------
def main() -> None:
    ap = parser(runs=3)
    args = ap.parse_args()
    missing = [t for t in ("uv", "umoci", "skopeo", "pigz") if not shutil.which(t)]
    if missing or not Path("/usr/bin/time").exists():
        raise SystemExit(f"missing tools: {', '.join(missing) or '/usr/bin/time'} "
                         "(apt-get install umoci skopeo pigz time; pip install uv)")
    compile_lambdaship()
    res: dict = {"uptime_start": uptime(), "versions": {
        "lambdaship": version([sys.executable, "-c", "import lambdaship; print(lambdaship.__version__)"]),
        "uv": version(["uv", "--version"]), "umoci": version(["umoci", "--version"]),
        "skopeo": version(["skopeo", "--version"]), "pigz": version(["pigz", "--version"])}}
    print(res["uptime_start"], flush=True)
    load = Load()
    t0 = time.perf_counter()
    with stack_and_base("bench-bigset-") as (tmp, base):
        print(f"base: {base}", flush=True)
        res.update(measure(args.runs, base, tmp))
    res["load"] = load.stop()
    res["wall"] = time.perf_counter() - t0
    res["uptime_end"] = uptime()
    Path("/tmp/bigset-raw.json").write_text(json.dumps(res, default=str))  # to re-render after a failure
    text = render(res, args.runs)
    RESULTS.write_text(text + "\n")
    publish(text, args.write, "bigset", "Big dependency set: lambdaship vs uv + umoci + skopeo and a pigz floor")


KINDS = ("lambdaship", "uv", "nopyc")


def measure(runs: int, base: str, tmp: Path) -> dict:
    app = prepare(tmp / "app", base)
    warm_network(app, tmp)  # the first cold download of a run is slower (caches on the way to PyPI)
    out: dict = {"lambdaship": [], "uv": [], "nopyc": [], "floors": [], "layer_work": [], "rss": []}
    for rep in range(runs):
        print(f"repetition {rep + 1}/{runs}", flush=True)
        home, work, home_nopyc = tmp / f"lambdaship-{rep}", tmp / f"uv-{rep}", tmp / f"nopyc-{rep}"
        for d in (home, work, home_nopyc):
            d.mkdir()
        for kind in KINDS[rep % 3:] + KINDS[:rep % 3]:  # the order rotates between repetitions
            reg = Registry(tmp / f"reg-{kind}-{rep}")
            repo = f"big-{kind}-{rep}-{uuid.uuid4().hex[:6]}"
            extra = ""
            try:
                settle(tmp)
                reg.added()
                if kind == "lambdaship":
                    with TreeRss() as rss:
                        dt, digest, _ = push_lambdaship(app, reg, repo, "cold", home)
                    out["rss"].append(rss.summary())
                    r = out["rss"][-1]
                    extra = f"rss cli {r['cli'] / 1e6:.0f} MB, child {r['child'] / 1e6:.0f} MB"
                elif kind == "nopyc":
                    dt, digest, _ = push_lambdaship(app, reg, repo, "cold", home_nopyc, bytecode=False)
                else:
                    dt, digest = push_peer("uv", app, reg, repo, "cold", work, base)
                info = image_info(reg.url, repo, "cold")
                out[kind].append({"cold": dt, "bytes": reg.added(), "digest": digest, "layers": info["layers"],
                                  "size": info["size"]})
            finally:
                reg.stop()
            print(f"  {kind:10s} cold {dt:7.2f} s  {out[kind][-1]['bytes'] / 1e6:8.1f} MB pushed  "
                  f"{len(info['layers'])} layers  load {os.getloadavg()[0]:.1f}  {extra}", flush=True)
        tree = next((home / "deps").glob("*/tree"))
        if rep == 0:
            out["tree"], out["uv_tree"] = du(tree), du(work / "deps")
            print(f"  trees: lambdaship {out['tree']}, uv {out['uv_tree']}", flush=True)
        fl = {how: floor_sized(tree, tmp, how) for how in FLOORS + (FLOORS_FIRST if rep == 0 else ())}
        out["floors"].append(fl)
        lw = lambdaship_layer_work(app, home)
        out["layer_work"].append(lw["timings"]["layers"])
        out.setdefault("layer_bytes", sum(lay["size"] for lay in lw["layers"] if lay["role"] == "deps"))
        out.setdefault("layer_work_cached", sum(bool(lay.get("cached")) for lay in lw["layers"]
                                                if lay["role"] == "deps"))
        print(f"  layer work {lw['timings']['layers']:.2f} s; floor "
              + ", ".join(f"{h} {v[0]:.2f} s" for h, v in fl.items()), flush=True)
        if rep == 0:
            out["push"] = push_compare(home / "layout", tmp, rep)
            print(f"  push of the layout: {out['push']}", flush=True)
        if rep == 0:  # nothing is deleted while timing (``_common.settle``): tmp goes at the end
            settle(tmp)
            bd = timed_build(app, tmp / "breakdown-home")
            out["breakdown"] = bd
            print(f"  cold build: {bd['wall']:.2f} s {bd['json']['timings']}; /usr/bin/time max RSS "
                  f"{bd['time_v_rss'] / 1e6:.0f} MB; sampled {bd['rss']}", flush=True)
            settle(tmp)
            reg = Registry(tmp / "reg-staged")
            try:
                out["staged"] = staged_push(app, reg, f"big-staged-{uuid.uuid4().hex[:6]}", tmp / "staged-home")
            finally:
                reg.stop()
            st = out["staged"]
            print(f"  staged push: {st['wall']:.2f} s, stages {st['stages']}, layers {st['layers']:.2f} s, push "
                  f"{st['push']:.2f} s; CLI RSS build {st['rss_build'] / 1e6:.0f} MB, "
                  f"push {st['rss_push'] / 1e6:.0f} MB", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def s(x: float) -> str:
    return f"{x:.2f} s"


def render(res: dict, runs: int) -> str:
    ls, uv, nopyc = res["lambdaship"], res["uv"], res["nopyc"]
    cold_ls, cold_uv = median([r["cold"] for r in ls]), median([r["cold"] for r in uv])
    cold_nopyc = median([r["cold"] for r in nopyc])
    st = res["staged"]
    fl = {h: (median([f[h][0] for f in res["floors"] if h in f]), res["floors"][0][h][1])
          for h in FLOORS + FLOORS_FIRST}
    lw = median(res["layer_work"])
    rss_cli = max(r["cli"] for r in res["rss"])
    rss_child = max(res["rss"], key=lambda r: r["child"])
    rss_tree = max(r["tree"] for r in res["rss"])
    bd = res["breakdown"]
    t = bd["json"]["timings"]
    tree, uvt = res["tree"], res["uv_tree"]
    repro = len({r["digest"] for r in ls}) == 1 if runs > 1 else None
    repro_n = len({r["digest"] for r in nopyc}) == 1 if runs > 1 else None
    cores = os.cpu_count()
    v = res["versions"]
    lines = [
        f"Machine: {platform.machine()}, {cores} cores (nproc), Python {platform.python_version()}; "
        f"lambdaship {v['lambdaship']}, {v['uv']}, {v['umoci']}, {v['skopeo']}, {v['pigz']}. "
        f"Median of {runs} repetitions; 1-minute load average during the run {res['load']} (other people's "
        f"jobs shared the cores). Whole run {res['wall'] / 60:.1f} min.",
        "",
        f"`uptime` at start: {res['uptime_start']}  ",
        f"`uptime` at end: {res['uptime_end']}",
        "",
        "Workload: bench/workloads/big-app — pandas 2.3.2, pyarrow 20.0.0, scipy 1.16.3, scikit-learn 1.7.2, "
        "matplotlib 3.11.2, statsmodels 0.14.6, numba 0.67.0 (llvmlite 0.49.0), numpy 2.2.6 and their "
        f"dependencies: 23 pinned cp311 manylinux x86_64 wheels. Installed by uv --target: {mb(uvt[0])} "
        f"(`du -sb`), {uvt[1]} files; lambdaship's tree (bytecode included, tests pruned): {mb(tree[0])}, "
        f"{tree[1]} files. Python 3.11 x86_64 on the debootstrap Lambda-like base in a local registry, pushed "
        "to a fresh registry per pipeline and repetition; bytes = blob bytes new in its storage.",
        "",
        "| pipeline | cold build+push | bytes pushed | image (gzip) | layers | reproducible |",
        "|---|---|---|---|---|---|",
        f"| lambdaship `push --repository R` (empty LAMBDASHIP_HOME, uv cache) | {s(cold_ls)} | "
        f"{mb(median([r['bytes'] for r in ls]))} | {mb(ls[0]['size'])} | {len(ls[0]['layers'])} | "
        f"{REPRO[repro]} |",
        f"| (b') uv --target + umoci + skopeo (empty uv cache) | {s(cold_uv)} | "
        f"{mb(median([r['bytes'] for r in uv]))} | {mb(uv[0]['size'])} | {len(uv[0]['layers'])} | — |",
        f"| lambdaship, no bytecode (`LAMBDASHIP_BYTECODE=0`: what (b') ships) | {s(cold_nopyc)} | "
        f"{mb(median([r['bytes'] for r in nopyc]))} | {mb(nopyc[0]['size'])} | {len(nopyc[0]['layers'])} | "
        f"{REPRO[repro_n]} |",
        "",
        "Runs, in seconds (the order of the three rotates between repetitions): "
        + "; ".join(f"{k} " + ", ".join(f"{r['cold']:.1f}" for r in res[k]) for k in KINDS) + ".",
        "",
        f"Layer work over lambdaship's installed tree ({mb(tree[0])}), same {cores} cores:",
        "",
        "| | time | output |",
        "|---|---|---|",
        f"| lambdaship layer work (`build --json` `timings.layers`, dependencies installed, layer cache empty; "
        f"ISA-L level 3, {cores} threads) | {s(lw)} | {mb(res['layer_bytes'])} (deps layers) |",
    ]
    for h in FLOORS + FLOORS_FIRST:
        runs_h = "" if h in FLOORS else " (first repetition)"
        lines.append(f"| floor: {FLOOR_LABEL[h]}{runs_h} | {s(fl[h][0])} | {mb(fl[h][1])} |")
    lines += [
        "",
        f"(The layer-work build found {res['layer_work_cached']} of its dependency layers cached: 0 = all written.)",
        "",
        "Where lambdaship's cold time goes, first repetition: (i) one more cold `lambdaship build --json` "
        f"({s(bd['wall'])} wall), its `timings`; (ii) one more cold `lambdaship push` in line mode "
        f"({s(st['wall'])} wall), the seconds on its stage lines, layers = bytecode line to `built` line, "
        "push = `built` line to exit; (iii) the built layout pushed alone to an empty registry.",
        "",
        "| stage | (i) `build --json` | (ii) `push`, line mode |",
        "|---|---|---|",
    ]
    stages = st["stages"]
    for k, val in t.items():
        key = k.removeprefix("deps_")
        other = stages.pop(key, None) if key in ("install", "bytecode") else None
        if k == "layers":
            other = st["layers"]
        lines.append(f"| {k} | {val:.2f} | {'' if other is None else f'{other:.2f}'} |")
    for k, val in stages.items():
        lines.append(f"| {k} (line) | | {val:.2f} |")
    p = res["push"]
    lines += [
        f"| push | — | {st['push']:.2f} |",
        f"| total | {bd['wall']:.2f} (wall) | {st['wall']:.2f} (wall) |",
        "",
        f"(iii) push of the built layout alone ({mb(p['bytes'])}): lambdaship `push_image` in-process "
        f"{s(p['lambdaship'])}, `skopeo copy` {s(p['skopeo'])}.",
        "",
        "Image layers (lambdaship splits large distributions into layers of their own):",
        "",
        "| role | name | gzip | unpacked | distributions |",
        "|---|---|---|---|---|",
    ]
    for lay in bd["json"]["layers"]:
        pk = lay.get("packages") or []
        lines.append(f"| {lay['role']} | {lay.get('name', '')} | {mb(lay['size'])} | "
                     f"{mb(lay['uncompressed_size']) if lay.get('uncompressed_size') else '—'} | "
                     f"{', '.join(pk) if len(pk) <= 4 else f'{len(pk)} distributions'} |")
    lines += [
        "",
        f"Peak RSS of lambdaship's cold build+push (sampled from /proc every 0.25 s, VmHWM per process, "
        f"max over {len(res['rss'])} runs): CLI process {mb(rss_cli)}; largest child {mb(rss_child['child'])} "
        f"(`{rss_child['child_cmd'][:70]}`); whole tree summed {mb(rss_tree)}. Cold `build` under "
        f"`/usr/bin/time -v` (largest single process of the tree): {mb(bd['time_v_rss'])}; sampled: CLI "
        f"{mb(bd['rss']['cli'])}, largest child {mb(bd['rss']['child'])}, tree {mb(bd['rss']['tree'])}. "
        f"Line-mode push: CLI {mb(st['rss_build'])} until the `built` line, {mb(st['rss_push'])} while pushing.",
        "",
        "Targets (issue 21), ratios from this run:",
        "",
        "| target | ratio / value | limit | met |",
        "|---|---|---|---|",
    ]
    checks = [
        ("cold build+push ≤ 0.5x (b') uv + umoci + skopeo", cold_ls / cold_uv, TARGETS["cold"]),
        ("the same without bytecode (`LAMBDASHIP_BYTECODE=0`)", cold_nopyc / cold_uv, TARGETS["cold"]),
        ("layer work ≤ 1.2x pigz -6 floor", lw / fl["pigz6"][0], TARGETS["layers"]),
        ("layer work vs pigz -1 floor (for reference)", lw / fl["pigz1"][0], TARGETS["layers"]),
    ]
    for label, ratio, limit in checks:
        lines.append(f"| {label} | {ratio:.2f} | {limit:.2f} | {'yes' if ratio <= limit else 'no'} |")
    peak = max(rss_cli, rss_child["child"])
    lines.append(f"| peak RSS ≤ 500 MB (largest process: CLI or child) | {mb(peak)} | 500 MB | "
                 f"{'yes' if peak <= TARGETS['rss'] else 'no'} |")
    lines.append(f"| the same, summed over the tree | {mb(rss_tree)} | 500 MB | "
                 f"{'yes' if rss_tree <= TARGETS['rss'] else 'no'} |")
    lines += ["", "Reproduce: `python bench/bigset.py [--runs N]` (`--write` rewrites this section). Needs root, "
              "uv, umoci, skopeo, pigz, GNU time, docker-registry, moto."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
