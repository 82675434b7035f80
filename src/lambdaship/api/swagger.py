"""The app's REST API definition from Chalice's own ``SwaggerGenerator``, on the host.

The sandbox exports what the generator reads from an app (:mod:`lambdaship.api._extract`);
here a Chalice app object is rebuilt from that data — routes as ``RouteEntry`` with their
``CORSConfig``, authorizers, binary types; the views are empty functions carrying the
docstrings — and handed to the generator, with the **alias** ARNs as the Lambda targets. No
code of the user's app runs in this process.
"""

from __future__ import annotations

from typing import Any


def _view(name: str, doc: str | None) -> Any:
    def view(*args: Any, **kwargs: Any) -> None:  # never called
        return None

    view.__name__ = view.__qualname__ = name or "view"
    view.__doc__ = doc
    return view


def _authorizer(spec: dict[str, Any], scopes: list[str]) -> Any:
    from chalice.app import (
        BuiltinAuthConfig,
        ChaliceAuthorizer,
        CognitoUserPoolAuthorizer,
        CustomAuthorizer,
        IAMAuthorizer,
    )

    kind = spec["kind"]
    if kind == "builtin":
        auth = ChaliceAuthorizer(spec["name"], _view(spec["name"], None), scopes=scopes)
        auth.config = BuiltinAuthConfig(spec["name"], spec.get("handler") or "", ttl_seconds=spec.get("ttl_seconds"),
                                        execution_role=spec.get("execution_role"),
                                        header=spec.get("header") or "Authorization")
        return auth
    if kind == "iam":
        return IAMAuthorizer()
    if kind == "cognito":
        return CognitoUserPoolAuthorizer(spec["name"], list(spec.get("provider_arns") or []),
                                         header=spec.get("header") or "Authorization", scopes=scopes)
    if kind == "custom":
        return CustomAuthorizer(spec["name"], spec.get("authorizer_uri") or "",
                                ttl_seconds=spec.get("ttl_seconds") or 300,
                                header=spec.get("header") or "Authorization", scopes=scopes)
    return None


def rebuild_app(data: dict[str, Any]) -> Any:
    from chalice.app import Chalice, CORSConfig, RouteEntry

    app = Chalice(app_name=data["app_name"], configure_logs=False)
    app.api.binary_types = list(data.get("binary_types") or [])
    specs = {a["name"]: a for a in data.get("authorizers") or []}
    for r in data.get("routes") or []:
        cors = CORSConfig(**r["cors_args"]) if r.get("cors_args") else False
        auth = _authorizer(specs[r["authorizer"]], list(r.get("scopes") or [])) if r.get("authorizer") else None
        app.routes[r["path"]][r["method"]] = RouteEntry(
            _view(r.get("view_name", ""), r.get("doc")), r.get("view_name", ""), r["path"], r["method"],
            api_key_required=r.get("api_key_required") or None, content_types=list(r.get("content_types") or []),
            cors=cors, authorizer=auth)
    return app


def generate(data: dict[str, Any], *, region: str, account: str, function_name: str, alias: str) -> dict[str, Any]:
    """Chalice's swagger for the exported app; the handler and each built-in authorizer are
    the alias of ``<function>`` / ``<function>-<authorizer>``."""
    from chalice.deploy.swagger import SwaggerGenerator

    def arn(name: str) -> str:
        return f"arn:aws:lambda:{region}:{account}:function:{name}:{alias}"

    functions = {f"{function_name}-{a['name']}": {"arn": arn(f"{function_name}-{a['name']}")}
                 for a in data.get("builtin_authorizers") or []}
    deployed = {"api_handler_arn": arn(function_name), "api_handler_name": function_name,
                "lambda_functions": functions}
    return SwaggerGenerator(region, deployed).generate_swagger(rebuild_app(data))
