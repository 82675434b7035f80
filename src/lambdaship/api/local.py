"""The local gateway for a function: its routes and API settings from the app's model, and
warm runtimes for the authorizer functions (same app, another handler) created on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from lambdaship.apigateway.model import AppModel
from lambdaship.local.gateway import Gateway
from lambdaship.local.invocation import InvokeResult


class HandlerPool:
    """One runtime per handler string (``app.token_auth``), made by ``make`` when first needed."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        self.make = make
        self.runtimes: dict[str, Any] = {}
        self.lock = threading.Lock()

    def invoke(self, handler: str, payload: bytes) -> InvokeResult:
        with self.lock:
            api = self.runtimes.get(handler)
            if api is None:
                api = self.runtimes[handler] = self.make(handler)
        return api.invoke(payload)

    def recycle(self) -> None:
        with self.lock:
            for api in self.runtimes.values():
                api.recycle()

    def close(self) -> None:
        with self.lock:
            runtimes, self.runtimes = list(self.runtimes.values()), {}
        for api in runtimes:
            api.close()


def gateway_for(invoke: Callable[[bytes], InvokeResult], model: AppModel, *, http_api_v2: bool = False,
                make_runtime: Callable[[str], Any] | None = None,
                api_keys: Callable[[], Any] | None = None, **settings: Any) -> tuple[Gateway, HandlerPool | None]:
    """A gateway answering as API Gateway does for this app; the pool runs its authorizers."""
    pool = HandlerPool(make_runtime) if make_runtime is not None else None
    gw = Gateway.from_model(invoke, model, http_api_v2=http_api_v2, api_keys=api_keys,
                            invoke_handler=pool.invoke if pool else None, **settings)
    return gw, pool


def local_api_keys() -> Callable[[], frozenset[str]] | None:
    """The x-api-key values ``serve`` accepts: ``LAMBDASHIP_API_KEYS`` (comma-separated) when set,
    else any non-empty key (``serve`` cannot know the keys of a deployed usage plan)."""
    import os

    raw = os.environ.get("LAMBDASHIP_API_KEYS")
    if raw is None:
        return None
    keys = frozenset(k.strip() for k in raw.split(",") if k.strip())
    return lambda: keys


def serve_gateway(fn: Any, invoke: Callable[[bytes], InvokeResult], *, http_api_v2: bool = False,
                  make_runtime: Callable[[str], Any] | None = None,
                  warn: Callable[[str], None] | None = None) -> tuple[Gateway, Callable[[], None]]:
    """``serve``'s gateway for ``fn`` and the function that reloads its model after a change.

    The model comes from :func:`lambdaship.api.model.extract` (Chalice's own route table);
    when the app cannot be imported, the routes read statically (``ast``) are used and the
    reason is passed to ``warn`` — the function's own error then shows on the first request."""
    from lambdaship.api.model import extract
    from lambdaship.errors import LambdashipError
    from lambdaship.local.serve import routes_for

    def load() -> AppModel | None:
        try:
            return extract(fn)
        except LambdashipError as exc:
            if warn is not None:
                warn(f"lambdaship: {exc.one_line()}; using the routes read from the source")
            return None

    model = load()
    if model is None:
        gw, pool = Gateway(invoke, routes=routes_for(fn.source), http_api_v2=http_api_v2), None
    else:
        gw, pool = gateway_for(invoke, model, http_api_v2=http_api_v2, make_runtime=make_runtime,
                               api_keys=local_api_keys())
        if pool is not None:
            import atexit

            atexit.register(pool.close)  # the authorizers' workers stop with serve

    def reload() -> None:
        new = load()
        if new is None:
            gw.set_routes(routes_for(fn.source))
        else:
            gw.set_model(new)
        if pool is not None:
            pool.recycle()

    return gw, reload


class _EngineHandler:
    """One handler of the app (an authorizer) run by the engine on the current spec."""

    def __init__(self, engine: Any, spec: Callable[[], Any], handler: str) -> None:
        self.engine, self.spec, self.handler = engine, spec, handler

    def invoke(self, payload: bytes) -> InvokeResult:
        return self.engine.invoke(self.spec().with_(handler=self.handler), payload)

    def recycle(self) -> None:
        self.engine.recycle(self.spec().with_(handler=self.handler))

    def close(self) -> None:
        self.engine.discard(self.spec().with_(handler=self.handler))


def engine_gateway(fn: Any, engine: Any, spec: Callable[[], Any], *, http_api_v2: bool = False,
                   warn: Callable[[str], None] | None = None) -> tuple[Gateway, Callable[[], None]]:
    """``serve``'s gateway on the local engine: the function is ``spec()`` (the current
    FunctionSpec), authorizers are the same spec with their handler."""
    return serve_gateway(fn, lambda payload: engine.invoke(spec(), payload), http_api_v2=http_api_v2,
                         make_runtime=lambda handler: _EngineHandler(engine, spec, handler), warn=warn)


def image_gateway(engine: Any, spec: Any, *, http_api_v2: bool = False,
                  warn: Callable[[str], None] | None = None) -> Gateway:
    """``run``'s gateway for an image: the model read in the image's sandbox; the routes read
    statically when that fails (``warn`` says why)."""
    from lambdaship.api.model import extract_from_spec
    from lambdaship.errors import LambdashipError
    from lambdaship.local.serve import routes_for

    def invoke(payload: bytes) -> InvokeResult:
        return engine.invoke(spec, payload)

    try:
        model = extract_from_spec(engine, spec)
    except LambdashipError as exc:
        if warn is not None:
            warn(f"lambdaship: {exc.one_line()}; using the routes read from the image's app.py")
        return Gateway(invoke, routes=routes_for(spec.task_dir), http_api_v2=http_api_v2)
    if not model.is_chalice:
        return Gateway(invoke, routes=routes_for(spec.task_dir), http_api_v2=http_api_v2)
    gw, _ = gateway_for(invoke, model, http_api_v2=http_api_v2, api_keys=local_api_keys(),
                        make_runtime=lambda handler: _EngineHandler(engine, lambda: spec, handler))
    return gw
