"""The Runtime API emulator with the real awslambdaric, and `invoke --local`."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path

import pytest

from lambdaship.local.runtime_api import RuntimeAPI
from tests.conftest import EXAMPLES, run_cli

HANDLERS = '''
import os, time
print("init in", os.getpid())

def echo(event, context):
    print("event", event)
    return {"event": event, "request_id": context.aws_request_id, "arn": context.invoked_function_arn,
            "remaining": context.get_remaining_time_in_millis(), "pid": os.getpid(),
            "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"], "greeting": os.environ.get("GREETING")}

def fail(event, context):
    raise ValueError("bad input")

def crash(event, context):
    import signal
    os.kill(os.getpid(), getattr(signal, event["signal"]))

def sleepy(event, context):
    time.sleep(event.get("seconds", 5))
    return {"pid": os.getpid()}
'''


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "fns.py").write_text(HANDLERS)
    return tmp_path


def _api(app_dir: Path, handler: str, **kw) -> RuntimeAPI:
    return RuntimeAPI(handler, cwd=app_dir, pythonpath=[app_dir], function_name="unit-fn", **kw)


def test_invoke_round_trip_with_context_and_environment(app_dir: Path) -> None:
    logs: list[str] = []
    with _api(app_dir, "fns.echo", environment={"GREETING": "hi"}, timeout=7, log_sink=logs.append) as api:
        first = api.invoke({"n": 1})
        second = api.invoke({"n": 2})
    assert first.ok and second.ok
    a, b = first.json(), second.json()
    assert a["event"] == {"n": 1} and b["event"] == {"n": 2}
    assert a["request_id"] == first.request_id != second.request_id
    assert a["arn"].endswith(":function:unit-fn")
    assert 0 < a["remaining"] <= 7000
    assert a["name"] == "unit-fn" and a["greeting"] == "hi"
    assert a["pid"] == b["pid"], "the warm worker is reused"
    assert first.init_duration_ms is not None and second.init_duration_ms is None
    assert any(line.startswith("init in") for line in logs)
    assert any(line.startswith(f"REPORT RequestId: {first.request_id}") for line in logs)


def test_function_error_is_shaped_like_lambda(app_dir: Path) -> None:
    with _api(app_dir, "fns.fail") as api:
        result = api.invoke({})
    assert result.function_error == "Unhandled"
    err = result.error
    assert err["errorType"] == "ValueError" and err["errorMessage"] == "bad input"
    assert any("raise ValueError" in frame for frame in err["stackTrace"])


def test_import_error_is_reported_as_init_error(app_dir: Path) -> None:
    with _api(app_dir, "missing_module.handler") as api:
        result = api.invoke({})
    assert not result.ok
    assert result.error["errorType"] == "Runtime.ImportModuleError"


def test_timeout_kills_the_worker_and_reports_like_lambda(app_dir: Path) -> None:
    logs: list[str] = []
    with _api(app_dir, "fns.sleepy", timeout=1, log_sink=logs.append) as api:
        timed_out = api.invoke({"seconds": 30})
        after = api.invoke({"seconds": 0})
    assert timed_out.timed_out and not timed_out.ok
    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert timed_out.error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert any(line.endswith("Task timed out after 1.00 seconds") for line in logs)
    assert after.ok, "a fresh worker replaces the killed one"


@pytest.mark.parametrize(("sig", "reason"), [("SIGKILL", "signal: killed"), ("SIGSEGV", "signal: segmentation fault")])
def test_a_runtime_that_dies_is_reported_and_logged_like_lambda(app_dir: Path, sig: str, reason: str) -> None:
    logs: list[str] = []
    with _api(app_dir, "fns.crash", log_sink=logs.append) as api:
        result = api.invoke({"signal": sig})
    assert result.error == {"errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: "
                                            f"{reason}", "errorType": "Runtime.ExitError"}
    assert result.logs[-2:] == [result.error["errorMessage"], "Runtime.ExitError"]
    assert f"END RequestId: {result.request_id}" in logs


def test_concurrent_invocations_use_several_workers(app_dir: Path) -> None:
    with _api(app_dir, "fns.sleepy", max_workers=3, timeout=10) as api:
        api.start(warm=3)
        api.wait_ready()
        results = []
        threads = [threading.Thread(target=lambda: results.append(api.invoke({"seconds": 0.5}))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert api.workers == 3
    assert all(r.ok for r in results)
    assert len({r.json()["pid"] for r in results}) == 3


def test_recycle_replaces_workers(app_dir: Path) -> None:
    with _api(app_dir, "fns.echo") as api:
        before = api.invoke({}).json()["pid"]
        api.recycle()
        after = api.invoke({}).json()["pid"]
    assert before != after


# ---- invoke --local ---------------------------------------------------------------------------
def test_invoke_local_handler_app_prints_result_then_logs() -> None:
    proc = run_cli("invoke", "--local", "-C", str(EXAMPLES / "handler-app"), "--event", "-",
                   input='{"bytes": 2048}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"bytes": 2048, "human": "2.0 kB"}
    assert "REPORT RequestId:" in proc.stderr


def test_invoke_local_json_and_function_error(tmp_path: Path) -> None:
    (tmp_path / "lambdaship.toml").write_text('function_name = "broken"\nhandler = "main.handler"\n')
    (tmp_path / "main.py").write_text(textwrap.dedent('''
        def handler(event, context):
            print("about to fail")
            raise KeyError("missing")
    '''))
    proc = run_cli("invoke", "--local", "-C", str(tmp_path), "--json")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    assert data["error"]["errorType"] == "KeyError"
    assert "about to fail" in data["logs"]

    text = run_cli("invoke", "--local", "-C", str(tmp_path))
    assert text.returncode == 1
    assert json.loads(text.stdout)["errorType"] == "KeyError"
    assert "about to fail" in text.stderr


def test_invoke_local_path_sends_a_per_route_api_gateway_event() -> None:
    proc = run_cli("invoke", "--local", "-C", str(EXAMPLES / "chalice-app"), "--path", "/items/demo", "--json")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)["result"]
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["id"] == "demo"
    unknown = run_cli("invoke", "--local", "-C", str(EXAMPLES / "chalice-app"), "--path", "/nope")
    assert unknown.returncode == 2 and "no Chalice route matches /nope" in unknown.stderr


def test_invoke_rejects_an_event_that_is_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "event.json"
    bad.write_text("{not json")
    proc = run_cli("invoke", "--local", "-C", str(EXAMPLES / "handler-app"), "--event", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: the event is not valid JSON")


def test_invoke_remote_calls_the_alias(local_stack, tmp_path: Path) -> None:
    """Without --local the deployed alias is invoked through the Lambda API (moto echoes the event)."""
    import io
    import uuid
    import zipfile

    import boto3

    name = f"invoke-{uuid.uuid4().hex[:8]}"
    iam = boto3.client("iam")
    role = iam.create_role(RoleName=f"r-{name}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("main.py", "def handler(event, context):\n    return event\n")
    lam = boto3.client("lambda")
    lam.create_function(FunctionName=name, Role=role, Runtime="python3.12", Handler="main.handler",
                        Code={"ZipFile": buf.getvalue()})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    (tmp_path / "lambdaship.toml").write_text(f'function_name = "{name}"\nhandler = "main.handler"\n')
    (tmp_path / "main.py").write_text("def handler(event, context):\n    return event\n")

    proc = run_cli("invoke", "-C", str(tmp_path), "--event", "-", "--json", input='{"ping": 1}')
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["qualifier"] == "live" and data["function"] == name
    assert data["result"] == {"ping": 1}
