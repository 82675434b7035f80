"""The embedded local stack starts real services and stops exactly what it started."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import httpx

from lambdaship.local import stack
from tests.conftest import run_cli


def _alive(pid: int) -> bool:
    return stack._alive(pid)


def test_up_answers_and_down_leaves_nothing(tmp_path):
    state_dir = tmp_path / "st"
    up = run_cli("local", "up", "--state-dir", str(state_dir), "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    moto_pid, reg_pid, dp_pid = info["moto"]["pid"], info["registry"]["pid"], info["dataplane"]["pid"]
    try:
        assert httpx.get(info["registry"]["url"] + "/v2/").status_code == 200
        # moto answers as AWS: a real boto3 client pointed at it by AWS_ENDPOINT_URL.
        env_out = run_cli("local", "env", "--state-dir", str(state_dir))
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in env_out.stdout.splitlines()
        )
        # one AWS endpoint: the data plane in front of moto
        assert exports["AWS_ENDPOINT_URL"] == info["dataplane"]["url"] == info["endpoint"]
        assert exports["LAMBDASHIP_REGISTRY_URL"] == info["registry"]["url"]
        sts = boto3.client(
            "sts", endpoint_url=exports["AWS_ENDPOINT_URL"], region_name=exports["AWS_REGION"],
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        assert sts.get_caller_identity()["Account"] == stack.ACCOUNT_ID
        # image invocation was enabled in moto
        cfg = httpx.get(info["moto"]["url"] + "/moto-api/config").json()
        assert cfg["lambda"]["use_docker"] is False
        st = run_cli("local", "status", "--state-dir", str(state_dir), "--json")
        assert st.returncode == 0 and json.loads(st.stdout)["running"] is True
        # `up` again reuses the running stack rather than starting a second one
        again = json.loads(run_cli("local", "up", "--state-dir", str(state_dir), "--json").stdout)
        assert again["moto"]["pid"] == moto_pid and again["dataplane"]["pid"] == dp_pid
        # a function invoked through the stack leaves warm workers: `down` must stop them too
        workers = _invoke_once(exports, dp_pid)
        assert workers, "the invocation left no worker process to check"
    finally:
        down = run_cli("local", "down", "--state-dir", str(state_dir), "--json")
    assert down.returncode == 0, down.stderr
    assert sorted(json.loads(down.stdout)["stopped"]) == sorted([moto_pid, reg_pid, dp_pid])
    assert not _alive(moto_pid) and not _alive(reg_pid) and not _alive(dp_pid)
    assert [p for p in workers if _alive(p)] == []
    st = run_cli("local", "status", "--state-dir", str(state_dir))
    assert st.returncode == 1 and "not running" in st.stdout


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _invoke_once(exports: dict[str, str], dataplane_pid: int) -> list[int]:
    """Create a zip function through the stack's endpoint, invoke it; the worker PIDs it left."""
    import io
    import zipfile

    kw = {"endpoint_url": exports["AWS_ENDPOINT_URL"], "region_name": exports["AWS_REGION"],
          "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    role = boto3.client("iam", **kw).create_role(RoleName="stack-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return {'ok': True}\n")
    lam = boto3.client("lambda", **kw)
    lam.create_function(FunctionName="stack-test", Runtime="python3.11", Role=role, Handler="app.handler",
                        Code={"ZipFile": buf.getvalue()})
    r = lam.invoke(FunctionName="stack-test", Payload=b"{}")
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r["Payload"].read()
    assert json.loads(r["Payload"].read()) == {"ok": True}
    return _descendants(dataplane_pid)  # the warm worker lives under the data plane


def test_env_without_stack_is_one_line_error(tmp_path):
    r = run_cli("local", "env", "--state-dir", str(tmp_path / "none"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: the local stack is not running; start it with: lambdaship local up"
    ]


def test_missing_registry_binary_is_named(tmp_path):
    env = {"PATH": os.path.dirname(os.__file__) + "/../../bin"}  # python's bin dir only
    r = run_cli("local", "up", "--state-dir", str(tmp_path / "st"), env=env)
    assert r.returncode == 1
    assert "docker-registry" in r.stderr and "apt-get install -y docker-registry" in r.stderr
    assert "Traceback" not in r.stderr
