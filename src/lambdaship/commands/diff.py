"""``lambdaship diff``: deployed configuration and code vs what ``deploy`` would set."""

from __future__ import annotations

from pathlib import Path

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json
from lambdaship.commands.options import ProjectFlags, with_options


def register(app: typer.Typer) -> None:
    @app.command("diff")
    @with_options
    def diff(
        where: ProjectFlags = ProjectFlags(),
        code: bool = typer.Option(
            True, "--code/--no-code", help="Build the package (nothing is pushed) to compare the code digest."
        ),
        env_file: Path | None = typer.Option(
            None, "--env-file", metavar="FILE", help="The .env file (default: .env beside the config).",
            show_default=False,
        ),
        exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when there are changes."),
        json_: bool = JsonOpt,
    ) -> None:
        """Configuration, environment (values masked) and code digest: deployed (the alias) → next deploy."""
        from lambdaship.deploy.lifecycle import diff as compute
        from lambdaship.deploy.lifecycle import render_diff

        _, fn = where.load()
        result = compute(fn, code=code, env_file=str(env_file) if env_file else None)
        if json_:
            emit_json(result)
        else:
            for line in render_diff(result):
                console.print(line, markup=False)
        if exit_code and result["changed"]:
            raise typer.Exit(1)
