"""Write one benchmark's results into its marked section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


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
