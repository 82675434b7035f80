"""Push throughput: `lambdaship push` next to `skopeo copy` of the same OCI layout, same registry.

    python bench/push.py [--runs 5] [--write]

Workload: an OCI layout with three gzip layers made from this machine's site-packages
(scipy+scipy.libs as the "base", numpy+numpy.libs+botocore as "dependencies", a small "app"
layer) — real Python packages, real compression ratio. A fresh distribution registry (and a
second one for the registry-to-registry case) is started for the run. Scenarios, each the
median of --runs:

* cold: every blob uploaded to a new repository (ours: CLI `lambdaship push --layout --to`;
  skopeo: `skopeo copy oci:LAYOUT:latest docker://...`);
* unchanged: the same image pushed again to the same repository (both only HEAD the blobs);
* code change: only the app layer differs (new config + app layer + manifest);
* registry→registry: the image's base layers live on another registry; ours streams them
  (the layout holds only the app layer), skopeo copies `docker://A/... docker://B/...`.

--write puts the table into docs/benchmarks.md (Push section).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from _common import parse_args, publish  # noqa: E402  (bench/ is on sys.path when run as a script)

from lambdaship.image.layer import tree_entries, write_layer  # noqa: E402
from lambdaship.image.model import (  # noqa: E402
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    BlobSource,
    Image,
    Layer,
    canonical_json,
    write_layout,
)
from lambdaship.image.mutate import make_manifest  # noqa: E402


def site_dir() -> Path:
    return Path(site.getsitepackages()[0])


def make_layer(blob_dir: Path, dirs: list[str]) -> Layer:
    sp = site_dir()
    entries = []
    for d in dirs:
        if (sp / d).is_dir():
            entries += tree_entries(sp / d, f"var/task/{d}")
    return write_layer(entries, blob_dir, media_type=OCI_LAYER_GZIP)


def make_image(layers: list[Layer], label: str) -> Image:
    config = canonical_json({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["app.handler"], "Labels": {"bench": label}, "WorkingDir": "/var/task"},
        "rootfs": {"type": "layers", "diff_ids": [x.diff_id for x in layers]},
    })
    return Image(manifest=make_manifest(OCI_MANIFEST, config, layers), config=config, layers=tuple(layers))


def app_layer(blob_dir: Path, n: int) -> Layer:
    from lambdaship.image.layer import Entry

    return write_layer([Entry("var/task/app.py", "file", data=f"VERSION = {n}\n".encode() * 50)], blob_dir,
                       media_type=OCI_LAYER_GZIP)


CPU: dict[str, list[float]] = {}


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall time of ``cmd``; its CPU time (user+sys) is appended to CPU[cmd[0]]."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(cmd[0], []).append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])}… failed: {proc.stderr.strip()[-500:]}")
    return dt, proc.stdout


def ours(layout: Path, dest: str) -> tuple[float, dict]:
    dt, out = timed([sys.executable, "-m", "lambdaship.cli", "push", "--layout", str(layout), "--to", dest,
                     "--tag", "bench", "--json"], env={"PYTHONPATH": str(REPO / "src")})
    return dt, json.loads(out)


def library(image: Image, dest: str, expect_uploaded: int) -> float:
    from lambdaship.registries import push_image

    t0 = time.perf_counter()
    res = push_image(image, dest, ["bench"])
    dt = time.perf_counter() - t0
    assert res.uploaded_blobs == expect_uploaded, res
    return dt


def skopeo(src: str, dest: str) -> float:
    return timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", src,
                  f"docker://{dest}:bench"])[0]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    args = parse_args(runs=5)
    from lambdaship.local import stack

    work = Path(tempfile.mkdtemp(prefix="lambdaship-bench-push-"))
    blobs = work / "blobs"
    print("building layers from site-packages …", file=sys.stderr)
    base = make_layer(blobs, ["scipy", "scipy.libs"])
    deps = make_layer(blobs, ["numpy", "numpy.libs", "botocore"])
    apps = [app_layer(blobs, i) for i in range(args.runs + 1)]
    image = make_image([base, deps, apps[0]], "0")
    layout = write_layout(image, work / "layout")
    total = sum(x.size for x in image.layers) + len(image.config)

    url2, p2 = stack.start_registry(work / "upstream")
    h2 = url2.removeprefix("http://")
    procs = [p2]
    rows: dict[str, dict[str, list[float]]] = {}
    cpu: dict[str, dict[str, list[float]]] = {}

    def add(scenario: str, who: str, dt: float) -> None:
        rows.setdefault(scenario, {}).setdefault(who, []).append(dt)
        if who != "library":
            exe = sys.executable if who == "ours" else "skopeo"
            cpu.setdefault(scenario, {}).setdefault(who, []).append(CPU[exe][-1])

    def fresh(name: str) -> str:
        # A new, empty registry on a new port: skopeo's blob-info cache (which remembers where
        # it pushed blobs before and mounts them from there) cannot help it, nor can anything help us.
        url, proc = stack.start_registry(work / f"{name}-{uuid.uuid4().hex[:6]}")
        procs.append(proc)
        return url.removeprefix("http://")

    try:
        # Upstream copy of the base+deps for the registry-to-registry case.
        ours(layout, f"{h2}/upstream")
        remote = [Layer(x.descriptor, x.diff_id, source=BlobSource(url2, "upstream")) for x in (base, deps)]
        lay3 = write_layout(make_image([*remote, apps[0]], "0"), work / "layout-remote")
        for i in range(args.runs):
            t_start = timed([sys.executable, "-m", "lambdaship.cli", "--version"],
                            env={"PYTHONPATH": str(REPO / "src")})[0]
            add("start-up only (`--version`)", "ours", t_start)
            add("start-up only (`--version`)", "skopeo", timed(["skopeo", "--version"])[0])
            r_ours, r_sko = f"{fresh('ours')}/fn", f"{fresh('skopeo')}/fn"
            dt, res = ours(layout, r_ours)
            assert res["uploaded_blobs"] == 4, res
            add("cold (all blobs uploaded)", "ours", dt)
            add("cold (all blobs uploaded)", "skopeo", skopeo(f"oci:{layout}:latest", r_sko))
            dt, res = ours(layout, r_ours)
            assert res["uploaded_blobs"] == 0, res
            add("unchanged re-push", "ours", dt)
            add("unchanged re-push", "skopeo", skopeo(f"oci:{layout}:latest", r_sko))
            changed = make_image([base, deps, apps[i + 1]], str(i + 1))
            lay2 = write_layout(changed, work / f"layout-{i}")
            dt, res = ours(lay2, r_ours)
            assert res["uploaded_blobs"] == 2, res
            add("code-only change", "ours", dt)
            add("code-only change", "skopeo", skopeo(f"oci:{lay2}:latest", r_sko))
            # The same three pushes in-process (what `lambdaship deploy` does: no interpreter start-up).
            r_lib = f"{fresh('lib')}/fn"
            add("cold (all blobs uploaded)", "library", library(image, r_lib, 4))
            add("unchanged re-push", "library", library(image, r_lib, 0))
            add("code-only change", "library", library(make_image([base, deps, apps[i + 1]], f"lib{i}"), r_lib, 2))
            add("registry→registry (base+deps streamed)", "library",
                library(make_image([*remote, apps[0]], "0"), f"{fresh('r2r-lib')}/fn", 4))
            # Registry→registry: base+deps are remote layers on the upstream registry.
            dt, res = ours(lay3, f"{fresh('r2r-ours')}/fn")
            assert res["streamed_blobs"] == 2, res
            add("registry→registry (base+deps streamed)", "ours", dt)
            add("registry→registry (base+deps streamed)", "skopeo",
                skopeo(f"docker://{h2}/upstream:bench", f"{fresh('r2r-skopeo')}/fn"))
            for proc in procs[1:]:
                stack.stop_registry(proc)
            del procs[1:]
    finally:
        for proc in procs:
            stack.stop_registry(proc)
        shutil.rmtree(work, ignore_errors=True)

    mb = total / 1e6
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"skopeo {subprocess.run(['skopeo', '--version'], capture_output=True, text=True).stdout.split()[-1]}, "
        f"distribution registry on 127.0.0.1. Image: 3 gzip layers from real packages "
        f"(scipy {base.size / 1e6:.1f} MB, numpy+botocore {deps.size / 1e6:.1f} MB, app < 1 kB) + config, "
        f"{mb:.1f} MB in all. Median of {args.runs} runs; both tools run as a CLI process; CPU = user+sys "
        f"of the client process (the registry's own work is the same for both). Load average at the end: "
        f"{os.getloadavg()[0]:.1f}.",
        "",
        "| scenario | `lambdaship push` (CLI) | `push_image` in-process | `skopeo copy` | skopeo / CLI | "
        "skopeo / in-process | CPU: CLI | CPU: skopeo |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario, who in rows.items():
        o, s = median(who["ours"]), median(who["skopeo"])
        lib = median(who["library"]) if "library" in who else None
        co, cs = median(cpu[scenario]["ours"]), median(cpu[scenario]["skopeo"])
        lib_t = f"{lib:.2f} s" if lib else "—"
        lib_r = f"{s / lib:.2f}x" if lib else "—"
        lines.append(f"| {scenario} | {o:.2f} s | {lib_t} | {s:.2f} s | {s / o:.2f}x | {lib_r} "
                     f"| {co:.2f} s | {cs:.2f} s |")
    lines += ["", "Reproduce: `python bench/push.py --runs 5 --write`."]
    publish("\n".join(lines), args.write, "push", "Push: `lambdaship push` vs `skopeo copy`")


if __name__ == "__main__":
    main()
