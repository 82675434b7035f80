"""The local gateway answers as API Gateway does, driven by the app's model (issue 18's seven
differences), with the chalice-features app running in real runtimes (awslambdaric)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdaship.api.local import gateway_for
from lambdaship.api.model import extract
from lambdaship.apigateway.model import AppModel
from lambdaship.config import load_project
from lambdaship.local.gateway import Gateway
from lambdaship.local.runtime_api import RuntimeAPI

APP = Path(__file__).parent / "apps" / "chalice-features"
PNG = bytes.fromhex("89504e470d0a1a0a") + bytes(range(32))


@pytest.fixture(scope="module")
def model() -> AppModel:
    fn = load_project(APP).function()
    return extract(fn)


class Counting:
    def __init__(self, api: RuntimeAPI) -> None:
        self.api, self.calls = api, 0

    def invoke(self, payload: bytes):
        self.calls += 1
        return self.api.invoke(payload)

    def close(self) -> None:
        self.api.close()


def _runtime(handler: str) -> RuntimeAPI:
    return RuntimeAPI(handler, cwd=APP, pythonpath=[APP], function_name=f"features-{handler}", max_workers=1)


@pytest.fixture(scope="module")
def served(model: AppModel) -> Iterator[tuple[Gateway, Counting, Counting]]:
    main = Counting(_runtime("app.app"))
    made: dict[str, Counting] = {}

    def make(handler: str) -> Counting:
        made[handler] = Counting(_runtime(handler))
        return made[handler]

    gw, pool = gateway_for(main.invoke, model, make_runtime=make, api_keys=lambda: {"good-key"})
    assert pool is not None
    pool.invoke("app.token_auth", b'{"type": "TOKEN", "authorizationToken": "x", "methodArn": "a:b:c:d:e:f/g"}')
    auth = made["app.token_auth"]
    try:
        yield gw, main, auth
    finally:
        main.close()
        pool.close()


def _json(resp) -> object:
    return json.loads(resp.body)


def _assert_missing_token(served, method: str, path: str, headers: list[tuple[str, str]] | None = None) -> None:
    """API Gateway's 403 ``Missing Authentication Token``, and the function is not called."""
    gw, main, _ = served
    before = main.calls
    resp = gw.handle(method, path, headers or [], b"")
    assert resp.status == 403 and _json(resp) == {"message": "Missing Authentication Token"}
    assert main.calls == before


def test_unknown_path_is_403_missing_authentication_token_without_calling(served) -> None:
    _assert_missing_token(served, "GET", "/nothing/here")


def test_method_the_resource_lacks_is_403_not_405(served) -> None:
    _assert_missing_token(served, "DELETE", "/items/7")
    gw, _, _ = served
    ok = gw.handle("PUT", "/items/7", [], b"")
    assert ok.status == 200 and _json(ok) == {"item_id": "7", "method": "PUT", "size": 0}


def test_options_on_a_route_without_cors_is_403(served) -> None:
    _assert_missing_token(served, "OPTIONS", "/no-cors", [("Origin", "https://a.example")])


def test_cors_preflight_uses_the_routes_own_config(served) -> None:
    gw, main, _ = served
    before = main.calls
    custom = dict(gw.handle("OPTIONS", "/cors-custom", [], b"").headers)
    assert custom["Access-Control-Allow-Origin"] == "https://example.com"
    assert "X-Special-Header" in custom["Access-Control-Allow-Headers"].split(",")
    assert custom["Access-Control-Expose-Headers"] == "X-Special-Header"
    assert custom["Access-Control-Max-Age"] == "600" and custom["Access-Control-Allow-Credentials"] == "true"
    assert custom["Access-Control-Allow-Methods"] == "GET,POST,OPTIONS"
    default = dict(gw.handle("OPTIONS", "/cors-default", [], b"").headers)
    assert default["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Max-Age" not in default and "Access-Control-Allow-Credentials" not in default
    assert default["Access-Control-Allow-Methods"] == "GET,OPTIONS"
    assert main.calls == before  # a mock integration: the function is not called


def test_api_key_required_route_needs_a_valid_key(served) -> None:
    gw, main, _ = served
    before = main.calls
    for headers in ([], [("x-api-key", "wrong")]):
        resp = gw.handle("GET", "/keyed", headers, b"")
        assert resp.status == 403 and _json(resp) == {"message": "Forbidden"}
    assert main.calls == before
    ok = gw.handle("GET", "/keyed", [("X-Api-Key", "good-key")], b"")
    assert ok.status == 200 and _json(ok) == {"keyed": True}


def test_builtin_authorizer_runs_before_the_integration(served) -> None:
    gw, main, auth = served
    before, auth_before = main.calls, auth.calls
    missing = gw.handle("GET", "/private", [], b"")
    assert missing.status == 401 and _json(missing) == {"message": "Unauthorized"}
    assert auth.calls == auth_before and main.calls == before  # no identity: the authorizer is not called
    denied = gw.handle("GET", "/private", [("Authorization", "deny")], b"")
    assert denied.status == 403 and auth.calls == auth_before + 1 and main.calls == before
    allowed = gw.handle("GET", "/private", [("Authorization", "allow")], b"")
    assert allowed.status == 200
    assert _json(allowed) == {"context": {"team": "blue", "principalId": "user-1"}}


def test_binary_body_decoded_only_when_first_accept_is_a_binary_type(served) -> None:
    gw, _, _ = served
    raw = gw.handle("GET", "/binary", [("Accept", "image/png")], b"")
    assert raw.status == 200 and raw.body == PNG
    text = gw.handle("GET", "/binary", [("Accept", "text/html,image/png")], b"")
    # Chalice base64-encodes (an Accept entry matches); API Gateway passes the text through.
    assert text.status == 200 and base64.b64decode(text.body) == PNG


def test_request_bodies_are_base64_only_for_binary_content_types(model: AppModel) -> None:
    from lambdaship.apigateway.access import ApiSettings
    from lambdaship.apigateway.events import build_event_v1

    types = ApiSettings.from_model(model).binary_types
    raw = bytes(range(256))
    png = build_event_v1("PUT", "/items/1", [("Content-Type", "image/png")], raw, resource="/items/{item_id}",
                         path_params={"item_id": "1"}, binary_types=types)
    assert png["isBase64Encoded"] is True and base64.b64decode(png["body"]) == raw
    other = build_event_v1("PUT", "/items/1", [("Content-Type", "application/x-not-binary")], b"plain",
                           resource="/items/{item_id}", path_params={"item_id": "1"}, binary_types=types)
    assert other["isBase64Encoded"] is False and other["body"] == "plain"
