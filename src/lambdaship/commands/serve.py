"""``lambdaship serve``: the function behind a local HTTP gateway, warm, reloading on change."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from lambdaship.commands.options import BuildFlags, ListenFlags, LocalEnvFlags, ProjectFlags, with_options


def say(lines: list[str] | tuple[str, ...], prefix: str = "note: ") -> None:
    for line in lines:
        sys.stderr.write(f"{prefix}{line}\n")
    sys.stderr.flush()


def _watcher(source: Path, engine: Any, current: list[Any], make_spec: Callable[[], Any],
             reload_model: Callable[[], None]) -> Any:
    """Restart the workers when the code changes (a new spec when the dependencies changed)."""
    from lambdaship.local.serve import Watcher

    def on_change(changed: list[str]) -> None:
        first = Path(changed[0]).relative_to(source) if changed else "?"
        more = f" (+{len(changed) - 1} more)" if len(changed) > 1 else ""
        sys.stderr.write(f"lambdaship: {first}{more} changed; reloading workers\n")
        sys.stderr.flush()
        old, new = current[0], make_spec()  # a changed requirements file: new dependency tree
        if new == old:
            engine.recycle(old)
        else:
            current[0] = new
            engine.discard(old)
        engine.start(current[0], warm=1)
        reload_model()

    return Watcher([source], on_change)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @with_options
    def serve(
        where: ProjectFlags = ProjectFlags(),
        listen: ListenFlags = ListenFlags(),
        flags: BuildFlags = BuildFlags(),
        reload: bool = typer.Option(True, "--reload/--no-reload", help="Restart the workers when the code changes."),
        local: LocalEnvFlags = LocalEnvFlags(),
    ) -> None:
        """Serve the function locally, sandboxed: any path as API Gateway events, plus the RIE endpoint.

        The function runs on the base image's root filesystem with the dependencies installed
        for the target and the live source tree read-only at /var/task (see docs/cli/serve.md).
        POST /2015-03-31/functions/function/invocations takes a raw event (like the Lambda
        Runtime Interface Emulator); every other request becomes an API Gateway proxy event.
        """
        from lambdaship.local import sandbox
        from lambdaship.local.engine import Engine, FunctionSpec
        from lambdaship.local.serve import serve_forever, stderr_sink
        from lambdaship.local.specs import caller_credentials, local_environment, project_spec

        _, fn = where.load(flags)
        environment = local_environment(fn, local.env_file, local.secrets, local.extra())
        creds = caller_credentials() if local.aws_credentials else None

        def make_spec() -> FunctionSpec:
            return project_spec(fn, environment=environment, credentials=creds, timeout=flags.timeout)

        current = [make_spec()]
        engine = Engine(max_workers=listen.workers, log_sink=stderr_sink())
        from lambdaship.api.local import engine_gateway  # API Gateway's answers from the app's model (issue 18)

        gateway, reload_model = engine_gateway(fn, engine, lambda: current[0], http_api_v2=listen.http_api_v2,
                                               warn=stderr_sink())
        routes = gateway.routes
        engine.start(current[0], warm=1)

        watcher = _watcher(fn.source, engine, current, make_spec, reload_model) if reload else None

        spec = current[0]
        shape = ("Chalice routes: " + ", ".join(r.path for r in routes)) if routes is not None else "/{proxy+}"
        banner = [
            f"lambdaship: serving {fn.function_name} ({fn.resolved_handler}) "
            f"with up to {listen.workers} warm worker(s)",
            f"  events: API Gateway {'HTTP API v2' if listen.http_api_v2 else 'REST v1'}, {shape}",
            "  RIE:    POST /2015-03-31/functions/function/invocations",
            f"  {sandbox.describe(spec.ephemeral_mb, spec.memory_mb)}",
            f"  identity: {spec.identity}",
            *[f"  note: {n}" for n in spec.notes],
        ]
        serve_forever(engine, gateway, host=listen.host, port=listen.port, banner=banner, watcher=watcher)
