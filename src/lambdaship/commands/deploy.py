"""``lambdaship deploy``: build, push, deploy by digest, publish, smoke test, move the alias."""

from __future__ import annotations

from pathlib import Path

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json, err_console, interactive
from lambdaship.commands.options import BuildFlags, ProjectFlags, with_options


def register(app: typer.Typer) -> None:
    @app.command("deploy")
    @with_options
    def deploy(
        where: ProjectFlags = ProjectFlags(),
        all_: bool = typer.Option(
            False, "--all", help="Every function of the project, in parallel (see --changed-since, --workers)."
        ),
        changed_since: str | None = typer.Option(
            None, "--changed-since", metavar="REF", show_default=False,
            help="With --all: only the functions changed since this git ref (REF...HEAD and uncommitted changes).",
        ),
        workers: int | None = typer.Option(
            None, "--workers", show_default=False,
            help="With --all: how many functions deploy at once (default: 4 per core, 2 to 8)."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print every AWS call the deploy would make; make none."),
        image: str | None = typer.Option(
            None, "--image", help="Deploy this ECR image (tag or @digest) instead of building.", show_default=False
        ),
        create_role: bool = typer.Option(
            False, "--create-role", help="Create an execution role (CloudWatch Logs only) if none is configured."
        ),
        skip_smoke: bool = typer.Option(False, "--skip-smoke", help="Move the alias without the smoke test."),
        env_file: Path | None = typer.Option(
            None, "--env-file", help="A .env file (overrides env_file in the config)."
        ),
        zip_bucket: str | None = typer.Option(
            None, "--zip-bucket", help="S3 bucket for zip packages over 50 MiB (overrides zip_bucket).",
            show_default=False,
        ),
        create_bucket: bool = typer.Option(False, "--create-bucket", help="Create the --zip-bucket if missing."),
        regions: list[str] | None = typer.Option(
            None, "--regions", metavar="REGION[,REGION…]", show_default=False,
            help="Deploy to these regions (repeatable or comma-separated; overrides 'regions'). The first "
                 "builds and pushes, the others get a copy of the blobs they lack; all deploy in parallel.",
        ),
        flags: BuildFlags = BuildFlags(),
        json_: bool = JsonOpt,
    ) -> None:
        """Deploy the function by image digest; the alias moves only after the smoke test passes.

        With --all: every function of the project (only the changed ones with --changed-since), in parallel.
        One function's failure stops no other; the exit code is 1 if any failed.
        """
        overrides = flags.overrides()
        if all_ or changed_since is not None or workers is not None:
            from lambdaship.api.deploy import extension  # every function's API and triggers, as deploy -f
            from lambdaship.commands import _fleet as fleet

            fleet.check_all_flags("deploy", all_, fleet_only={"--changed-since": changed_since, "--workers": workers},
                                  single_only={"--function": where.function, "--image": image, "--env-file": env_file,
                                               "--zip-bucket": zip_bucket, "--regions": regions})
            _no_fleet_regions(where, overrides)
            raise typer.Exit(fleet.run_deploy_all(
                where.project, changed_since=changed_since,
                workers=fleet.DEFAULT_WORKERS if workers is None else workers, dry_run=dry_run, json_=json_,
                overrides=overrides, create_role=create_role, skip_smoke=skip_smoke, create_bucket=create_bucket,
                app=extension,
            ))
        _, fn = where.load(flags)
        from lambdaship.api.deploy import extension, summary  # the app's REST API and triggers (issue 18)

        chosen = _regions(fn, regions)
        if chosen:
            raise typer.Exit(_deploy_regions(
                fn, chosen, json_, dry_run=dry_run, image=image, create_role=create_role, skip_smoke=skip_smoke,
                env_file=env_file, zip_bucket=zip_bucket, create_bucket=create_bucket, app=extension))

        result = _ship(fn, json_, dry_run=dry_run, image=image, create_role=create_role, skip_smoke=skip_smoke,
                       env_file=env_file, zip_bucket=zip_bucket, create_bucket=create_bucket, app=extension)

        app_plan = result.app
        if json_:
            emit_json({**result.to_json(), **({"app": app_plan.to_json()} if app_plan is not None else {})})
        else:
            _print(fn, result, dry_run)
            if not dry_run:
                _print_app(fn, summary(app_plan) if app_plan is not None else [])


def _ship(fn, json_: bool, **kw):  # type: ignore[no-untyped-def]
    """Run the deploy with a status line (a terminal) or one line per stage (CI logs, stderr):
    the build's stages, one line per blob pushed, each step with its duration, a summary line."""
    from lambdaship.commands._progress import StepLines, push_summary
    from lambdaship.commands._push_progress import PushRenderer
    from lambdaship.deploy.pipeline import ship

    tty = interactive() and not json_
    status = err_console.status("planning…") if tty else None
    steps = StepLines(err_console) if not tty and not json_ else None

    def report(step, ctx) -> None:  # type: ignore[no-untyped-def]
        if status is not None:
            status.update(f"{step.action.split(':', 1)[1]}…")
        elif steps is not None:
            steps(step, ctx)

    if status is not None:
        status.start()
    summary = None
    try:  # push progress as one line per blob (the status line stays the only live display)
        with PushRenderer(err_console, tty=False, enabled=not json_) as pushed:
            result = ship(fn, progress=not json_, reporter=report, on_push_event=pushed, **kw)
        if not kw.get("dry_run"):
            done = "up to date" if result.function_up_to_date else "deployed"
            summary = (done, f"{fn.function_name} version {result.alias_version or result.version}; "
                             f"{push_summary(pushed)}")
        return result
    finally:
        if status is not None:
            status.stop()
        if steps is not None:
            steps.close(*(summary or ()))


def _print_app(fn, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
    """The app's API and triggers, then the local URLs that call the function (a local stack only)."""
    from lambdaship.local.stack import local_lines  # asks a running local stack; imports no data plane

    for line in [*lines, *local_lines(fn.function_name)]:
        console.print(line, markup=False)


def _print(fn, result, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    if dry_run:
        for line in result.plan.render():
            console.print(line, markup=False)
        console.print("dry run: no changes made", markup=False)
        return
    if result.function_up_to_date:
        console.print(f"{fn.function_name}: up to date (alias {fn.alias} → version {result.alias_version}, "
                      f"{result.digest})", markup=False)
        return
    moved = result.alias_version
    if result.previous_version:
        moved = f"{result.previous_version} → {result.alias_version}"
    console.print(f"deployed {fn.function_name} version {result.version} ({result.digest})", markup=False)
    console.print(f"alias {fn.alias}: {moved}", markup=False)
    smoke = result.smoke
    if smoke and smoke.get("kind") == "path":
        console.print(f"smoke test passed: {smoke['method']} {smoke['path']} → {smoke['status']}", markup=False)
    elif smoke:
        console.print("smoke test passed: event invoked without error", markup=False)


# ---- several regions (docs/design-regions.md) ---------------------------------------------------
def _regions(fn, given: list[str] | None) -> list[str]:  # type: ignore[no-untyped-def]
    """The regions of this deploy: ``--regions`` (repeatable, comma-separated), else the global
    ``--region`` when the config lists regions (deploy that one), else the config's ``regions``;
    ``[]``: the single-region deploy boto3 configures, as without the key."""
    from lambdaship.aws.session import settings
    from lambdaship.errors import UsageError
    from lambdaship.patterns import REGION_RE

    if given:
        out = [r.strip() for value in given for r in value.split(",") if r.strip()]
        bad = [r for r in out if not REGION_RE.match(r)]
        if bad or not out:
            raise UsageError(f"--regions {','.join(given)}: {bad[0] if bad else 'empty'!r} is not an AWS region name",
                             "use region names, e.g. --regions us-east-1,eu-west-1")
        return list(dict.fromkeys(out))
    if fn.regions and settings.region:
        return [settings.region]
    return list(fn.regions)


def _no_fleet_regions(where, overrides) -> None:  # type: ignore[no-untyped-def]
    from lambdaship.config import load_project
    from lambdaship.errors import ConfigError

    project = load_project(where.project, overrides)
    keys = [k for k, f in project.functions.items() if f.regions]
    if keys:
        raise ConfigError(f"deploy --all does not deploy to several regions yet ({', '.join(keys)} set 'regions')",
                          "deploy those functions one at a time: lambdaship deploy -f KEY")


def _deploy_regions(fn, regions: list[str], json_: bool, **kw) -> int:  # type: ignore[no-untyped-def]
    """Every region in parallel, one summary row per region; exit 1 if any region failed."""
    from lambdaship.commands._progress import RegionLines, region_rows
    from lambdaship.commands._push_progress import PushRenderer
    from lambdaship.deploy.regions import ship_regions

    tty = interactive() and not json_
    lines = RegionLines(err_console, regions, tty=tty, enabled=not json_)
    pushes = {r: PushRenderer(err_console, tty=False, enabled=not json_ and r == regions[0]) for r in regions}
    with lines:
        result = ship_regions(fn, regions, progress=not json_, reporter=lines.step, on_done=lines.done,
                              on_push_event=lambda region, event: pushes[region](event), **kw)
    failure = result.failure() if result.failed else None
    if json_:
        doc = result.to_json()
        if failure is not None:
            doc.update({"error": failure.message, "hint": failure.hint, "exit_code": 1})
        emit_json(doc)
        return 1 if failure else 0
    if kw.get("dry_run"):
        for outcome in result.regions:
            console.print(f"region {outcome.region}:", markup=False)
            if outcome.result is not None:
                for line in outcome.result.plan.render():
                    console.print("  " + line, markup=False)
            elif outcome.error is not None:
                console.print(f"  cannot plan: {outcome.error.one_line()}", markup=False)
        console.print("dry run: no changes made", markup=False)
        if failure is not None:
            raise failure
        return 0
    for line in region_rows(result):
        console.print(line, markup=False)
    if failure is not None:
        raise failure
    return 0
