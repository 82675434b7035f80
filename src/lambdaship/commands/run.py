"""``lambdaship run IMAGE``: run a built image locally, sandboxed (OCI layout or registry reference)."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from lambdaship.commands._common import JsonOpt, emit_json
from lambdaship.commands.options import ListenFlags, LocalEnvFlags, ProjectFlags, RuntimeFlags, with_options
from lambdaship.commands.serve import say
from lambdaship.errors import UsageError


def _overrides(where: ProjectFlags, local: LocalEnvFlags, limits: RuntimeFlags) -> dict[str, Any]:
    """FunctionSpec fields from -C/-f (config environment, name, limits), --env*, --aws-credentials."""
    from lambdaship.local.specs import caller_credentials, local_environment

    out: dict[str, Any] = {}
    extra, env_file = local.extra(), local.env_file
    if where != ProjectFlags():
        _, fn = where.load()
        out.update(name=fn.function_name, memory_mb=fn.memory, timeout_s=float(fn.timeout),
                   ephemeral_mb=fn.ephemeral_storage, environment=local_environment(fn, env_file, local.secrets, extra))
    else:
        if local.secrets:
            raise UsageError("--secrets needs the project (its configured secrets)", "add -C PROJECT_DIR")
        values: dict[str, str] = {}
        if env_file is not None:
            from lambdaship.deploy.env import parse_env_file

            if not env_file.is_file():
                raise UsageError(f"env file {env_file} does not exist", "create it or fix --env-file")
            values.update(parse_env_file(env_file))
        values.update(extra)
        out["environment"] = values
    if limits.timeout is not None:
        out["timeout_s"] = float(limits.timeout)
    if limits.memory is not None:
        out["memory_mb"] = limits.memory
    if local.aws_credentials:
        out["credentials"] = caller_credentials()
    return out


def _request(gateway: Any, method: str, path: str, body: str | None) -> tuple[dict[str, Any], bool]:
    headers = [("Host", "localhost"), ("User-Agent", "lambdaship-run")]
    raw = (body or "").encode()
    if raw:
        try:
            json.loads(raw)
            headers.append(("Content-Type", "application/json"))
        except ValueError:
            headers.append(("Content-Type", "text/plain"))
    resp = gateway.handle(method, path, headers, raw)
    text = resp.body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    return {"method": method, "path": path, "status": resp.status, "headers": dict(resp.headers),
            "body": parsed}, 200 <= resp.status < 300


def _one_request(get: str | None, request: tuple[str, str] | None) -> tuple[str, str] | None:
    """(METHOD, /path) of --get / --request, checked; None without either."""
    if get is not None and request is not None:
        raise UsageError("--get and --request cannot be combined", "choose one")
    if get is not None:
        request = ("GET", get)
    if request is None:
        return None
    method, path = request[0].upper(), request[1] if request[1].startswith("/") else "/" + request[1]
    if not method.isalpha():
        raise UsageError(f"{request[0]!r} is not an HTTP method", "use e.g. --request GET /health")
    return method, path


def _answer_once(engine: Any, gateway: Any, spec: Any, one: tuple[str, str] | None, body: str | None,
                 payload: bytes | None, data: dict[str, Any]) -> dict[str, Any]:
    """One request through the gateway (--get/--request) or one invocation (--event); the engine is closed."""
    try:
        if one is not None:
            answer, ok = _request(gateway, *one, body)
            data.update(answer)
        else:
            result = engine.invoke(spec, payload or b"{}")
            ok = result.ok
            data[("result" if ok else "error")] = result.json() if ok else result.error
        data["ok"] = ok
    finally:
        engine.close()
    return data


def _print_answer(data: dict[str, Any], json_: bool, *, http: bool) -> None:
    if json_:
        emit_json(data)
        return
    if http:
        sys.stdout.write(f"{data['status']} {json.dumps(data['body'])}\n")
    else:
        sys.stdout.write(json.dumps(data.get("result", data.get("error")), indent=2) + "\n")
    if data["logs"]:
        sys.stderr.write("\n".join(data["logs"]) + "\n")


def register(app: typer.Typer) -> None:
    @app.command("run")
    @with_options
    def run(
        image: str = typer.Argument(..., help="OCI layout directory, or registry reference (tag or @digest)."),
        where: ProjectFlags = ProjectFlags(),
        listen: ListenFlags = ListenFlags(),
        limits: RuntimeFlags = RuntimeFlags(),
        local: LocalEnvFlags = LocalEnvFlags(),
        get: str | None = typer.Option(None, "--get", metavar="PATH",
                                       help="Send one GET request through the gateway, print the answer, exit."),
        request: tuple[str, str] | None = typer.Option(
            None, "--request", metavar="METHOD PATH",
            help="Send one request (e.g. --request POST /items) through the gateway, print the answer, exit."),
        body: str | None = typer.Option(None, "--body", help="Request body for --request (JSON is sent as such)."),
        event: str | None = typer.Option(None, "--event", "-e",
                                         help="Invoke once with this JSON event (file or -), print the result, exit."),
        json_: bool = JsonOpt,
    ) -> None:
        """Unpack IMAGE (verified, cached) and serve it like `serve`, sandboxed (or answer once).

        The image's ENTRYPOINT + CMD run in a bubblewrap sandbox on its own root filesystem,
        against the Runtime API emulator (isolation: docs/cli/run.md). -C takes the function's
        environment, name and limits from the project; your AWS credentials are passed only
        with --aws-credentials.
        """
        from lambdaship.commands.invoke import read_event
        from lambdaship.local import sandbox
        from lambdaship.local.engine import Engine
        from lambdaship.local.serve import serve_forever, stderr_sink
        from lambdaship.local.specs import image_spec

        one = _one_request(get, request)
        if one is not None and event is not None:
            raise UsageError("--request/--get and --event cannot be combined", "choose one")
        payload = read_event(event) if event is not None else None
        overrides = _overrides(where, local, limits)

        def progress(msg: str) -> None:
            sys.stderr.write(f"unpacking {msg}\n")
            sys.stderr.flush()

        spec = image_spec(image, progress=progress, **overrides)
        say([*spec.notes, sandbox.describe(spec.ephemeral_mb, spec.memory_mb), spec.identity])
        once = one is not None or payload is not None
        logs: list[str] = []
        engine = Engine(max_workers=listen.workers, log_sink=logs.append if once else stderr_sink())
        from lambdaship.api.local import image_gateway  # API Gateway's answers from the image's app (issue 18)

        gateway = image_gateway(engine, spec, http_api_v2=listen.http_api_v2, warn=stderr_sink())
        if not once:
            engine.start(spec, warm=1)
            serve_forever(engine, gateway, host=listen.host, port=listen.port, watcher=None, banner=[
                f"lambdaship: running {image} with up to {listen.workers} warm worker(s)",
                "  RIE:    POST /2015-03-31/functions/function/invocations",
            ])
            return
        data = _answer_once(engine, gateway, spec, one, body, payload, {"image": image, "digest": spec.image_digest})
        data["logs"] = logs
        _print_answer(data, json_, http=one is not None)
        if not data["ok"]:
            raise typer.Exit(1)
