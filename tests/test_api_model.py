"""The app model comes from Chalice's own definitions, and importing a hostile app cannot
touch the host: it runs in the engine's sandbox (no credentials, host paths read-only/hidden)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from lambdaship.api.model import extract
from lambdaship.config import load_project
from lambdaship.errors import LambdashipError

APP = Path(__file__).parent / "apps" / "chalice-features"


def test_model_has_routes_authorizers_sources_and_the_alias_as_target() -> None:
    fn = load_project(APP).function()
    m = extract(fn, region="eu-west-1", account="210987654321")
    assert m.app_name == "chalice-features" and m.stage == "api"
    by = {(r.path, r.method): r for r in m.routes}
    assert by[("/keyed", "GET")].api_key_required and by[("/private", "GET")].authorizer == "token_auth"
    assert by[("/cors-custom", "POST")].cors["Access-Control-Max-Age"] == "600"
    assert by[("/cors-default", "GET")].cors == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": "Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key"}
    assert "application/x-lambdaship" in m.binary_types
    assert [(a.name, a.kind, a.handler) for a in m.authorizers] == [("token_auth", "builtin", "app.token_auth")]
    kinds = {(s.kind, s.name) for s in m.event_sources}
    assert kinds == {("schedule", "every_five"), ("sqs", "on_job")}
    sched = next(s for s in m.event_sources if s.kind == "schedule")
    assert sched.expression == "rate(5 minutes)" and sched.handler == "app.every_five"
    assert {x.suffix: x.handler for x in m.extra_functions()} == {
        "token_auth": "app.token_auth", "plain": "app.plain", "every_five": "app.every_five", "on_job": "app.on_job"}
    uri = m.swagger["paths"]["/items/{item_id}"]["get"]["x-amazon-apigateway-integration"]["uri"]
    assert uri == ("arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/"
                   "arn:aws:lambda:eu-west-1:210987654321:function:chalice-features:live/invocations")
    sec = m.swagger["securityDefinitions"]["token_auth"]["x-amazon-apigateway-authorizer"]
    assert sec["authorizerUri"].endswith("function:chalice-features-token_auth:live/invocations")
    assert set(m.swagger["paths"]["/cors-custom"]) == {"get", "post", "options"}
    assert "options" not in m.swagger["paths"]["/no-cors"]


def test_a_hostile_app_cannot_touch_the_host_or_see_credentials(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "app"
    shutil.copytree(APP, src)
    marker = tmp_path / "pwned"
    home_file = Path.home() / ".lambdaship-hostile-marker"
    (src / "app.py").write_text(
        "import os, pathlib\n"
        f"for p in ({str(marker)!r}, {str(home_file)!r}):\n"
        "    try:\n        pathlib.Path(p).write_text('x')\n    except OSError:\n        pass\n"
        "from chalice import Chalice\n"
        "app = Chalice(app_name='h-' + os.environ.get('AWS_SECRET_ACCESS_KEY', 'none'))\n"
        "@app.route('/')\ndef index():\n    return {}\n")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret-value")
    m = extract(load_project(src).function())
    assert m.app_name == "h-none"
    assert not marker.exists() and not home_file.exists()


def test_an_app_that_fails_to_import_is_one_error_line(tmp_path: Path) -> None:
    src = tmp_path / "app"
    shutil.copytree(APP, src)
    (src / "app.py").write_text("from chalice import Chalice\nimport does_not_exist\napp = Chalice(app_name='x')\n")
    with pytest.raises(LambdashipError) as err:
        extract(load_project(src).function())
    assert "does_not_exist" in err.value.message and "\n" not in err.value.one_line()


def test_the_model_is_a_frozen_value() -> None:
    m = extract(load_project(APP).function())
    with pytest.raises(ValidationError):
        m.routes = ()  # type: ignore[misc]
    assert json.loads(m.model_dump_json())["app_name"] == "chalice-features"
    assert os.environ.get("AWS_SECRET_ACCESS_KEY") != "host-secret-value"
