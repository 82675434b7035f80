"""What the benchmark scripts share: their command line (``--write`` and integer options such as
``--runs``) and where their result goes (stdout, and with ``--write`` its section of docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def parser(**numbers: int) -> argparse.ArgumentParser:
    """``--write`` and one integer option per keyword: ``runs=3`` is ``--runs N`` (default 3)."""
    ap = argparse.ArgumentParser()
    for name, default in numbers.items():
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--write", action="store_true", help="put the result into docs/benchmarks.md")
    return ap


def parse_args(**numbers: int) -> argparse.Namespace:
    """The command line of a benchmark with no options but ``--write`` and ``numbers``."""
    return parser(**numbers).parse_args()


def publish(text: str, write: bool, key: str, heading: str) -> None:
    """Print the result; with ``write`` also put it into its section of docs/benchmarks.md."""
    print(text)
    if write:
        write_section(key, heading, text)


def write_section(key: str, heading: str, text: str) -> None:
    """Replace the text between ``<!-- key:start -->`` and ``<!-- key:end -->``; a section that is
    not there yet is appended under ``## heading``."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{text}\n{end}"
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if start in current and end in current:
        before, rest = current.split(start, 1)
        new = before + block + rest.split(end, 1)[1]
    else:
        new = current.rstrip("\n") + f"\n\n## {heading}\n\n" + block + "\n"
    DOC.write_text(new)


# ---- the file system between timed runs ----------------------------------------------------------
# This machine's root file system is ext4 without a journal. There, the inode allocator skips every
# inode freed in the last minute or so (ext4's ``recently_deleted``: 60 s, 360 s while its inode
# table block is dirty), scanning the bitmap past them. After a run deletes a tree of thousands of
# files, each file the next run creates costs up to ~1 ms of kernel time instead of ~0.05 ms: a cold
# `uv pip install` of the seed set took 0.8-0.9 s wall (0.6 s system) with nothing deleted before it
# and 4.4-6.5 s (7-10 s system) right after the previous run's tree was deleted (perf: 24 % of all
# samples in find_get_block_common under recently_deleted). That is the bench's own doing, not the
# pipelines', and it fell on whichever pipeline came next; a fresh CI runner or a journaled file
# system never sees it. So the benches delete nothing while they time (their work directory goes
# at the end), and each timed cold run first waits for the file system to be quiet (``settle``).


def file_create_ms(where: Path, dirs: int = 200, files: int = 4) -> float:
    """Milliseconds per directory or file created (1 kB written to each file) under ``where``, median
    over ``dirs`` new directories of ``files`` files each: new directories are spread over the block
    groups as an installer's are. The files are kept (deleting them is what this measures)."""
    probe = Path(tempfile.mkdtemp(prefix="inode-probe-", dir=where))
    times = []
    for i in range(dirs):
        t = time.perf_counter()
        d = probe / f"d{i}"
        d.mkdir()
        for j in range(files):
            (d / f"f{j}").write_bytes(b"x" * 1024)
        times.append((time.perf_counter() - t) / (files + 1))
    return statistics.median(times) * 1000


def settle(where: Path, limit_ms: float = 0.05, wait_s: float = 480.0) -> float:
    """Wait (untimed) until creating a file or directory under ``where`` costs at most ``limit_ms``
    in two probes in a row (quiet: ~0.02 ms here; 0.2-0.9 ms for the first minutes after ~10,000
    inodes were freed, back to quiet after ~5 min), at most ``wait_s`` seconds. Returns the last
    probe's figure, printed when it had to wait."""
    t0 = time.monotonic()
    ms = file_create_ms(where)
    ok = int(ms <= limit_ms)
    while ok < 2:
        if time.monotonic() - t0 > wait_s:
            print(f"  file system not quiet after {wait_s:.0f} s: {ms:.3f} ms per inode created", flush=True)
            return ms
        time.sleep(1 if ok else 10)
        ms = file_create_ms(where)
        ok = ok + 1 if ms <= limit_ms else 0
    if time.monotonic() - t0 > 3:
        print(f"  file system quiet after {time.monotonic() - t0:.0f} s: {ms:.3f} ms per inode created", flush=True)
    return ms
