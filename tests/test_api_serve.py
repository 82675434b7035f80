"""`lambdaship serve` of the chalice-features app answers as API Gateway does (through the
sandboxed engine): the authorizer runs as its own handler, API keys, CORS, binary, 403s."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_serve import Served

APP = Path(__file__).parent / "apps" / "chalice-features"
PNG = bytes.fromhex("89504e470d0a1a0a") + bytes(range(32))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    s = Served(["-C", str(APP), "--no-reload", "--workers", "1"])
    yield s
    assert s.stop() == 0


def test_serve_answers_as_api_gateway(served: Served) -> None:
    c = served.client
    assert c.get("/items/1").json() == {"item_id": "1", "method": "GET", "size": 0}
    assert (c.get("/nope").status_code, c.get("/nope").json()) == (403, {"message": "Missing Authentication Token"})
    assert c.delete("/items/1").status_code == 403
    assert c.options("/no-cors").status_code == 403
    pre = c.options("/cors-custom")
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://example.com"
    assert "access-control-max-age" not in c.options("/cors-default").headers
    assert c.get("/keyed").status_code == 403 and c.get("/keyed").json() == {"message": "Forbidden"}
    assert c.get("/keyed", headers={"x-api-key": "any-key"}).status_code == 200  # serve knows no keys: any is valid
    assert c.get("/private").status_code == 401
    assert c.get("/private", headers={"Authorization": "deny"}).status_code == 403
    ok = c.get("/private", headers={"Authorization": "allow"})
    assert ok.status_code == 200 and ok.json() == {"context": {"team": "blue", "principalId": "user-1"}}
    assert c.get("/binary", headers={"Accept": "image/png"}).content == PNG
    assert base64.b64decode(c.get("/binary", headers={"Accept": "text/plain,image/png"}).content) == PNG
