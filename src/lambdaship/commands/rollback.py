"""``lambdaship rollback [--to VERSION|DIGEST]``: move the alias back."""

from __future__ import annotations

from pathlib import Path

import typer

from lambdaship.commands._common import FunctionOpt, JsonOpt, ProjectOpt, console, emit_json, project_and_function


def register(app: typer.Typer) -> None:
    @app.command("rollback")
    def rollback(
        project: Path | None = ProjectOpt,
        function: str | None = FunctionOpt,
        to: str | None = typer.Option(
            None, "--to", help="A version number or image digest (default: the previous version).", show_default=False
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show the alias move; make it not."),
        json_: bool = JsonOpt,
    ) -> None:
        """Move the alias to the previous version (or the one named) if its image still exists."""
        from lambdaship.deploy.rollback import rollback as do_rollback

        _, fn = project_and_function(project, function)
        result = do_rollback(fn, to, dry_run=dry_run)
        if json_:
            emit_json(result.to_json())
            return
        verb = "would move" if dry_run else "moved"
        console.print(
            f"{fn.function_name}: {verb} alias {fn.alias} from version {result.from_version} to "
            f"{result.to_version} ({result.digest or 'unknown image'})",
            markup=False,
        )
