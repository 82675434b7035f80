"""``lambdaship rollback [--to VERSION|DIGEST]``: move the alias back."""

from __future__ import annotations

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json
from lambdaship.commands.options import ProjectFlags, with_options


def register(app: typer.Typer) -> None:
    @app.command("rollback")
    @with_options
    def rollback(
        where: ProjectFlags = ProjectFlags(),
        to: str | None = typer.Option(
            None, "--to", help="A version number or image digest (default: the previous version).", show_default=False
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show the alias move; make it not."),
        json_: bool = JsonOpt,
    ) -> None:
        """Move the alias to the previous version (or the one named) if its image still exists."""
        from lambdaship.deploy.rollback import rollback as do_rollback

        _, fn = where.load()
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
        for step in result.plan.steps[:-1]:  # the app's extra functions, on the same code
            p = step.params
            console.print(f"  {p['FunctionName']}: {verb} alias {p['Name']} to version {p['FunctionVersion']} "
                          f"({step.note})", markup=False)
