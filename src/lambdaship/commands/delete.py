"""``lambdaship delete``: the function with its aliases and versions; images and repository opt-in."""

from __future__ import annotations

import sys

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json, err_console
from lambdaship.commands.options import ProjectFlags, with_options
from lambdaship.errors import LambdashipError, UsageError


def register(app: typer.Typer) -> None:
    @app.command("delete")
    @with_options
    def delete(
        name: str | None = typer.Argument(
            None, metavar="[NAME]", help="Lambda function name (default: the configured function).",
            show_default=False,
        ),
        where: ProjectFlags = ProjectFlags(),
        images: bool = typer.Option(False, "--images", help="Also delete the function's images from ECR."),
        repository: bool = typer.Option(
            False, "--repository", help="Also delete the function's own ECR repository with all its images."
        ),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
        force: bool = typer.Option(
            False, "--force", help="Delete a function lambdaship does not manage, or a shared repository."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted; delete nothing."),
        json_: bool = JsonOpt,
    ) -> None:
        """Delete a deployed function (all aliases and versions); --images / --repository also clean ECR."""
        from lambdaship.deploy.lifecycle import execute_delete, plan_delete

        if name is not None and where != ProjectFlags():
            raise UsageError("pass a function NAME or -C/-f, not both")
        repo_override = None
        if name is None:
            _, fn = where.load()
            name, repo_override = fn.function_name, fn.repository
        plan = plan_delete(name, repo_override, images=images, repo=repository, force=force)
        out = console if not json_ else err_console
        if not json_ or not yes:
            out.print(("would delete:" if dry_run else "deleting:"), markup=False)
            for line in plan.describe():
                out.print(line, markup=False)
        if dry_run:
            if json_:
                emit_json({**plan.to_json(), "dry_run": True})
            return
        if not yes:
            try:
                confirmed = typer.confirm(f"delete {name}?", default=False, err=True)
            except typer.Abort:
                confirmed = False
            if not sys.stdin.isatty():
                sys.stderr.write("\n")  # the answer was not echoed: end the prompt's line
            if not confirmed:
                raise LambdashipError(f"{name} not deleted", "answer y, or pass --yes")
        execute_delete(plan)
        if json_:
            emit_json({**plan.to_json(), "dry_run": False})
        else:
            console.print(f"deleted {', '.join(plan.deleted)}", markup=False)
