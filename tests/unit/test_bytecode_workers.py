"""compile_tree's workers: every file compiled once, dealt by size, and the interpreters running at
once (a worker fed only after the previous one finished made the dependency bytecode serial)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from lambdaship.package import bytecode


def test_split_by_size_deals_every_job_once_and_balances_bytes(tmp_path: Path) -> None:
    sizes = [400_000, 10, 10, 10, 200_000, 190_000, 5_000, 5_000]
    jobs = []
    for i, n in enumerate(sizes):
        p = tmp_path / f"m{i}.py"
        p.write_bytes(b"#" * n)
        jobs.append((str(p), f"/var/task/m{i}.py"))
    parts = bytecode.split_by_size(jobs, 2)
    assert sorted(j for part in parts for j in part) == sorted(jobs)
    loads = [sum(os.stat(src).st_size for src, _ in part) for part in parts]
    assert max(loads) - min(loads) <= 10  # 400,020 and 400,010 bytes (dealt by position: 605,010 and 195,020)
    big = next(part for part in parts if jobs[0] in part)
    assert jobs[4] not in big and jobs[5] not in big
    assert bytecode.split_by_size(jobs, 2) == parts  # deterministic


def test_workers_run_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    for i in range(120):
        (tree / "pkg" / f"m{i}.py").write_text(f"X = {i}\n")
    log = tmp_path / "log"
    log.mkdir()
    # An interpreter that records when it starts and stops around the real one's work.
    wrapper = tmp_path / "python"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, subprocess, sys, time\n"
        f"log = {str(log)!r}\n"
        "start = time.monotonic()\n"
        "time.sleep(0.5)\n"
        f"rc = subprocess.run([{sys.executable!r}] + sys.argv[1:]).returncode\n"
        "open(os.path.join(log, str(os.getpid())), 'w').write(f'{start} {time.monotonic()}')\n"
        "sys.exit(rc)\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(bytecode, "usable_cores", lambda: 2)
    bytecode.compile_tree(tree, str(wrapper))
    spans = [tuple(map(float, f.read_text().split())) for f in log.iterdir()]
    assert len(spans) == 2
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1, f"the two workers ran one after the other: {json.dumps(spans)}"
    pycs = sorted(p.name for p in tree.rglob("*.pyc"))
    assert len(pycs) == 120
