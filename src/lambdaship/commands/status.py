"""``lambdaship status``: what is deployed and what the registry holds."""

from __future__ import annotations

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json
from lambdaship.commands.options import ProjectFlags, with_options


def register(app: typer.Typer) -> None:
    @app.command("status")
    @with_options
    def status(
        where: ProjectFlags = ProjectFlags(),
        all_: bool = typer.Option(
            False, "--all", help="One table for every function of the project, with CloudWatch metrics."
        ),
        since: str | None = typer.Option(
            None, "--since", help="With --all: the metrics window (30m, 1h, 7d; default 1h).", show_default=False
        ),
        versions: int = typer.Option(10, "--versions", help="How many recent versions to list."),
        json_: bool = JsonOpt,
    ) -> None:
        """State, last update, alias → version → digest, recent versions, ECR images and scan status."""
        from lambdaship.deploy.status import function_status, render

        if all_ or since is not None:
            from lambdaship.commands import _fleet as fleet

            fleet.check_all_flags("status", all_, fleet_only={"--since": since},
                                  single_only={"--function": where.function})
            raise typer.Exit(fleet.run_status_all(where.project, since=since or "1h", json_=json_))
        _, fn = where.load()
        info = function_status(fn, versions=versions)
        from lambdaship.api import status as app  # the app's API URL, routes and triggers (issue 18)

        info["app"] = app.app_status(fn) if info["exists"] else None
        if json_:
            emit_json(info)
        else:
            for line in [*render(info), *app.render(info["app"])]:
                console.print(line, markup=False)
        if not info["exists"] or info.get("state") == "Failed" or info.get("last_update_status") == "Failed":
            raise typer.Exit(1)
