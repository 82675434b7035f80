"""``lambdaship migrate``: move a zip function to a new image function without downtime."""

from __future__ import annotations

from pathlib import Path

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json, err_console, interactive
from lambdaship.commands.options import ProjectFlags, with_options


def register(app: typer.Typer) -> None:
    @app.command("migrate")
    @with_options
    def migrate(
        from_: str = typer.Option(..., "--from", help="The zip function to migrate (name or ARN).",
                                  show_default=False),
        to: str | None = typer.Option(None, "--to", help="Name of the new image function (default: <from>-image).",
                                      show_default=False),
        stage: str | None = typer.Option(
            None, "--stage", help="Chalice stage whose environment_variables to import over the old function's "
                 "(default: none; the old function's environment is kept).",
            show_default=False,
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the whole plan; change nothing."),
        delete_old: bool = typer.Option(
            False, "--delete-old", help="Delete the old function after the switch passed its smoke request."
        ),
        image: str | None = typer.Option(
            None, "--image", help="Use this ECR image (tag or @digest) instead of building.", show_default=False
        ),
        env_file: Path | None = typer.Option(None, "--env-file", help="A .env file (overrides env_file)."),
        where: ProjectFlags = ProjectFlags(),
        json_: bool = JsonOpt,
    ) -> None:
        """Create an image function like FROM, move its triggers to the new alias; undo all on failure."""
        from lambdaship import migrate as mig

        proj, fn = where.load()
        old = from_.rsplit(":function:", 1)[-1].split(":", 1)[0]
        tty = interactive() and not json_
        m = mig.prepare(old, fn, to=to, stage=stage, image=image, delete_old=delete_old, env_file=env_file,
                        progress=tty)
        m.dry_run = dry_run
        for w in m.warnings:
            err_console.print(f"warning: {w}", markup=False)
        if dry_run:
            if json_:
                emit_json(m.to_json())
            else:
                for line in m.render():
                    console.print(line, markup=False)
                console.print("dry run: nothing was changed", markup=False)
            return

        shown = len(m.warnings)
        try:
            mig.run(m, reporter=None if json_ else _report, progress=tty)
        finally:
            for w in m.warnings[shown:]:  # notes from the undo (e.g. an unused deployment left behind)
                err_console.print(f"warning: {w}", markup=False)
        if json_:
            emit_json(m.to_json())
        else:
            _summary(m, fn, proj, delete_old)


def _report(i: int, total: int, step, phase: str) -> None:  # type: ignore[no-untyped-def]
    note = f"  {step.note}" if step.note else ""
    if phase == "start":
        err_console.print(f"→ {i}/{total} {step.action}{note}", markup=False)
    elif phase == "undo":
        err_console.print(f"↩ undo {i}/{total} {step.action}{note}", markup=False)


def _summary(m, fn, proj, delete_old: bool) -> None:  # type: ignore[no-untyped-def]
    inv = m.old
    moved = len(inv.rest) + len(inv.http) + len(inv.mappings) + len(inv.buckets) + len(inv.subscriptions) + len(
        inv.targets)
    console.print(f"migrated {inv.name} -> {m.alias_arn}", markup=False)
    granted = sum(1 for a in m.done if a == "lambda:AddPermission")
    console.print(f"  {moved} trigger(s) re-pointed, {granted} permission(s) granted on the alias, "
                  f"{sum(1 for a in m.done if a.endswith('CreateDeployment'))} stage(s) redeployed", markup=False)
    if fn.function_name != m.new_name:
        console.print(f"  next: set function_name = \"{m.new_name}\" in {proj.config_file} so "
                      "`lambdaship deploy` updates the new function", markup=False)
    if delete_old:
        console.print(f"  {inv.name} deleted", markup=False)
    else:
        console.print(f"  {inv.name} left in place (unchanged); delete it once satisfied: "
                      f"aws lambda delete-function --function-name {inv.name}", markup=False)
