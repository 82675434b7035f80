"""What the benchmark scripts share: their command line (``--write`` and integer options such as
``--runs``) and where their result goes (stdout, and with ``--write`` its section of docs/benchmarks.md)."""

from __future__ import annotations

import argparse
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
