"""A Chalice app's API and triggers, as Chalice itself defines them: :class:`AppModel`.

:func:`extract` is the one place that imports the user's app. It runs
:mod:`lambdaship.api._extract` (Chalice's own ``SwaggerGenerator``, the **alias** ARN as the
Lambda target) inside the local engine's sandbox (no credentials, no network, the source
read-only) and reads one JSON line back; nothing of the app is imported into this process.
Non-Chalice apps get :data:`EMPTY` without running anything.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdaship.apigateway.model import (
    EMPTY,
    AppModel,
    AuthorizerModel,
    DomainModel,
    EventSourceModel,
    ExtraFunction,
    RouteModel,
)
from lambdaship.config import FunctionConfig, is_chalice_app
from lambdaship.errors import LambdashipError
from lambdaship.names import LOCAL_ACCOUNT, LOCAL_REGION

EXTRACT_TIMEOUT = 60.0


def _chalice_stage_config(source: Path, stage: str) -> tuple[str, DomainModel | None]:
    """API Gateway stage name and custom domain from ``.chalice/config.json`` (JSON, never code)."""
    path = source / ".chalice" / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise LambdashipError(f"{path}: cannot read: {exc}", "fix the JSON") from None
    if not isinstance(data, dict):
        return "api", None
    st = (data.get("stages") or {}).get(stage) or {}
    api_stage = str(st.get("api_gateway_stage") or data.get("api_gateway_stage") or "api")
    dom = st.get("api_gateway_custom_domain") or data.get("api_gateway_custom_domain")
    domain = None
    if isinstance(dom, dict) and dom.get("domain_name"):
        domain = DomainModel(domain_name=str(dom["domain_name"]), certificate_arn=dom.get("certificate_arn"),
                             url_prefix=str(dom.get("url_prefix") or ""), tls_version=dom.get("tls_version"))
    return api_stage, domain


def run_extract(fn: FunctionConfig, argv: list[str], env: dict[str, str],
                timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run the extraction script on the app: the one call that executes app code — inside the
    sandbox of :mod:`lambdaship.local.engine` (base rootfs, the target's dependencies, the
    source read-only at /var/task, no credentials, no network)."""
    from lambdaship.local.engine import Engine
    from lambdaship.local.specs import project_spec

    script = _extractor()
    spec = project_spec(fn, environment=env)
    with Engine(max_workers=1) as engine:
        return engine.run_command(spec, ["python3", "-c", script, *argv], timeout=timeout)


def parse_output(stdout: bytes) -> dict[str, Any]:
    from lambdaship.api._extract import MARK

    lines = [ln for ln in stdout.decode("utf-8", "replace").splitlines() if ln.startswith(MARK)]
    if not lines:
        raise ValueError("no model line")
    data = json.loads(lines[-1][len(MARK):])
    if not isinstance(data, dict):
        raise ValueError("model is not an object")
    return data


def from_json(data: dict[str, Any], *, stage: str = "api", domain: DomainModel | None = None) -> AppModel:
    extras = [ExtraFunction(suffix=a["name"], handler=a["handler"], role="authorizer")
              for a in data.get("builtin_authorizers") or []]
    lfs = [ExtraFunction(suffix=f["name"], handler=f["handler"], role="lambda_function")
           for f in data.get("lambda_functions") or []]
    return AppModel(
        app_name=data.get("app_name"), swagger=data.get("swagger"),
        routes=tuple(RouteModel(**r) for r in data.get("routes") or []),
        binary_types=tuple(data.get("binary_types") or ()),
        authorizers=tuple(AuthorizerModel(**a) for a in data.get("authorizers") or []),
        event_sources=tuple(EventSourceModel(**e) for e in data.get("event_sources") or []),
        lambda_functions=tuple(lfs), builtin_authorizers=tuple(extras),
        websocket_handlers=tuple(data.get("websocket_handlers") or ()), domain=domain, stage=stage,
    )


@dataclass
class Extracted:
    """The extraction's JSON and where it came from: ``sandbox`` (the app was imported), ``cache``
    (this runner's model cache) or ``registry`` (stored next to the function's images)."""

    data: dict[str, Any]
    fingerprint: str
    source: str


def _extractor() -> str:
    return (Path(__file__).parent / "_extract.py").read_text(encoding="utf-8")


def extract_data(fn: FunctionConfig, *, chalice_stage: str = "dev", timeout: float = EXTRACT_TIMEOUT,
                 image_uri: str | None = None) -> Extracted:
    """The app's model data by its fingerprint (:mod:`lambdaship.api.fingerprint`): this runner's
    cache, else the registry next to ``image_uri``, else imported in the sandbox (and cached here)."""
    from lambdaship.api import fingerprint, modelstore

    env = dict(fn.environment)
    fp = fingerprint.fingerprint(fn, environment=env, chalice_stage=chalice_stage, extractor=_extractor())
    data = modelstore.load_local(fp)
    if data is not None:
        return Extracted(data, fp, "cache")
    if image_uri:
        data = modelstore.load_remote(image_uri, fp)
        if data is not None:
            modelstore.save_local(fp, data)
            return Extracted(data, fp, "registry")
    proc = run_extract(fn, [], env, timeout)
    try:
        data = parse_output(proc.stdout)
    except ValueError:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise LambdashipError(f"cannot read the Chalice app in {fn.source}: {tail[0][:300]}",
                              "run `python -c 'import app'` in the app directory and fix the error") from None
    if "error" in data:
        raise LambdashipError(f"{fn.source / 'app.py'}: {data['error']}", "define app = Chalice(app_name=...)")
    modelstore.save_local(fp, data)
    return Extracted(data, fp, "sandbox")


def build(fn: FunctionConfig, data: dict[str, Any], *, region: str = LOCAL_REGION, account: str = LOCAL_ACCOUNT,
          chalice_stage: str = "dev") -> AppModel:
    """The :class:`AppModel` of extraction data (swagger targets the function's alias ARN)."""
    stage, domain = _chalice_stage_config(fn.source, chalice_stage)
    data = dict(data)
    if data.get("routes"):
        from lambdaship.api import swagger

        data["swagger"] = swagger.generate(data, region=region, account=account, function_name=fn.function_name,
                                           alias=fn.alias)
    return from_json(data, stage=stage, domain=domain)


def extract(fn: FunctionConfig, *, region: str = LOCAL_REGION, account: str = LOCAL_ACCOUNT,
            chalice_stage: str = "dev", timeout: float = EXTRACT_TIMEOUT, image_uri: str | None = None) -> AppModel:
    """The app's model (swagger targets ``arn:aws:lambda:<region>:<account>:function:<name>:<alias>``)."""
    if not is_chalice_app(fn.source):
        return EMPTY
    got = extract_data(fn, chalice_stage=chalice_stage, timeout=timeout, image_uri=image_uri)
    return build(fn, got.data, region=region, account=account, chalice_stage=chalice_stage)


def extract_from_spec(engine: Any, spec: Any, *, timeout: float = EXTRACT_TIMEOUT) -> AppModel:
    """The model of the Chalice app inside an image (``run``): the extraction script in the
    image's own sandbox (``engine.run_command``), no swagger (the gateway does not need it)."""
    if not is_chalice_app(spec.task_dir):
        return EMPTY
    script = _extractor()
    proc = engine.run_command(spec, ["python3", "-c", script], timeout=timeout)
    try:
        data = parse_output(proc.stdout)
    except ValueError:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise LambdashipError(f"cannot read the Chalice app in the image: {tail[0][:300]}") from None
    if "error" in data:
        raise LambdashipError(f"the image's app.py: {data['error']}")
    return from_json(data)
