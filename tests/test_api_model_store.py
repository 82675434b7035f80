"""The app model by fingerprint (issue 21): a deploy stores the extracted model next to the
function's images; a fresh runner whose change cannot alter the app's routes and triggers reads
it back instead of importing the app (no base rootfs, no dependency install); any other change
is extracted again. On the real local stack (moto + distribution registry)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lambdaship.api import modelstore
from lambdaship.api.deploy import deploy_app
from lambdaship.config import load_project
from lambdaship.registries import registry_client
from tests.test_api_deploy import IMAGE, _resources, features_app
from tests.test_deploy import uid

HOST, REPO = modelstore.split_image_uri(IMAGE)


@pytest.fixture
def app(local_stack, tmp_path):
    return features_app(tmp_path, "modelstore")


def fresh_runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    monkeypatch.setenv("LAMBDASHIP_HOME", str(home))
    return home


def stored(fingerprint: str) -> bool:
    return registry_client(HOST).head_manifest(REPO, modelstore.tag(fingerprint)) is not None


def reload(fn):
    return load_project(fn.source, {"function_name": fn.function_name}).function()


def edit(fn, old: str, new: str) -> None:
    p = fn.source / "app.py"
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new))


def test_a_fresh_runner_reads_the_model_a_deploy_stored(app, monkeypatch, tmp_path) -> None:
    import os

    first_home = os.environ["LAMBDASHIP_HOME"]
    first = deploy_app(app, image_uri=IMAGE)
    assert first.model_source in ("sandbox", "cache")
    api_id = first.api.api_id

    # A view's body changes; a fresh runner (empty home) deploys: the model comes from the registry.
    edit(app, 'return {"cors": "default"}', 'return {"cors": "default", "v": 2}')
    home = fresh_runner(monkeypatch, tmp_path, "runner-2")
    again = deploy_app(reload(app), image_uri=IMAGE)
    assert again.model_source == "registry"
    assert not (home / "deps").exists() and not (home / "rootfs").exists()  # nothing installed or unpacked
    assert again.api.api_id == api_id
    assert not [s for s in again.steps if s.action.startswith("apigateway:")]  # the API is unchanged

    # A new route, back on the first runner (its caches hold the base and the dependencies, not
    # this fingerprint's model): extracted again, and the API gets it.
    edit(app, '@app.route("/no-cors")', '@app.route("/brand-new")\ndef brand_new():\n    return {}\n\n\n'
              '@app.route("/no-cors")')
    monkeypatch.setenv("LAMBDASHIP_HOME", str(first_home))
    third = deploy_app(reload(app), image_uri=IMAGE)
    assert third.model_source == "sandbox"
    assert "/brand-new" in _resources(api_id)


def test_a_dry_run_stores_nothing(app, monkeypatch, tmp_path) -> None:
    from lambdaship.api.fingerprint import fingerprint
    from lambdaship.api.model import _extractor

    edit(app, 'return {"cors": None}', 'return {"cors": None, "dry": "' + uid("x") + '"}')
    edit(app, '@app.route("/no-cors")', '@app.route("/no-cors-' + uid("p") + '")')
    fn = reload(app)
    fp = fingerprint(fn, environment=dict(fn.environment), chalice_stage="dev", extractor=_extractor())
    plan = deploy_app(fn, image_uri=IMAGE, dry_run=True)
    assert plan.model_source == "sandbox" and plan.steps
    assert not stored(fp)
    deploy_app(fn, image_uri=IMAGE)
    assert stored(fp)


def test_a_stored_model_that_is_not_what_its_tag_says_is_extracted_again(app, monkeypatch, tmp_path) -> None:
    """Hostile registry content under the model's tag: another fingerprint's annotation, a model
    that is not the extraction's JSON, a layer of the wrong type. Each is a miss, never used."""
    from lambdaship.api.fingerprint import fingerprint
    from lambdaship.api.model import _extractor

    edit(app, '@app.route("/no-cors")', '@app.route("/no-cors-' + uid("h") + '")')
    app = reload(app)
    fp = fingerprint(app, environment=dict(app.environment), chalice_stage="dev", extractor=_extractor())
    client = registry_client(HOST)
    forged = {"app_name": "forged", "routes": [{"path": "/pwned", "method": "GET", "view_name": "x"}]}
    cases = {
        "another fingerprint": (forged, {"annotation": "0" * 64}),
        "not a model": (["routes"], {}),
        "wrong layer type": (forged, {"layer_type": "application/octet-stream"}),
    }
    for what, (data, how) in cases.items():
        assert modelstore.save_remote(IMAGE, fp, data if isinstance(data, dict) else {"app_name": "x"}) is not None
        body = json.dumps(data).encode()
        digest = modelstore._digest(body)
        client.upload_blob(REPO, digest, len(body), body)
        manifest = json.loads(client.get_manifest(REPO, modelstore.tag(fp))[0])
        manifest["layers"][0].update(digest=digest, size=len(body))
        if "annotation" in how:
            manifest["annotations"][modelstore.ANNOTATION] = how["annotation"]
        if "layer_type" in how:
            manifest["layers"][0]["mediaType"] = how["layer_type"]
        client.put_manifest(REPO, modelstore.tag(fp), modelstore.encode(manifest), manifest["mediaType"])
        assert modelstore.load_remote(IMAGE, fp) is None, what

    plan = deploy_app(app, image_uri=IMAGE, dry_run=True)
    assert plan.model_source == "sandbox" and plan.api.routes
    assert not [r for r in plan.api.routes if "/pwned" in r]


def test_a_local_model_cache_entry_for_another_fingerprint_is_ignored(tmp_path, monkeypatch) -> None:
    fresh_runner(monkeypatch, tmp_path, "home")
    fp, other = "1" * 64, "2" * 64
    modelstore.save_local(other, {"app_name": "other", "routes": []})
    path = modelstore._local_path(other)
    shutil.copy(path, modelstore._local_path(fp))  # the right name, another fingerprint inside
    assert modelstore.load_local(fp) is None
    assert modelstore.load_local(other) == {"app_name": "other", "routes": []}
    modelstore._local_path(fp).write_text('{"fingerprint": "' + fp + '", "model": {"app_name": 3}}')
    assert modelstore.load_local(fp) is None
