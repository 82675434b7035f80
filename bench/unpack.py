"""Applying one image layer to an empty rootfs: lambdaship's verified applier next to `tar -xzf`.

    python bench/unpack.py [--runs 3] [--baseline REV] [--write]

Layers:
  * base: the offline debootstrap Lambda-like base (`lambdaship local base`; one gzip layer, built
    once and cached in the base cache);
  * deps: a Python dependency tree (`pip install --target` of numpy + pandas, PyPI only) as one
    gzip layer below /var/task, built once under $TMPDIR/lambdaship-bench-unpack.
Methods, each into a fresh empty directory on the same filesystem, interleaved per repetition:
  * lambdaship: `rootfs.apply_layer` in this process (digest and diff_id verified while streaming);
  * baseline: the same function from git revision REV (`--baseline`, e.g. the commit before a change);
  * tar: `tar -xzf LAYER -C DIR` (as the user running the bench; root restores owners too);
  * umoci: `umoci raw unpack` of a one-layer OCI layout of the same blob (if umoci is installed).
Wall time and CPU time (user + system, children included) are medians of --runs; before every run
the previous tree is removed and `sync` flushes what is dirty, so writeback of one run does not land
in the next. Each lambdaship tree is also compared with tar's (content, size, file mtime to 1 us,
symlink targets, hard-link groups; modes as lambdaship normalises them: no setuid/setgid, owner
read, directories owner rwx) and, with --baseline, exactly with the baseline's.

--write puts the text into docs/benchmarks.md (section "Layer unpack").
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from _common import parser, publish  # noqa: E402  (bench/ is on sys.path when run as a script)

from lambdaship.local import rootfs  # noqa: E402

DEPS = ("numpy==2.4.6", "pandas==3.1.1")
WORK = Path(tempfile.gettempdir()) / "lambdaship-bench-unpack"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def base_layer() -> Path:
    from lambdaship.local import base

    return base.build_layer().layer


def deps_layer() -> Path:
    """numpy + pandas installed with pip --target, as one gzip layer (explicit parent entries)."""
    key = hashlib.sha256(" ".join(DEPS).encode()).hexdigest()[:12]
    out = WORK / f"deps-{key}.tar.gz"
    if out.exists():
        return out
    tree = WORK / f"deps-{key}"
    shutil.rmtree(tree, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"} | {"PIP_CONFIG_FILE": "/dev/null"}
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
                    "--target", str(tree), *DEPS], check=True, env=env)
    import tarfile

    from isal import igzip

    tmp = out.with_suffix(".part")
    with igzip.open(tmp, "wb", compresslevel=2) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for name in ("var", "var/task"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(info)
        for dirpath, dirnames, filenames in os.walk(tree):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, name)
                tf.add(path, arcname="var/task/" + os.path.relpath(path, tree), recursive=False)
    os.replace(tmp, out)
    shutil.rmtree(tree, ignore_errors=True)
    return out


def oci_layout(blob: Path) -> Path:
    """A one-layer OCI layout (tag ``bench``) holding ``blob``, for umoci."""
    layout = WORK / f"layout-{blob.name.split('.')[0]}"
    if (layout / "index.json").exists():
        return layout
    shutil.rmtree(layout, ignore_errors=True)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    diff_id = rootfs.apply_layer(blob, WORK / "diff-id-probe")
    shutil.rmtree(WORK / "diff-id-probe")
    os.link(blob, blobs / digest) if blob.stat().st_dev == blobs.stat().st_dev else shutil.copy(blob, blobs / digest)

    def put(obj: dict) -> dict:
        data = json.dumps(obj).encode()
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        return {"digest": f"sha256:{h}", "size": len(data)}

    config = put({"architecture": "amd64", "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    manifest = put({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": f"sha256:{digest}", "size": blob.stat().st_size}]})
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
         "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}))
    return layout


def load_baseline(rev: str) -> ModuleType:
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:src/lambdaship/local/rootfs.py"],
                         capture_output=True, text=True, check=True).stdout
    path = WORK / f"rootfs_{rev.replace('/', '_')}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"rootfs_baseline_{abs(hash(rev))}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def measure(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s: user + system of this process and its children)."""
    t0, w = os.times(), time.perf_counter()
    fn()
    wall, t1 = time.perf_counter() - w, os.times()
    cpu = sum(t1[i] - t0[i] for i in range(4))
    return wall, cpu


def describe(root: Path, normalise: bool = False) -> tuple[dict[str, tuple], list[tuple[str, ...]]]:
    """Every entry: kind, mode, size, sha256, mtime (us) for files; hard-link groups by inode."""
    out: dict[str, tuple] = {}
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if normalise:
                mode = (mode & 0o1777) | 0o400 | (0o700 if stat.S_ISDIR(st.st_mode) else 0)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").hexdigest()
                out[rel] = ("file", mode, st.st_size, digest, st.st_mtime_ns // 1000)
                inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode)
            else:  # tar keeps devices and FIFOs, lambdaship drops them
                out[rel] = ("special",)
    return out, sorted(tuple(sorted(v)) for v in inodes.values() if len(v) > 1)


def compare(ours: Path, other: Path, *, normalise: bool, mtimes: bool) -> str:
    a, la = describe(ours)
    b, lb = describe(other, normalise)
    b = {k: v for k, v in b.items() if v != ("special",)}

    def same(x: tuple | None, y: tuple | None) -> bool:
        if x is None or y is None or x[0] != "file" or y[0] != "file":
            return x == y
        return x[:4] == y[:4] and (not mtimes or abs(x[4] - y[4]) <= 2)  # tarfile's float mtime: ~1 us

    diff = sorted(k for k in a.keys() | b.keys() if not same(a.get(k), b.get(k)))
    if not diff and la == lb:
        return f"identical ({len(a):,} entries, {len(la)} hard-link groups)"
    return f"{len(diff)} entries differ (e.g. {diff[:3]}), hard links {'equal' if la == lb else 'differ'}"


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    os.sync()
    return path


def main() -> None:
    ap = parser(runs=3)
    ap.add_argument("--baseline", help="also time rootfs.apply_layer from this git revision")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    start = uptime()
    print(start, flush=True)
    layers = {"base": base_layer(), "deps": deps_layer()}
    baseline = load_baseline(args.baseline) if args.baseline else None
    dest = WORK / "dest"

    methods: dict[str, Callable[[Path, Path], object]] = {
        "lambdaship": lambda blob, d: rootfs.apply_layer(blob, d),
        "tar -xzf": lambda blob, d: (d.mkdir(), subprocess.run(["tar", "-xzf", str(blob), "-C", str(d)], check=True)),
    }
    if baseline is not None:
        methods[f"baseline {args.baseline}"] = lambda blob, d: baseline.apply_layer(blob, d)
    if shutil.which("umoci"):
        methods["umoci raw unpack"] = lambda blob, d: subprocess.run(
            ["umoci", "raw", "unpack", "--image", f"{oci_layout(blob)}:bench", str(d)],
            check=True, capture_output=True)
        for blob in layers.values():
            oci_layout(blob)

    rows, checks = [], []
    for lname, blob in layers.items():
        entries = int(subprocess.run(f"tar -tzf {blob} | wc -l", shell=True, capture_output=True,
                                     text=True, check=True).stdout)
        times: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
        for _ in range(args.runs):
            for mname, fn in methods.items():
                d = fresh(dest)
                times[mname].append(measure(lambda fn=fn, d=d, blob=blob: fn(blob, d)))
                print(f"  {lname} {mname}: {times[mname][-1][0]:.2f} s  load {os.getloadavg()[0]:.1f}", flush=True)
        tar_wall = statistics.median(w for w, _ in times["tar -xzf"])
        for mname, ts in times.items():
            wall, cpu = statistics.median(w for w, _ in ts), statistics.median(c for _, c in ts)
            rows.append(f"| {lname} ({entries:,} entries, {blob.stat().st_size / 1e6:.0f} MB gz) | {mname} "
                        f"| {wall:.2f} | {cpu:.2f} | {wall / tar_wall:.2f}x |")
        # correctness: lambdaship's tree against tar's (normalised) and the baseline's (exact)
        rootfs.apply_layer(blob, fresh(dest))
        other = fresh(WORK / "other")
        other.mkdir()
        subprocess.run(["tar", "-xzf", str(blob), "-C", str(other)], check=True)
        checks.append(f"* {lname}: against tar -xzf: {compare(dest, other, normalise=True, mtimes=True)}")
        if baseline is not None:
            baseline.apply_layer(blob, fresh(other))
            checks.append(f"* {lname}: against baseline {args.baseline} (file mtimes not compared: before "
                          f"ba02abd small files got the time of unpacking): "
                          f"{compare(dest, other, normalise=False, mtimes=False)}")
        fresh(other)
    fresh(dest)
    end = uptime()
    text = "\n".join([
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"median of {args.runs}, wall and CPU (user + system, children included) in seconds; "
        "the last column is wall time relative to `tar -xzf`.",
        "",
        "| layer | method | wall s | CPU s | vs tar |",
        "|---|---|---:|---:|---:|",
        *rows,
        "",
        "Trees compared (mode, size, content hash, link targets, hard links; file mtimes to 2 us):",
        *checks,
        "",
        f"`uptime` at start: {start}  ",
        f"`uptime` at end: {end}",
    ])
    publish(text, args.write, "unpack", "Layer unpack")


if __name__ == "__main__":
    main()
