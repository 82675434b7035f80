"""``lambdaship serve``: the function behind a local HTTP gateway, warm, reloading on change."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lambdaship.commands._common import FunctionOpt, ProjectOpt, project_and_function

PortOpt = typer.Option(9000, "--port", "-p", help="Port to listen on (0 = any free port).")
HostOpt = typer.Option("127.0.0.1", "--host", help="Address to listen on.")
WorkersOpt = typer.Option(2, "--workers", "-w", min=1, max=64, help="Most runtime processes kept warm.")
V2Opt = typer.Option(False, "--http-api-v2", help="Send HTTP API payload v2 events instead of REST API v1.")
EnvFileOpt = typer.Option(None, "--env-file", help="A .env file whose values are added (default: 'env_file').",
                          show_default=False)
SecretsOpt = typer.Option(False, "--secrets", help="Also read the configured SSM / Secrets Manager values.")


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        project: Path | None = ProjectOpt,
        function: str | None = FunctionOpt,
        port: int = PortOpt,
        host: str = HostOpt,
        workers: int = WorkersOpt,
        http_api_v2: bool = V2Opt,
        timeout: float | None = typer.Option(None, "--timeout", help="Override the function's timeout (seconds)."),
        reload: bool = typer.Option(True, "--reload/--no-reload", help="Restart the workers when the code changes."),
        env_file: Path | None = EnvFileOpt,
        secrets: bool = SecretsOpt,
    ) -> None:
        """Serve the function locally: any path as API Gateway events, plus the RIE endpoint.

        POST /2015-03-31/functions/function/invocations takes a raw event (like the Lambda
        Runtime Interface Emulator); every other request becomes an API Gateway proxy event.
        """
        from lambdaship.local.serve import (
            Watcher,
            function_runtime,
            host_pythonpath,
            local_environment,
            serve_forever,
            stderr_sink,
        )

        _, fn = project_and_function(project, function)
        environment = local_environment(fn, env_file, secrets)
        pythonpath, note = host_pythonpath(fn)
        api = function_runtime(fn, max_workers=workers, log_sink=stderr_sink(), timeout=timeout,
                               pythonpath=pythonpath, environment=environment)
        from lambdaship.api.local import serve_gateway  # API Gateway's answers from the app's model (issue 18)

        gateway, reload_model = serve_gateway(
            fn, api.invoke, http_api_v2=http_api_v2, pythonpath=pythonpath, warn=stderr_sink(),
            make_runtime=lambda h: function_runtime(fn.model_copy(update={"handler": h}), max_workers=1,
                                                    log_sink=stderr_sink(), timeout=timeout,
                                                    pythonpath=pythonpath, environment=environment))
        routes = gateway.routes
        api.start(warm=1)

        watcher = None
        if reload:
            def on_change(changed: list[str]) -> None:
                first = Path(changed[0]).relative_to(fn.source) if changed else "?"
                more = f" (+{len(changed) - 1} more)" if len(changed) > 1 else ""
                sys.stderr.write(f"lambdaship: {first}{more} changed; reloading workers\n")
                sys.stderr.flush()
                paths, _ = host_pythonpath(fn)
                api.pythonpath = [str(p) for p in paths]
                reload_model()
                api.recycle()
                api.start(warm=1)

            watcher = Watcher([fn.source], on_change)

        shape = ("Chalice routes: " + ", ".join(r.path for r in routes)) if routes is not None else "/{proxy+}"
        banner = [
            f"lambdaship: serving {fn.function_name} ({fn.resolved_handler}) with up to {workers} warm worker(s)",
            f"  events: API Gateway {'HTTP API v2' if http_api_v2 else 'REST v1'}, {shape}",
            "  RIE:    POST /2015-03-31/functions/function/invocations",
        ]
        if note:
            banner.append(f"  note: {note}")
        serve_forever(api, gateway, host=host, port=port, banner=banner, watcher=watcher)
