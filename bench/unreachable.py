"""Time until `lambdaship push` reports an unreachable registry (issue #20: it was ~26 s).

    python bench/unreachable.py [--runs 3] [--write]

An OCI layout of one small layer is pushed (`lambdaship push --layout L --to R/x`, a real
process) to: a closed port on 127.0.0.1 (connection refused), a name that does not resolve
(`registry.invalid`), and a blackholed port (a listener with a full accept queue: the kernel
drops the SYNs, as a firewall does). Median seconds from start to exit over --runs, with the
default settings (3 s connect timeout, 2 quick retries of a refused connection, 1 of a timeout).

--write puts the table into docs/benchmarks.md (Unreachable registry section).
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from _common import parse_args, publish  # noqa: E402  (bench/ is on sys.path when run as a script)
from tests.faultproxy import blackholed, closed_port  # noqa: E402
from tests.images import docker_image  # noqa: E402

from lambdaship.image.layer import Entry, write_layer  # noqa: E402
from lambdaship.image.model import write_layout  # noqa: E402


def _layout(root: Path) -> Path:
    layer = write_layer([Entry("var/task/app.py", "file", data=b"def handler(e, c):\n    return 1\n")],
                        root / "blobs")
    return write_layout(docker_image([layer], {}), root / "layout", ref="latest")


def _closed() -> str:
    return f"127.0.0.1:{closed_port()}"


@contextlib.contextmanager
def _blackholed() -> Iterator[str]:
    with blackholed() as port:
        yield f"127.0.0.1:{port}"


def _seconds(layout: Path, registry: str) -> tuple[float, str]:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "lambdaship.cli", "push", "--layout", str(layout), "--to",
                        f"{registry}/x"], capture_output=True, text=True, timeout=300)
    took = time.monotonic() - t0
    assert r.returncode != 0, r.stdout
    return took, r.stderr.strip().splitlines()[-1][:90]


def main() -> None:
    args = parse_args(runs=3)
    with tempfile.TemporaryDirectory() as tmp:
        layout = _layout(Path(tmp))
        rows = []
        for name, target in (("connection refused (closed port)", _closed), ("name does not resolve", None),
                             ("blackholed (SYNs dropped)", _blackholed)):
            times = []
            for _ in range(args.runs):
                if target is _blackholed:
                    with _blackholed() as reg:
                        took, line = _seconds(layout, reg)
                else:
                    took, line = _seconds(layout, target() if target else "registry.invalid:5000")
                times.append(took)
            rows.append(f"| {name} | {statistics.median(times):.1f} s | `{line}…` |")
    text = "\n".join(["| registry | time to the error (median) | the error |", "|---|---|---|", *rows])
    publish(text, args.write, "unreachable", "Unreachable registry")


if __name__ == "__main__":
    main()
