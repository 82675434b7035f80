"""``lambdaship serve``: the function behind a local HTTP gateway, warm, reloading on change."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lambdaship.commands._common import FunctionOpt, ProjectOpt, project_and_function
from lambdaship.commands.options import BuildFlags, with_options
from lambdaship.errors import UsageError

PortOpt = typer.Option(9000, "--port", "-p", help="Port to listen on (0 = any free port).")
HostOpt = typer.Option("127.0.0.1", "--host", help="Address to listen on.")
WorkersOpt = typer.Option(2, "--workers", "-w", min=1, max=64, help="Most runtime processes kept warm.")
V2Opt = typer.Option(False, "--http-api-v2", help="Send HTTP API payload v2 events instead of REST API v1.")
EnvFileOpt = typer.Option(None, "--env-file", help="A .env file whose values are added (default: 'env_file').",
                          show_default=False)
SecretsOpt = typer.Option(False, "--secrets", help="Also read the configured SSM / Secrets Manager values.")
EnvOpt = typer.Option(None, "--env", metavar="KEY=VALUE", help="Set a variable for the function (repeatable).",
                      show_default=False)
AwsCredentialsOpt = typer.Option(False, "--aws-credentials",
                                 help="Hand your AWS credentials (profile/role: temporary ones) to the function.")


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    """``--env KEY=VALUE`` values; one-line usage error for anything else."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {pair!r} is not KEY=VALUE", "e.g. --env STAGE=dev")
        out[key] = value
    return out


def say(lines: list[str] | tuple[str, ...], prefix: str = "note: ") -> None:
    for line in lines:
        sys.stderr.write(f"{prefix}{line}\n")
    sys.stderr.flush()


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @with_options
    def serve(
        project: Path | None = ProjectOpt,
        function: str | None = FunctionOpt,
        port: int = PortOpt,
        host: str = HostOpt,
        workers: int = WorkersOpt,
        http_api_v2: bool = V2Opt,
        flags: BuildFlags = BuildFlags(),
        reload: bool = typer.Option(True, "--reload/--no-reload", help="Restart the workers when the code changes."),
        env_file: Path | None = EnvFileOpt,
        secrets: bool = SecretsOpt,
        env: list[str] | None = EnvOpt,
        aws_credentials: bool = AwsCredentialsOpt,
    ) -> None:
        """Serve the function locally, sandboxed: any path as API Gateway events, plus the RIE endpoint.

        The function runs on the base image's root filesystem with the dependencies installed
        for the target and the live source tree read-only at /var/task (see docs/cli/serve.md).
        POST /2015-03-31/functions/function/invocations takes a raw event (like the Lambda
        Runtime Interface Emulator); every other request becomes an API Gateway proxy event.
        """
        from lambdaship.local import sandbox
        from lambdaship.local.engine import Engine, FunctionSpec
        from lambdaship.local.serve import Watcher, serve_forever, stderr_sink
        from lambdaship.local.specs import caller_credentials, local_environment, project_spec

        _, fn = project_and_function(project, function, flags.overrides())
        environment = local_environment(fn, env_file, secrets, parse_env(env))
        creds = caller_credentials() if aws_credentials else None

        def make_spec() -> FunctionSpec:
            return project_spec(fn, environment=environment, credentials=creds, timeout=flags.timeout)

        current = [make_spec()]
        engine = Engine(max_workers=workers, log_sink=stderr_sink())
        from lambdaship.api.local import engine_gateway  # API Gateway's answers from the app's model (issue 18)

        gateway, reload_model = engine_gateway(fn, engine, lambda: current[0], http_api_v2=http_api_v2,
                                               warn=stderr_sink())
        routes = gateway.routes
        engine.start(current[0], warm=1)

        watcher = None
        if reload:
            def on_change(changed: list[str]) -> None:
                first = Path(changed[0]).relative_to(fn.source) if changed else "?"
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

            watcher = Watcher([fn.source], on_change)

        spec = current[0]
        shape = ("Chalice routes: " + ", ".join(r.path for r in routes)) if routes is not None else "/{proxy+}"
        banner = [
            f"lambdaship: serving {fn.function_name} ({fn.resolved_handler}) with up to {workers} warm worker(s)",
            f"  events: API Gateway {'HTTP API v2' if http_api_v2 else 'REST v1'}, {shape}",
            "  RIE:    POST /2015-03-31/functions/function/invocations",
            f"  {sandbox.describe(spec.ephemeral_mb, spec.memory_mb)}",
            f"  identity: {spec.identity}",
            *[f"  note: {n}" for n in spec.notes],
        ]
        serve_forever(engine, gateway, host=host, port=port, banner=banner, watcher=watcher)
