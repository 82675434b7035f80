"""HTTP ↔ API Gateway event translation (pure parts) and Chalice route discovery."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from lambdaship.apigateway.events import build_event_v1, build_event_v2
from lambdaship.apigateway.responses import response_from_result
from lambdaship.apigateway.routes import Route, chalice_routes, match_route
from lambdaship.local.gateway import Gateway
from lambdaship.local.invocation import InvokeResult
from tests.conftest import EXAMPLES


def test_chalice_routes_are_read_statically_from_the_app() -> None:
    routes = chalice_routes(EXAMPLES / "chalice-app")
    assert routes is not None
    by_path = {r.path: r.methods for r in routes}
    assert by_path["/items"] == ("POST",)
    assert by_path["/items/{item_id}"] == ("GET",)
    assert "/health" in by_path and "/boom" in by_path
    route, params = match_route(routes, "/items/abc%20d")
    assert route.path == "/items/{item_id}" and params == {"item_id": "abc d"}
    assert match_route(routes, "/items")[0].path == "/items"
    assert match_route(routes, "/nothing/here") is None


def _app_routes(app_dir: Path, views: str) -> list[Route] | None:
    """The routes of a Chalice app.py with ``views`` (decorated functions) under ``app = Chalice(...)``."""
    (app_dir / "app.py").write_text("from chalice import Chalice\napp = Chalice(app_name='x')\n" + views)
    return chalice_routes(app_dir)


def test_literal_routes_win_over_parameters(tmp_path: Path) -> None:
    routes = _app_routes(tmp_path, "@app.route('/u/{name}')\ndef a(name): pass\n"
                                   "@app.route('/u/me', methods=['GET', 'PUT'])\ndef b(): pass\n")
    assert match_route(routes, "/u/me")[0].path == "/u/me"
    assert match_route(routes, "/u/bob")[1] == {"name": "bob"}
    (tmp_path / "app.py").write_text("def handler(event, context): pass\n")
    assert chalice_routes(tmp_path) is None


def test_v1_event_has_the_per_route_shape_and_multi_values() -> None:
    headers = [("Host", "localhost:9000"), ("X-Multi", "a"), ("X-Multi", "b"), ("Content-Type", "application/json")]
    ev = build_event_v1("POST", "/items/7?tag=a&tag=b&q=", headers, b'{"x": 1}',
                        resource="/items/{item_id}", path_params={"item_id": "7"})
    assert ev["resource"] == ev["requestContext"]["resourcePath"] == "/items/{item_id}"
    assert ev["path"] == "/items/7" and ev["httpMethod"] == "POST"
    assert ev["pathParameters"] == {"item_id": "7"}
    assert ev["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "q": [""]}
    assert ev["queryStringParameters"] == {"tag": "b", "q": ""}
    assert ev["multiValueHeaders"]["X-Multi"] == ["a", "b"] and ev["headers"]["X-Multi"] == "b"
    assert ev["body"] == '{"x": 1}' and ev["isBase64Encoded"] is False


def test_binary_bodies_are_base64_encoded() -> None:
    raw = bytes(range(256))
    ev = build_event_v1("PUT", "/f", [("Content-Type", "application/octet-stream")], raw,
                        resource="/{proxy+}", path_params={"proxy": "f"})
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == raw


def test_v2_event_shape() -> None:
    ev = build_event_v2("GET", "/a/b?x=1&x=2", [("Cookie", "c1=1; c2=2"), ("User-Agent", "t")], b"",
                        route_key="$default", path_params={"proxy": "a/b"})
    assert ev["version"] == "2.0" and ev["rawPath"] == "/a/b" and ev["rawQueryString"] == "x=1&x=2"
    assert ev["queryStringParameters"] == {"x": "1,2"}
    assert ev["cookies"] == ["c1=1", "c2=2"]
    assert ev["requestContext"]["http"]["method"] == "GET"
    assert "body" not in ev


def _result(payload: object, **kw) -> InvokeResult:
    return InvokeResult("rid", json.dumps(payload).encode(), **kw)


def test_response_headers_multi_value_and_base64() -> None:
    resp = response_from_result(_result({
        "statusCode": 201,
        "headers": {"X-One": "1", "Set-Cookie": "ignored"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": base64.b64encode(b"\x00\xff").decode(),
        "isBase64Encoded": True,
    }))
    assert resp.status == 201 and resp.body == b"\x00\xff"
    assert ("X-One", "1") in resp.headers
    assert [v for k, v in resp.headers if k == "Set-Cookie"] == ["a=1", "b=2"]


def test_errors_map_to_api_gateway_statuses() -> None:
    assert response_from_result(_result({"errorMessage": "x"}, function_error="Unhandled")).status == 502
    timed_out = _result({"errorMessage": "t"}, function_error="Unhandled", timed_out=True)
    assert response_from_result(timed_out).status == 504
    assert response_from_result(_result({"no": "statusCode"})).status == 502
    v2 = response_from_result(_result({"plain": "value"}), v2=True)
    assert v2.status == 200 and json.loads(v2.body) == {"plain": "value"}


def test_rie_endpoint_passes_the_raw_event() -> None:
    seen: list[bytes] = []

    def invoke(payload: bytes) -> InvokeResult:
        seen.append(payload)
        return InvokeResult("rid", b'{"ok": true}')

    gw = Gateway(invoke, routes=[])
    resp = gw.handle("POST", "/2015-03-31/functions/function/invocations", [], b'{"raw": 1}')
    assert resp.status == 200 and resp.body == b'{"ok": true}' and seen == [b'{"raw": 1}']
    unknown = gw.handle("GET", "/anything", [], b"")  # Chalice app without that route: API Gateway's 403
    assert unknown.status == 403 and json.loads(unknown.body) == {"message": "Missing Authentication Token"}


def test_blueprint_routes_with_url_prefix(tmp_path: Path) -> None:
    (tmp_path / "chalicelib").mkdir()
    (tmp_path / "chalicelib" / "__init__.py").write_text("")
    (tmp_path / "chalicelib" / "users.py").write_text(
        "from chalice import Blueprint\nbp = Blueprint(__name__)\n"
        "@bp.route('/{uid}', methods=['GET', 'DELETE'])\ndef one(uid): pass\n"
        "@bp.route('/')\ndef all(): pass\n"
    )
    (tmp_path / "app.py").write_text(
        "from chalice import Chalice\nfrom chalicelib.users import bp as users\n"
        "app = Chalice(app_name='x')\napp.register_blueprint(users, url_prefix='/users')\n"
        "@app.route('/')\ndef index(): pass\n"
    )
    routes = {r.path: r.methods for r in chalice_routes(tmp_path)}
    assert routes == {"/": ("GET",), "/users": ("GET",), "/users/{uid}": ("DELETE", "GET")}
    assert match_route(chalice_routes(tmp_path), "/users/42")[1] == {"uid": "42"}


def test_cors_preflight_for_cors_routes(tmp_path: Path) -> None:
    routes = _app_routes(tmp_path, "@app.route('/open', methods=['PUT'], cors=True)\ndef a(): pass\n"
                                   "@app.route('/closed')\ndef b(): pass\n")
    calls: list[bytes] = []

    def invoke(payload: bytes) -> InvokeResult:
        calls.append(payload)
        return InvokeResult("rid", b'{"statusCode": 405, "body": ""}')

    gw = Gateway(invoke, routes=routes)
    pre = gw.handle("OPTIONS", "/open", [], b"")
    assert pre.status == 200 and calls == []
    assert dict(pre.headers)["Access-Control-Allow-Methods"] == "PUT,OPTIONS"
    assert dict(pre.headers)["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Max-Age" not in dict(pre.headers)  # CORSConfig() sets no max age
    closed = gw.handle("OPTIONS", "/closed", [], b"")  # no CORS: no OPTIONS method on the resource
    assert closed.status == 403 and calls == []
