"""``lambdaship invoke``: one invocation, locally (``--local``) or of the deployed alias."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from lambdaship.commands._common import JsonOpt, emit_json
from lambdaship.commands.options import LocalEnvFlags, ProjectFlags, with_options
from lambdaship.commands.serve import say
from lambdaship.errors import UsageError


def read_event(event: str | None) -> bytes:
    """The event payload: a file, ``-`` for stdin, or ``{}``; must be JSON."""
    if event is None:
        return b"{}"
    if event == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(event)
        if not path.exists() or path.is_dir():
            raise UsageError(f"event file {event} not found", "pass a JSON file, or - to read stdin")
        data = path.read_bytes()
    try:
        json.loads(data or b"null")
    except ValueError as exc:
        raise UsageError(f"the event is not valid JSON: {exc}", "Lambda events are JSON documents") from None
    return data or b"{}"


def http_event(app_dir: Path, method: str, path: str, body: bytes = b"") -> bytes:
    """An API Gateway REST proxy event for ``METHOD path`` (per-route shape for Chalice apps)."""
    from lambdaship.apigateway.events import build_event_v1
    from lambdaship.apigateway.routes import match_route
    from lambdaship.local.serve import routes_for

    if not path.startswith("/"):
        raise UsageError(f"--path {path!r} must start with '/'")
    routes = routes_for(app_dir)
    route_path = path.split("?", 1)[0]
    if routes is not None:
        matched = match_route(routes, route_path)
        if matched is None:
            raise UsageError(f"no Chalice route matches {route_path}",
                             f"routes: {', '.join(r.path for r in routes) or 'none'}")
        resource, params = matched[0].path, matched[1]
    else:
        resource, params = "/{proxy+}", ({"proxy": route_path.lstrip("/")} if route_path != "/" else {})
    event = build_event_v1(method.upper(), path, [("Host", "localhost"), ("User-Agent", "lambdaship-invoke")], body,
                           resource=resource, path_params=params)
    return json.dumps(event).encode()


def _print_result(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    @app.command("invoke")
    @with_options
    def invoke(
        where: ProjectFlags = ProjectFlags(),
        event: str | None = typer.Option(None, "--event", "-e", help="JSON event file, or - for stdin (default {})."),
        local: bool = typer.Option(False, "--local", help="Run the handler on this machine, sandboxed, on the "
                                   "base rootfs with the target's dependencies (awslambdaric)."),
        qualifier: str | None = typer.Option(None, "--qualifier", "-q",
                                             help="Alias or version to invoke (remote; default: the alias)."),
        timeout: float | None = typer.Option(None, "--timeout", help="Override the function's timeout (s, --local)."),
        local_env: LocalEnvFlags = LocalEnvFlags(),
        path: str | None = typer.Option(None, "--path", help="Send an API Gateway proxy event for this HTTP path "
                                        "(Chalice apps: per-route shape) instead of --event."),
        method: str = typer.Option("GET", "--method", "-X", help="HTTP method for --path."),
        json_: bool = JsonOpt,
    ) -> None:
        """Invoke the function once and print its result (then its logs, with --local).

        Exit status 1 when the function fails (the error is printed as Lambda shapes it).
        """
        if path is not None and event is not None:
            raise UsageError("--path and --event cannot be combined", "choose one")
        payload = read_event(event)
        _, fn = where.load()
        if path is not None:
            payload = http_event(fn.source, method, path)
        if local:
            data = _invoke_local(fn, payload, timeout, local_env)
        else:
            from lambdaship.aws import lambda_

            err, raw = lambda_.invoke(fn.function_name, qualifier or fn.alias, json.loads(payload))
            try:
                result: Any = json.loads(raw) if raw else None
            except ValueError:
                result = raw.decode("utf-8", "replace")
            data = {"function": fn.function_name, "qualifier": qualifier or fn.alias, "ok": err is None,
                    ("result" if err is None else "error"): result, "logs": []}
        if json_:
            emit_json(data)
        else:
            _print_result(data["result"] if data["ok"] else data["error"])
            if data.get("logs"):
                sys.stderr.write("\n".join(data["logs"]) + "\n")
        if not data["ok"]:
            raise typer.Exit(1)


def _invoke_local(fn: Any, payload: bytes, timeout: float | None, flags: LocalEnvFlags) -> dict[str, Any]:
    from lambdaship.local.engine import Engine
    from lambdaship.local.specs import caller_credentials, local_environment, project_spec

    environment = local_environment(fn, flags.env_file, flags.secrets, flags.extra())
    creds = caller_credentials() if flags.aws_credentials else None
    spec = project_spec(fn, environment=environment, credentials=creds, timeout=timeout)
    say(spec.notes)
    say([spec.identity])
    logs: list[str] = []
    engine = Engine(max_workers=1, log_sink=logs.append)
    try:
        result = engine.invoke(spec, payload)
    finally:
        engine.close()  # waits for the worker's output to drain, so the logs are complete
    data: dict[str, Any] = {
        "function": fn.function_name,
        "handler": fn.resolved_handler,
        "local": True,
        "ok": result.ok,
        "request_id": result.request_id,
        "duration_ms": round(result.duration_ms, 3),
        "init_duration_ms": round(result.init_duration_ms, 3) if result.init_duration_ms is not None else None,
        "max_memory_mb": result.max_memory_mb,
        "timed_out": result.timed_out,
        "logs": logs,
    }
    if result.ok:
        data["result"] = result.json()
    else:
        data["error"] = result.error
    return data
