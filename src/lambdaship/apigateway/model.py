"""A Chalice app as API Gateway and Lambda see it: routes, authorizers, event sources, the extra
functions on the same image, the custom domain. Values only; :mod:`lambdaship.api.model` extracts
them from the app (Chalice's own app model, inside the sandbox)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RouteModel(_Frozen):
    path: str
    method: str
    view_name: str = ""
    cors: dict[str, str] | None = None  # CORSConfig.get_access_control_headers()
    api_key_required: bool = False
    authorizer: str | None = None
    scopes: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ()


class AuthorizerModel(_Frozen):
    name: str
    kind: Literal["builtin", "iam", "cognito", "custom", "unknown"]
    handler: str | None = None  # builtin: "app.<function>" (the authorizer function's command)
    header: str = "Authorization"
    ttl_seconds: int | None = None
    execution_role: str | None = None
    provider_arns: tuple[str, ...] = ()
    authorizer_uri: str | None = None


class EventSourceModel(_Frozen):
    kind: str  # schedule, cw_event, s3, sns, sqs, kinesis, dynamodb
    name: str
    handler: str
    expression: str | None = None
    description: str = ""
    event_pattern: dict[str, Any] | None = None
    bucket: str | None = None
    events: tuple[str, ...] = ()
    prefix: str | None = None
    suffix: str | None = None
    topic: str | None = None
    queue: str | None = None
    queue_arn: str | None = None
    stream: str | None = None
    stream_arn: str | None = None
    batch_size: int | None = None
    starting_position: str | None = None
    maximum_batching_window_in_seconds: int | None = None
    maximum_concurrency: int | None = None


class ExtraFunction(_Frozen):
    """A function on the same image with another command: authorizers, event handlers,
    ``@app.lambda_function``. ``suffix`` is Chalice's handler name (function = ``<main>-<suffix>``)."""

    suffix: str
    handler: str
    role: Literal["authorizer", "event", "lambda_function", "websocket"]


class DomainModel(_Frozen):
    domain_name: str
    certificate_arn: str | None = None
    url_prefix: str = ""
    tls_version: str | None = None


class AppModel(_Frozen):
    app_name: str | None = None
    swagger: dict[str, Any] | None = None
    routes: tuple[RouteModel, ...] = ()
    binary_types: tuple[str, ...] = ()
    authorizers: tuple[AuthorizerModel, ...] = ()
    event_sources: tuple[EventSourceModel, ...] = ()
    lambda_functions: tuple[ExtraFunction, ...] = ()
    builtin_authorizers: tuple[ExtraFunction, ...] = ()
    websocket_handlers: tuple[dict[str, str], ...] = ()  # route key, name, handler
    domain: DomainModel | None = None
    stage: str = "api"

    @property
    def is_chalice(self) -> bool:
        return self.app_name is not None

    def extra_functions(self) -> list[ExtraFunction]:
        """Every function besides the API handler, once each, in a stable order."""
        seen: dict[str, ExtraFunction] = {}
        for f in (*self.builtin_authorizers, *self.lambda_functions,
                  *(ExtraFunction(suffix=s.name, handler=s.handler, role="event") for s in self.event_sources),
                  *(ExtraFunction(suffix=h["name"], handler=h["handler"], role="websocket")
                    for h in self.websocket_handlers)):
            seen.setdefault(f.suffix, f)
        return list(seen.values())

    def authorizer(self, name: str | None) -> AuthorizerModel | None:
        return next((a for a in self.authorizers if a.name == name), None) if name else None


EMPTY = AppModel()
