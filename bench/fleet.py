"""Fleet deploys: `deploy --all` of N functions with 1, 2 and 4 workers, and `--changed-since`;
with ``--sharing N`` the sharing scenario of issue 21 instead.

    python bench/fleet.py [--functions 9] [--runs 3] [--write]
    python bench/fleet.py --sharing 20 [--runs 3] [--write]

Workload: a git repository with N functions (the three-function project of tests/test_fleet.py,
``layout="root"``, repeated), one tiny pinned dependency (six, cached after the first run), the
tiny base image of the tests, all on a fresh local stack (moto server + distribution registry).
Each run deploys a fresh set of function names (new functions: CreateFunction, publish, alias).
Then one shared module changes and ``--changed-since HEAD~1`` deploys the functions that include
it; ``status --all`` reads the fleet. Times are in-process wall clock (no interpreter start-up),
median of --runs.

--write puts the table into docs/benchmarks.md (Fleet section).

``--sharing N`` (issue 21, "Fleet sharing"): N functions with one dependency set (requests and its
four dependencies, pinned) and one shared package, the tests' tiny base image on a second registry
(public ECR's part: every function's repository needs its blobs). Each run: a fresh project, names
and cache (cold), ``deploy --all``; then a change to the shared package and ``deploy --all
--changed-since HEAD~1`` (all N redeploy) with the default workers, 2, 4 and 8; then a change to one
function's own code, deployed alone twice: by ``deploy --all --changed-since`` (the same path)
and by ``deploy -f`` (the reference is the faster of the two). Last, the shared change and the
one-function change once more inside the bench's process (``deploy_all``, warm clients): the
fleet's own throughput without the CLI's start-up, each against the other. Every deploy is the
real CLI in its own process (what a user waits for); the counts come from its ``--json``.
--write puts the table into docs/benchmarks.md (section "Fleet sharing").
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

from _common import parser, publish

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
    args = parser(functions=9, runs=3, sharing=0).parse_args()
    if args.sharing:
        sharing(args.sharing, args.runs, args.write)
        return
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


# -- issue 21: a fleet sharing one dependency set -------------------------------------------------
REQUIREMENTS = "requests==2.34.2\n"


def share_project(tf, base: str, role: str, n: int) -> tuple[Path, list[str]]:  # type: ignore[no-untyped-def]
    """A git repository of ``n`` functions f00… (layout "root": each ships the shared package
    ``common``), one requirements text for all."""
    tag = uuid.uuid4().hex[:8]
    keys = [f"f{i:02d}" for i in range(n)]
    root = Path(tempfile.mkdtemp(prefix="bench-share-")) / "repo"
    root.mkdir(parents=True)
    for args in (("init", "-q", "-b", "main"), ("config", "user.email", "b@example.com"), ("config", "user.name", "b")):
        tf.git(root, *args)
    tf.write(root, "lambdaship.toml", tf.config_text({k: f"share-{k}-{tag}" for k in keys}, base_image=base,
                                                     role=role, layout="root"))
    tf.write(root, ".gitignore", "__pycache__/\n*.pyc\n")
    for k in keys:
        tf.write(root, f"services/{k}/app.py", tf.APP_A.replace("'a'", repr(k)))
        tf.write(root, f"services/{k}/requirements.txt", REQUIREMENTS)
    for rel, text in (("common/__init__.py", ""), ("common/util.py", tf.UTIL), ("common/fmt.py", tf.FMT)):
        tf.write(root, rel, text)
    tf.commit(root, "initial")
    return root, keys


def cli_deploy(root: Path, home: Path, *args: str) -> tuple[float, dict]:
    """One ``lambdaship deploy … --json`` in its own process: (wall seconds, its JSON)."""
    import json
    import subprocess

    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lambdaship.cli", "deploy", *args, "--json"], cwd=root,
                          env={**os.environ, "LAMBDASHIP_HOME": str(home)}, capture_output=True, text=True,
                          timeout=1800)
    took = time.monotonic() - t
    if proc.returncode != 0:
        raise SystemExit(f"deploy {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return took, json.loads(proc.stdout)


def fleet_figures(took: float, data: dict) -> dict[str, float]:
    """Wall time, installs, layers written and base/deps blobs sent of one ``deploy --all --json``."""
    sets, sent = data["deps_sets"], data["transfer"]
    assert data["counts"]["failed"] == 0, data
    return {"seconds": took, "functions": data["counts"]["deployed"],
            "installs": sum(s["installs"] for s in sets), "layers_written": sum(s["layers_written"] for s in sets),
            "base_sent": sent["base"]["sent"], "base_bytes": sent["base"]["sent_bytes"],
            "base_mounted": sent["base"]["mounted"], "deps_sent": sent["deps"]["sent"],
            "deps_bytes": sent["deps"]["sent_bytes"]}


def touch(tf, root: Path, rel: str) -> None:  # type: ignore[no-untyped-def]
    tf.write(root, rel, (root / rel).read_text() + f"# {uuid.uuid4()}\n")
    tf.commit(root)


def sharing_run(tf, base: str, role: str, n: int, run: int) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    from lambdaship.deploy.fleet.run import DEFAULT_WORKERS

    root, keys = share_project(tf, base, role, n)
    home = Path(tempfile.mkdtemp(prefix="bench-share-home-"))
    out = {f"cold: deploy --all ({n} new functions)": fleet_figures(*cli_deploy(root, home, "--all"))}
    counts = list(dict.fromkeys((DEFAULT_WORKERS, 2, 4, 8)))
    for workers in counts[run % len(counts):] + counts[:run % len(counts)]:  # rotated: no count always first
        touch(tf, root, "common/util.py")
        label = f"shared code changed: deploy --all --changed-since ({n}), --workers {workers}"
        if workers == DEFAULT_WORKERS:
            label += " (default)"
        out[label] = fleet_figures(*cli_deploy(root, home, "--all", "--changed-since", "HEAD~1",
                                               "--workers", str(workers)))
    touch(tf, root, f"services/{keys[0]}/app.py")
    took, data = cli_deploy(root, home, "--all", "--changed-since", "HEAD~1")
    assert data["counts"]["deployed"] == 1, data
    out[f"{ONE}: deploy --all --changed-since (1 of {n})"] = {"seconds": took, "functions": 1}
    touch(tf, root, f"services/{keys[0]}/app.py")
    took, data = cli_deploy(root, home, "--function", keys[0])
    assert data.get("version"), data
    out[f"{ONE}: deploy -f"] = {"seconds": took, "functions": 1}
    out.update(in_process(tf, root, home, keys, n))
    return out


def in_process(tf, root: Path, home: Path, keys: list[str], n: int) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """The same two redeploys in this process (clients, token and imports warm): the fleet's own
    throughput, without the interpreter start-up that every CLI run pays once."""
    from lambdaship.config import load_project
    from lambdaship.deploy.fleet.run import deploy_all

    os.environ["LAMBDASHIP_HOME"] = str(home)
    out = {}
    for label, rel in ((None, f"services/{keys[1]}/app.py"), (f"{INPROC} shared code changed ({n})", "common/util.py"),
                       (f"{INPROC} {ONE} (1 of {n})", f"services/{keys[0]}/app.py")):
        touch(tf, root, rel)
        t = time.monotonic()
        result = deploy_all(load_project(root), changed_since="HEAD~1")
        took = time.monotonic() - t
        if label is not None:  # the first one only warms the process up
            out[label] = fleet_figures(took, result.to_json())
    return out


INPROC = "in-process:"


ONE = "one function's code changed"


def sharing(n: int, runs: int, write: bool) -> None:
    from lambdaship.local import stack

    loadavg_before = Path("/proc/loadavg").read_text().strip()
    os.environ["LAMBDASHIP_HOME"] = tempfile.mkdtemp(prefix="bench-share-setup-")
    state_dir = Path(tempfile.mkdtemp(prefix="bench-share-stack-"))
    state = stack.up(state_dir)
    os.environ.update(state.env())
    upstream, proc = stack.start_registry(Path(tempfile.mkdtemp(prefix="bench-share-upstream-")))
    per_run: list[dict[str, dict[str, float]]] = []
    try:
        from tests import test_fleet as tf
        from tests.images import push_base

        base = push_base(upstream, Path(tempfile.mkdtemp()), repo="upstream/python", tag="3.12")
        role = tf.make_role()
        for i in range(runs):
            per_run.append(sharing_run(tf, base, role, n, i))
            print(f"run {i + 1}: " + ", ".join(f"{k.split(':')[0]} {v['seconds']:.2f}" for k, v in per_run[-1].items()),
              flush=True)
    finally:
        stack.stop_registry(proc)
        stack.down(state_dir)
    loadavg_after = Path("/proc/loadavg").read_text().strip()
    publish(sharing_table(per_run, n, runs, (loadavg_before, loadavg_after)), write, "fleet-sharing",
            "Fleet sharing: one dependency set, a change to shared code")


def sharing_table(per_run: list[dict[str, dict[str, float]]], n: int, runs: int, loadavg: tuple[str, str]) -> str:
    from lambdaship.deploy.fleet.run import DEFAULT_WORKERS

    order = sorted(per_run[0], key=lambda name: (not name.startswith("cold"), name.startswith(INPROC), ONE in name,
                                                 "(default)" not in name, name))
    med = {name: {k: statistics.median(r[name][k] for r in per_run) for k in per_run[0][name]} for name in order}
    single = min(v["seconds"] for name, v in med.items() if name.startswith(ONE))  # the stricter reference
    single_in = next(v["seconds"] for name, v in med.items() if name.startswith(f"{INPROC} {ONE}"))
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; local stack "
        f"(moto server + distribution registry), the tests' tiny base image on a second registry; {n} functions "
        f"with one dependency set ({REQUIREMENTS.strip()} and its dependencies); every deploy is the CLI in its own "
        f"process; median of {runs} runs (min-max of the wall time). `/proc/loadavg` before: {loadavg[0]}; "
        f"after: {loadavg[1]} (other jobs shared the machine). Default workers here: {DEFAULT_WORKERS}.",
        "",
        "| scenario | wall s (min-max) | ratio to one function's redeploy | installs | deps layers written "
        "| base blobs sent (bytes) | base blobs mounted | deps blobs sent (bytes) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, v in med.items():
        walls = [r[name]["seconds"] for r in per_run]
        ref = single_in if name.startswith(INPROC) else single
        cells = [name, f"{v['seconds']:.2f} ({min(walls):.2f}-{max(walls):.2f})", f"{v['seconds'] / ref:.2f}"]
        if "installs" in v and not name.startswith(f"{INPROC} {ONE}"):
            cells += [f"{v['installs']:.0f}", f"{v['layers_written']:.0f}", f"{v['base_sent']:.0f} "
                      f"({v['base_bytes']:.0f})", f"{v['base_mounted']:.0f}", f"{v['deps_sent']:.0f} "
                      f"({v['deps_bytes']:.0f})"]
        else:
            cells += ["", "", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Reproduce: `python bench/fleet.py --sharing {n} --runs {runs} --write`."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
