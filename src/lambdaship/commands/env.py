"""``lambdaship env show|sync``: the function's environment from config, .env, SSM, Secrets Manager."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json
from lambdaship.commands.options import ProjectFlags, with_options

EnvFileOpt = typer.Option(None, "--env-file", help="A .env file (overrides env_file in the config).",
                          show_default=False)


env = typer.Typer(help="Show or apply the function's environment (values are always masked).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(env, name="env")


@env.command("show")
@with_options
def show(
    where: ProjectFlags = ProjectFlags(),
    env_file: Path | None = EnvFileOpt,
    json_: bool = JsonOpt,
) -> None:
    """List every variable, where its value comes from and how it differs from the deployed one."""
    from lambdaship.deploy import envsync
    from lambdaship.deploy.env import MAX_ENV_BYTES, render_diff

    _, fn = where.load()
    report = envsync.show(fn, env_file)
    if json_:
        emit_json(report.to_json())
        return
    state = "deployed" if report.exists else "not deployed yet"
    console.print(f"{fn.function_name} ({state}): {len(report.changes)} variable(s), "
                  f"{report.size}/{MAX_ENV_BYTES} bytes", markup=False)
    for line in render_diff(report.changes):
        console.print(line, markup=False)


@env.command("sync")
@with_options
def sync(
    where: ProjectFlags = ProjectFlags(),
    env_file: Path | None = EnvFileOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the masked diff and the plan; apply nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking (asking happens only on a TTY)."),
    json_: bool = JsonOpt,
) -> None:
    """Apply the environment: publish a version with it and move the alias (after the smoke test)."""
    from lambdaship.deploy import envsync
    from lambdaship.deploy.env import render_diff

    _, fn = where.load()
    report = envsync.plan_sync(fn, env_file)
    if not json_:
        if report.changed:
            console.print(f"{fn.function_name}: environment changes", markup=False)
            for line in render_diff(report.changed):
                console.print(line, markup=False)
        else:
            console.print(f"{fn.function_name}: environment in sync", markup=False)
    if dry_run or (not report.changed and report.plan is not None and report.plan.up_to_date):
        if json_:
            emit_json(report.to_json())
        elif dry_run and report.plan is not None:
            for line in report.plan.render():
                console.print(line, markup=False)
            console.print("dry run: no changes made", markup=False)
        return
    if not yes and sys.stdin.isatty() and not json_ and not typer.confirm("apply?", default=False):
        raise typer.Exit(1)
    envsync.apply(report)
    if json_:
        emit_json(report.to_json())
        return
    console.print(f"published version {report.version}; alias {fn.alias} → {report.alias_version}",
                  markup=False)
