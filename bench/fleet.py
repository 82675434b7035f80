"""Fleet deploys: `deploy --all` of N functions with 1, 2 and 4 workers, and `--changed-since`.

    python bench/fleet.py [--functions 9] [--runs 3] [--write]

Workload: a git repository with N functions (the three-function project of tests/test_fleet.py,
``layout="root"``, repeated), one tiny pinned dependency (six, cached after the first run), the
tiny base image of the tests, all on a fresh local stack (moto server + distribution registry).
Each run deploys a fresh set of function names (new functions: CreateFunction, publish, alias).
Then one shared module changes and ``--changed-since HEAD~1`` deploys the functions that include
it; ``status --all`` reads the fleet. Times are in-process wall clock (no interpreter start-up),
median of --runs.

--write puts the table into docs/benchmarks.md (Fleet section).
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from _common import parse_args, publish

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make(tf, base: str, role: str, n: int) -> Path:  # type: ignore[no-untyped-def]
    names = tf.unique_names("bench")
    root = tf.make_project(Path(tempfile.mkdtemp()) / "repo", names=names, base_image=base, role=role, layout="root")
    text = (root / "lambdaship.toml").read_text()
    extra = ""
    for i in range(n - 3):
        k = "abc"[i % 3]
        table = re.search(r"\[functions\.%s\](.*?)(?=\n\[|\Z)" % k, text, re.S).group(1)  # noqa: UP031
        name = f"bench-{k}{i}-{uuid.uuid4().hex[:8]}"
        extra += f"\n[functions.{k}{i}]" + re.sub(r'function_name = "[^"]+"', f'function_name = "{name}"', table)
    if extra:
        (root / "lambdaship.toml").write_text(text + extra)
        tf.commit(root)
    return root


def main() -> None:
    args = parse_args(functions=9, runs=3)
    os.environ["LAMBDASHIP_HOME"] = tempfile.mkdtemp(prefix="bench-fleet-home-")
    from lambdaship.local import stack

    state_dir = Path(tempfile.mkdtemp(prefix="bench-fleet-stack-"))
    state = stack.up(state_dir)
    os.environ.update(state.env())
    try:
        from tests import test_fleet as tf
        from tests.images import push_base

        from lambdaship.config import load_project
        from lambdaship.deploy.fleet import changes, run, status

        base = push_base(state.registry.url, Path(tempfile.mkdtemp()))
        role = tf.make_role()
        run.deploy_all(load_project(make(tf, base, role, 3)), workers=1)  # warm the caches
        times: dict[str, list[float]] = {}
        root = None
        for _ in range(args.runs):
            for workers in (1, 2, 4):
                root = make(tf, base, role, args.functions)
                t = time.monotonic()
                result = run.deploy_all(load_project(root), workers=workers)
                times.setdefault(f"all {args.functions}, --workers {workers}", []).append(time.monotonic() - t)
                assert result.count("deployed") == args.functions, result.to_json()
            assert root is not None
            tf.write(root, "common/util.py", (root / "common/util.py").read_text() + f"# {uuid.uuid4()}\n")
            tf.commit(root)
            t = time.monotonic()
            decisions = changes.detect_changes(load_project(root), "HEAD~1")
            times.setdefault("change detection", []).append(time.monotonic() - t)
            changed = sum(d.changed for d in decisions)
            t = time.monotonic()
            result = run.deploy_all(load_project(root), changed_since="HEAD~1", workers=2)
            times.setdefault(f"--changed-since ({changed} of {args.functions} changed), --workers 2", []).append(
                time.monotonic() - t)
            t = time.monotonic()
            status.status_all(load_project(root), timedelta(hours=1))
            times.setdefault(f"status --all ({args.functions} functions + metrics)", []).append(time.monotonic() - t)
    finally:
        stack.down(state_dir)
    load = os.getloadavg()[0]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; local stack "
        f"(moto server + distribution registry), tiny base image, one cached pinned dependency; median of "
        f"{args.runs} runs; load average {load:.1f} at the end (other jobs shared the machine).",
        "",
        "| scenario | median s | min s | max s |",
        "|---|---|---|---|",
    ]
    for name, vals in times.items():
        lines.append(f"| {name} | {statistics.median(vals):.2f} | {min(vals):.2f} | {max(vals):.2f} |")
    lines += ["", "Reproduce: `python bench/fleet.py --functions 9 --runs 3 --write`."]
    publish("\n".join(lines), args.write, "fleet", "Fleet: `deploy --all` and `--changed-since`")


if __name__ == "__main__":
    main()
