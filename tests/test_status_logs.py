"""``lambdaship status`` and ``lambdaship logs`` on the local stack."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time

from lambdaship.commands.logs import parse_since
from tests.conftest import run_cli
from tests.test_deploy import aws, deploy, image_uri, make_project, make_role, push_image, uid


def test_status_reports_alias_versions_digests_and_images(local_stack, tmp_path):
    name = uid()
    d1, d2 = push_image(local_stack.registry.url, name, "s1"), push_image(local_stack.registry.url, name, "s2")
    proj = make_project(tmp_path, name, role=make_role())
    r = run_cli("status", "-C", str(proj), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["exists"] is False
    assert deploy(proj, "--image", image_uri(name, d1)).returncode == 0
    assert deploy(proj, "--image", image_uri(name, d2)).returncode == 0
    r = run_cli("status", "-C", str(proj), "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["state"] == "Active" and st["last_update_status"] == "Successful"
    assert st["alias_target"]["version"] == "2" and st["deployed_digest"] == d2
    assert st["deployed_image"] == image_uri(name, d2)
    assert st["alias_target"]["previous"] == ["1"]
    assert [(v["version"], v["digest"], v["live"]) for v in st["versions"]] == [("2", d2, True), ("1", d1, False)]
    images = {i["digest"]: i for i in st["images"]}
    assert "deployed-1" in images[d1]["tags"] and "deployed-2" in images[d2]["tags"]
    assert "scan_status" in images[d1]
    text = run_cli("status", "-C", str(proj))
    assert text.returncode == 0
    assert f"alias          live → version 2  {d2}" in text.stdout


def _put_logs(name: str, messages: list[str], ts: int | None = None) -> None:
    logs = aws("logs")
    group = f"/aws/lambda/{name}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    stream = f"2026/01/01/[$LATEST]{uid('s')}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = ts or int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)])


def test_logs_since_filter_and_json(local_stack, tmp_path):
    name = uid()
    proj = make_project(tmp_path, name, role=None)
    r = run_cli("logs", "-C", str(proj))
    assert r.returncode == 1 and "does not exist" in r.stderr
    _put_logs(name, ["old event"], ts=int((time.time() - 3 * 3600) * 1000))
    _put_logs(name, ["START RequestId: 1", "ERROR something broke", "END RequestId: 1"])
    r = run_cli("logs", "-C", str(proj))
    assert r.returncode == 0, r.stderr
    assert "ERROR something broke" in r.stdout and "START RequestId: 1" in r.stdout and "old event" not in r.stdout
    r = run_cli("logs", "-C", str(proj), "--since", "1d", "--json")
    assert next(e["message"] for e in json.loads(r.stdout)["events"]) == "old event"
    r = run_cli("logs", "-C", str(proj), "--filter", "ERROR")
    assert r.stdout.strip().endswith("ERROR something broke") and "START" not in r.stdout


def test_logs_follow_prints_new_events(local_stack, tmp_path):
    name = uid()
    proj = make_project(tmp_path, name, role=None)
    _put_logs(name, ["first"])
    proc = subprocess.Popen([sys.executable, "-m", "lambdaship.cli", "logs", "-C", str(proj), "--follow",
                             "--interval", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "first" in proc.stdout.readline()
        _put_logs(name, ["second"])
        assert "second" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_parse_since():
    assert parse_since("10m", now=1000.0) == (1000 - 600) * 1000
    assert parse_since("2h", now=10_000.0) == (10_000 - 7200) * 1000
    assert parse_since("2024-01-01T00:00:00") == 1704067200000
    try:
        parse_since("yesterday")
    except Exception as exc:
        assert "not a duration" in str(exc)
    else:
        raise AssertionError("bad --since must be rejected")
