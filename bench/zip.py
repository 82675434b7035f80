"""Zip packaging speed and size: lambdaship's deterministic zip next to Info-ZIP and Python's zipfile.

    python bench/zip.py [--runs 3] [--write]

Workload: a copy of examples/handler-app whose requirements are numpy 2.3.4 + pandas 2.3.3
(wheels for python3.12 x86_64, ≈136 MiB unzipped: a heavy app that still fits a direct zip
upload). Dependencies are installed once first (that time is reported, not compared).

Scenarios (wall time, median of --runs):
* cold zip: empty zip cache, dependencies installed — lambdaship compresses everything (level 9);
* code-only change: one line of handler.py changed — lambdaship reuses the compressed
  dependency entries and compresses only the app;
* `lambdaship size` warm: the report when nothing changed (CLI process, start-up included);
* peers on the same files: `zip -9 -r -X -q` (Info-ZIP) and Python's ``zipfile`` (deflate 9);
  each has no cache, so its code-only change costs a full run again.
Also: sizes, and whether two builds after touching every file give the same sha256.

--write puts the table into docs/benchmarks.md (Zip section).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _common import parse_args, publish

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = "numpy==2.3.4\npandas==2.3.3\n"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _touch_all(root: Path, t: int) -> None:
    for dirpath, _d, files in os.walk(root):
        for f in files:
            os.utime(Path(dirpath, f), (t, t))


def _info_zip(out: Path, tree: Path, app: Path) -> None:
    out.unlink(missing_ok=True)
    subprocess.run(["zip", "-9", "-r", "-X", "-q", str(out), "."], cwd=tree, check=True)
    subprocess.run(["zip", "-9", "-r", "-X", "-q", str(out), "."], cwd=app, check=True)


def _py_zip(out: Path, files: list[tuple[str, Path]]) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for arc, p in files:
            zf.write(p, arc)


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    args = parse_args(runs=3)

    work = Path(tempfile.mkdtemp(prefix="lambdaship-bench-zip-"))
    os.environ["LAMBDASHIP_HOME"] = str(work / "home")
    from lambdaship import project
    from lambdaship.config import load_project
    from lambdaship.package import archive, deps

    app = work / "app"
    shutil.copytree(REPO / "examples" / "handler-app", app)
    (app / "requirements.txt").write_text(REQUIREMENTS)
    fn = load_project(app).function()
    install = _timed(lambda: deps.install(fn, target="lambda"))
    tree = Path(deps.install(fn, target="lambda").path)
    files = archive.tree_files(tree) + project.app_files(fn)

    cold, code, peers_iz, peers_py, size_warm = [], [], [], [], []
    art = None
    for i in range(args.runs):
        shutil.rmtree(archive.cache_dir(), ignore_errors=True)
        cold.append(_timed(lambda: archive.build_zip(fn)))
        (app / "handler.py").write_text((app / "handler.py").read_text() + f"\n# change {i}\n")
        code.append(_timed(lambda: archive.build_zip(fn)))
        art = archive.build_zip(fn)
        size_warm.append(_timed(lambda: subprocess.run(
            [sys.executable, "-m", "lambdaship.cli", "size", "--json"], cwd=app, check=True, capture_output=True)))
        peers_iz.append(_timed(lambda: _info_zip(work / "infozip.zip", tree, app)))
        peers_py.append(_timed(lambda: _py_zip(work / "py.zip", archive.tree_files(tree) + project.app_files(fn))))
    assert art is not None

    # reproducibility after touching every file
    first = art.sha256
    _touch_all(app, 1_700_000_000)
    shutil.rmtree(archive.cache_dir(), ignore_errors=True)
    again = archive.build_zip(fn).sha256
    _info_zip(work / "infozip.zip", tree, app)
    _py_zip(work / "py.zip", archive.tree_files(tree) + project.app_files(fn))
    iz1, py1 = _sha(work / "infozip.zip"), _sha(work / "py.zip")
    _touch_all(tree, 1_600_000_000)
    _info_zip(work / "infozip.zip", tree, app)
    _py_zip(work / "py.zip", archive.tree_files(tree) + project.app_files(fn))
    iz2, py2 = _sha(work / "infozip.zip"), _sha(work / "py.zip")
    shutil.rmtree(archive.cache_dir(), ignore_errors=True)
    _touch_all(tree, 1_700_000_000)
    ours_after_tree_touch = archive.build_zip(fn).sha256

    unzipped = sum(p.stat().st_size for _, p in files)
    med = statistics.median
    mib = 1024 * 1024
    rows = [
        "| | lambdaship zip | `zip -9 -r -X` (Info-ZIP) | Python `zipfile` (deflate 9) |",
        "|---|---|---|---|",
        f"| first build (no cache) | {med(cold):.1f} s | {med(peers_iz):.1f} s | {med(peers_py):.1f} s |",
        f"| code-only change | {med(code):.2f} s | {med(peers_iz):.1f} s (full run) "
        f"| {med(peers_py):.1f} s (full run) |",
        f"| zip size | {art.size / mib:.2f} MiB | {(work / 'infozip.zip').stat().st_size / mib:.2f} MiB "
        f"| {(work / 'py.zip').stat().st_size / mib:.2f} MiB |",
        f"| same sha256 after touching every file | {'yes' if first == again == ours_after_tree_touch else 'NO'} "
        f"| {'yes' if iz1 == iz2 else 'no (stores mtimes)'} | {'yes' if py1 == py2 else 'no (stores mtimes)'} |",
    ]
    text = "\n".join([
        f"Workload: numpy 2.3.4 + pandas 2.3.3 for python3.12 x86_64 + examples/handler-app: {len(files)} files, "
        f"{unzipped / mib:.1f} MiB unzipped. Dependency install (uv, once, not compared): {install:.1f} s. "
        f"Median of {args.runs} runs on {os.cpu_count()} cores. `lambdaship size --json` with warm caches: "
        f"{med(size_warm):.2f} s (CLI process). Load average during the run: "
        f"{os.getloadavg()[0]:.1f} (a shared machine: compare columns, not absolute times).",
        "",
        *rows,
    ])
    publish(text, args.write, "zip", "Zip: `lambdaship` zip vs Info-ZIP and Python `zipfile`")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
