"""``lambdaship status --all``: one table for the fleet, with CloudWatch metrics the test put there."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.test_fleet import _aws, make_project, make_role, unique_names, write


def put_metrics(name: str, now: datetime, data: list[tuple[str, float, str, timedelta]]) -> None:
    dims = [{"Name": "FunctionName", "Value": name}]
    _aws("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": metric, "Dimensions": dims, "Value": value, "Unit": unit, "Timestamp": now - ago}
        for metric, value, unit, ago in data
    ])


@pytest.fixture(scope="module")
def fleet(local_stack, base_image_ref: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """a and b deployed, c not (its handler module is missing); metrics for a and b."""
    names = unique_names("fleetstat")
    root = make_project(tmp_path_factory.mktemp("status") / "repo", names=names, base_image=base_image_ref,
                        role=make_role(), layout="root")
    text = (root / "lambdaship.toml").read_text()
    write(root, "lambdaship.toml", text.replace('"services.c.app.handler"', '"services.c.missing.handler"'))
    proc = run_cli("deploy", "--all", "--json", cwd=root, timeout=600)
    deployed = {f["key"]: f for f in json.loads(proc.stdout)["functions"]}
    assert proc.returncode == 1 and [deployed[k]["status"] for k in "abc"] == ["deployed", "deployed", "failed"]
    now = datetime.now(UTC)
    m = timedelta(minutes=1)
    put_metrics(names["a"], now, [
        ("Invocations", 5, "Count", 10 * m), ("Invocations", 7, "Count", 3 * m),
        ("Errors", 2, "Count", 3 * m), ("Throttles", 1, "Count", 4 * m),
        ("Duration", 100, "Milliseconds", 10 * m), ("Duration", 200, "Milliseconds", 5 * m),
        ("Duration", 300, "Milliseconds", 3 * m),
        ("ConcurrentExecutions", 3, "Count", 10 * m), ("ConcurrentExecutions", 4, "Count", 3 * m),
    ])
    put_metrics(names["b"], now, [
        ("Invocations", 1, "Count", 120 * m),  # outside the default one-hour window
        ("Invocations", 2, "Count", 5 * m), ("Duration", 40, "Milliseconds", 5 * m),
    ])
    return {"root": root, "names": names, "deployed": deployed}


def status_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = run_cli("status", "--all", "--json", *args, cwd=root)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.slow
def test_status_all_reports_state_alias_digest_and_metrics(fleet: dict[str, Any]) -> None:
    code, data = status_json(fleet["root"])
    assert code == 0
    by = {f["key"]: f for f in data["functions"]}
    assert list(by) == ["a", "b", "c"]
    for k in "ab":
        assert by[k]["state"] == "Active" and by[k]["last_update_status"] == "Successful"
        assert by[k]["alias"] == "live" and by[k]["alias_version"] == "1"
        assert by[k]["digest"] == fleet["deployed"][k]["digest"]
        assert by[k]["last_modified"]
    a, b, c = by["a"]["metrics"], by["b"]["metrics"], by["c"]["metrics"]
    assert (a["invocations"], a["errors"], a["throttles"]) == (12, 2, 1)
    assert (a["duration_avg_ms"], a["duration_max_ms"], a["concurrent_executions_max"]) == (200, 300, 4)
    assert (b["invocations"], b["errors"], b["throttles"], b["duration_max_ms"]) == (2, 0, 0, 40)
    # moto computes no percentiles: the keys are there, without a value (AWS fills them)
    assert "duration_p50_ms" in a and "duration_p99_ms" in a
    assert by["c"]["exists"] is False and by["c"]["state"] == "not deployed"
    assert (c["invocations"], c["concurrent_executions_max"]) == (0, None)
    assert data["window"]["seconds"] == 3600


@pytest.mark.slow
def test_status_all_since_widens_the_window(fleet: dict[str, Any]) -> None:
    _, data = status_json(fleet["root"], "--since", "3h")
    by = {f["key"]: f for f in data["functions"]}
    assert by["b"]["metrics"]["invocations"] == 3
    assert data["window"]["seconds"] == 3 * 3600


@pytest.mark.slow
def test_status_all_table(fleet: dict[str, Any]) -> None:
    proc = run_cli("status", "--all", cwd=fleet["root"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header[:3] == ["function", "state", "update"] and "invocations" in header and "p99" in header
    names = fleet["names"]
    row_a = next(line for line in lines if line.startswith(names["a"]))
    assert "Active" in row_a and "live → 1" in row_a and fleet["deployed"]["a"]["digest"][:19] in row_a
    assert row_a.split()[-6:] == ["12", "2", "1", "-", "-", "4"]  # p50/p99: moto has none
    row_c = next(line for line in lines if line.startswith(names["c"]))
    assert "not deployed" in row_c


def test_status_all_usage_errors(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    proc = run_cli("status", "--all", "--since", "yesterday", cwd=root)
    assert proc.returncode == 2 and "--since" in proc.stderr
    proc = run_cli("status", "--all", "--function", "a", cwd=root)
    assert proc.returncode == 2 and "--function" in proc.stderr
    proc = run_cli("status", "--since", "1h", cwd=root)
    assert proc.returncode == 2 and proc.stderr.startswith("error: status: --since needs --all")
