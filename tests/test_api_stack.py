"""End to end on the local stack: `lambdaship deploy` of the chalice-features app creates its
REST API, functions and triggers; the same HTTP requests get the same answers through the
deployed API (the stack's REST URL, run by the data plane), through `lambdaship serve` (the
source) and through `lambdaship run` of the deployed image."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli
from tests.test_deploy import aws, uid
from tests.test_serve import Served

APP = Path(__file__).parent / "apps" / "chalice-features"

REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/items/1", {}), ("PUT", "/items/2", {}), ("DELETE", "/items/1", {}), ("GET", "/nope", {}),
    ("OPTIONS", "/no-cors", {}), ("OPTIONS", "/cors-custom", {}), ("OPTIONS", "/cors-default", {}),
    ("GET", "/cors-custom", {}), ("GET", "/keyed", {}), ("GET", "/keyed", {"x-api-key": "wrong"}),
    ("GET", "/keyed", {"x-api-key": "$KEY"}), ("GET", "/private", {}),
    ("GET", "/private", {"Authorization": "allow"}), ("GET", "/private", {"Authorization": "deny"}),
    ("GET", "/binary", {"Accept": "image/png"}), ("GET", "/binary", {"Accept": "text/plain,image/png"}),
    ("PUT", "/items/3", {"Content-Type": "image/png"}), ("PUT", "/items/4", {"Content-Type": "application/x-other"}),
]
HEADERS = ("content-type", "access-control-allow-origin", "access-control-allow-methods",
           "access-control-allow-headers", "access-control-max-age", "access-control-allow-credentials",
           "access-control-expose-headers")


def _answer(r: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    return r.status_code, r.content, {h: r.headers[h] for h in HEADERS if h in r.headers}


@pytest.mark.slow
def test_deployed_api_and_serve_answer_the_same(local_stack, tmp_path) -> None:
    from lambdaship.local.base import ensure_base

    base = ensure_base(local_stack.registry.url)
    proj = tmp_path / "app"
    shutil.copytree(APP, proj)
    name = uid("features")
    aws("sqs").create_queue(QueueName="chalice-features-jobs")
    (proj / "lambdaship.toml").write_text(f'function_name = "{name}"\nrequirements = "requirements.txt"\n'
                                          f'base_image = "{base}"\n')
    dry = run_cli("deploy", "-C", str(proj), "--create-role", "--dry-run", timeout=900)
    assert dry.returncode == 0, dry.stderr
    for call in ("api:apigateway:CreateRestApi", "api:apigateway:PutIntegration", "api:apigateway:CreateDeployment",
                 "api:events:PutRule", "api:events:PutTargets", "api:lambda:CreateEventSourceMapping",
                 "api:lambda:AddPermission", "api:lambda:CreateFunction"):
        assert call in dry.stdout, call  # one plan: every API Gateway / EventBridge / SQS / permission call
    r = run_cli("deploy", "-C", str(proj), "--create-role", "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    deployed = json.loads(r.stdout)
    done = deployed["steps"]  # run by the one executor: the app's calls before the alias, those on it after
    published, alias = done.index("lambda:PublishVersion"), done.index("lambda:CreateAlias")
    assert published < done.index("api:apigateway:CreateDeployment") < alias
    assert alias < len(done) - 1 and done[-1] == "api:lambda:AddPermission"
    app = deployed["app"]
    api_id = app["api_id"]
    assert api_id and app["url"].startswith(f"https://{api_id}.execute-api.")
    assert {f"{name}-token_auth", f"{name}-every_five", f"{name}-on_job", f"{name}-plain"} == set(app["functions"])
    key_id = next(k["id"] for k in aws("apigateway").get_api_keys()["items"] if k["name"] == f"{name}-api")
    key = aws("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"]

    status = run_cli("status", "-C", str(proj))
    assert status.returncode == 0, status.stderr
    assert app["url"] in status.stdout and "GET /private" in status.stdout and f"{name}-on_job" in status.stdout

    again = run_cli("deploy", "-C", str(proj), "--json", timeout=900)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["app"]["steps"] == []  # nothing changed: nothing to do

    # an API-only change (the function is up to date) is planned and run: the API's lost permission comes back
    policy = json.loads(aws("lambda").get_policy(FunctionName=name, Qualifier="live")["Policy"])
    sid = next(st["Sid"] for st in policy["Statement"] if "apigateway" in json.dumps(st["Principal"]))
    aws("lambda").remove_permission(FunctionName=name, Qualifier="live", StatementId=sid)
    fixed = run_cli("deploy", "-C", str(proj), "--json", timeout=900)
    assert fixed.returncode == 0, fixed.stderr
    out = json.loads(fixed.stdout)
    calls = [a for a in out["steps"] if not a.startswith("package:")]  # package:Choose calls nothing
    assert calls == ["api:lambda:AddPermission"] and out["version"] == deployed["version"]
    policy = json.loads(aws("lambda").get_policy(FunctionName=name, Qualifier="live")["Policy"])
    assert any("apigateway" in json.dumps(st["Principal"]) for st in policy["Statement"])

    stack = httpx.Client(base_url=f"{os.environ['AWS_ENDPOINT_URL']}/restapis/{api_id}/api/_user_request_",
                         timeout=120)
    os.environ["LAMBDASHIP_API_KEYS"] = key  # serve accepts the deployed usage plan's key only
    image = f"{local_stack.registry.url.removeprefix('http://')}/{name}@{deployed['digest']}"
    try:
        served = Served(["-C", str(proj), "--no-reload", "--workers", "1"])
        ran = Served(["run", image, "--port", "0", "--workers", "1"], command=None)  # the deployed image
    finally:
        del os.environ["LAMBDASHIP_API_KEYS"]
    try:
        differ = []
        for method, path, headers in REQUESTS:
            h = {k: (key if v == "$KEY" else v) for k, v in headers.items()}
            body = bytes(range(256)) if method == "PUT" else None  # not UTF-8: text vs binary shows in "size"
            a = _answer(stack.request(method, path, headers=h, content=body))
            b = _answer(served.client.request(method, path, headers=h, content=body))
            c = _answer(ran.client.request(method, path, headers=h, content=body))
            if not a == b == c:
                differ.append((method, path, headers, a, b, c))
        assert differ == [], "\n".join(map(repr, differ))
    finally:
        served.stop()
        ran.stop()
        stack.close()


@pytest.mark.slow
def test_a_zip_deploy_of_the_app_gets_its_api_and_zip_functions(local_stack, tmp_path) -> None:
    proj = tmp_path / "app"
    shutil.copytree(APP, proj)
    name = uid("featzip")
    aws("sqs").create_queue(QueueName="chalice-features-jobs")
    (proj / "lambdaship.toml").write_text(f'function_name = "{name}"\nrequirements = "requirements.txt"\n'
                                          'package_type = "zip"\n')
    r = run_cli("deploy", "-C", str(proj), "--create-role", "--skip-smoke", "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    app = json.loads(r.stdout)["app"]
    assert app["api_id"] and f"{name}-token_auth" in app["functions"]
    cfg = aws("lambda").get_function(FunctionName=f"{name}-token_auth")["Configuration"]
    main = aws("lambda").get_function(FunctionName=name)["Configuration"]
    assert cfg["PackageType"] == "Zip" and cfg["Handler"] == "app.token_auth"
    assert cfg["CodeSha256"] == main["CodeSha256"]  # the same archive as the function
    # deploy's text summary names the local URL of the REST API stage it created (the local stack)
    again = run_cli("deploy", "-C", str(proj), "--create-role", "--skip-smoke", timeout=900)
    assert again.returncode == 0, again.stderr
    url = f"{local_stack.endpoint}/restapis/{app['api_id']}/api/_user_request_/"
    assert f"local REST API stage api: {url}" in again.stdout.splitlines(), again.stdout
    # a code change publishes new versions of the main and the extra functions; rollback moves both back
    auth, lam = f"{name}-token_auth", aws("lambda")
    first = lam.get_alias(FunctionName=auth, Name="live")["FunctionVersion"]
    (proj / "app.py").write_text((proj / "app.py").read_text() + "\n# a code change\n")
    assert run_cli("deploy", "-C", str(proj), "--skip-smoke", timeout=900).returncode == 0
    assert lam.get_alias(FunctionName=auth, Name="live")["FunctionVersion"] != first
    back = run_cli("rollback", "-C", str(proj), "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["extra_functions"][auth] == first
    assert lam.get_alias(FunctionName=auth, Name="live")["FunctionVersion"] == first


@pytest.mark.slow
def test_deploy_all_gives_each_chalice_app_its_api(local_stack, tmp_path) -> None:
    """``deploy --all`` deploys a Chalice function's REST API as ``deploy -f`` does (the same hook)."""
    from tests.conftest import EXAMPLES

    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLES / "chalice-app", root / "services" / "web")
    name = uid("fleetapi")
    (root / "lambdaship.toml").write_text(
        f'[functions.web]\nfunction_name = "{name}"\nsource = "services/web"\nhandler = "app.app"\n'
        'package_type = "zip"\nrequirements = "requirements.txt"\n')
    r = run_cli("deploy", "-C", str(root), "--all", "--create-role", "--skip-smoke", "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    entry = json.loads(r.stdout)["functions"][0]
    assert entry["status"] == "deployed" and entry["app"]["api_id"], entry
    resources = aws("apigateway").get_resources(restApiId=entry["app"]["api_id"])["items"]
    assert {"/health", "/items", "/items/{item_id}"} <= {x["path"] for x in resources}
    url = f"{local_stack.endpoint}/restapis/{entry['app']['api_id']}/api/_user_request_/health"
    assert httpx.get(url, timeout=60).json() == {"status": "ok"}  # the deployed code answers
