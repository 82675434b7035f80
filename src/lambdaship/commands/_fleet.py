"""The command-line front ends of ``deploy --all`` and ``status --all`` (tables, JSON, exit codes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lambdaship.deploy.fleet.run import DEFAULT_WORKERS, FleetResult, check_workers, deploy_all, summary_rows
from lambdaship.deploy.fleet.status import parse_since, status_all, status_rows
from lambdaship.errors import UsageError

__all__ = ["DEFAULT_WORKERS", "check_all_flags", "run_deploy_all", "run_status_all"]


def _table(rows: list[list[str]], last_free: bool = True) -> list[str]:
    """Plain aligned columns (no wrapping: CI logs and grep stay readable); the last column is not
    padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=True)]
        if last_free:
            cells[-1] = r[-1]
        out.append("  ".join(cells).rstrip())
    return out


def totals_line(result: FleetResult) -> str:
    if result.dry_run:
        return (f"{result.count('would_deploy')} would deploy, {result.count('skipped')} skipped "
                "(dry run: nothing built or deployed)")
    return (f"{result.count('deployed')} deployed, {result.count('up_to_date')} up to date, "
            f"{result.count('failed')} failed, {result.count('skipped')} skipped in {result.seconds:.1f}s")


def _times(n: int) -> str:
    return {0: "never", 1: "once"}.get(n, f"{n} times")


def sharing_lines(result: FleetResult) -> list[str]:
    """What the run's functions shared: each dependency set (installs, layers written) and what
    the pushes sent per role (base, deps, app, config)."""
    from lambdaship.commands._push_progress import size_text

    lines = []
    for s in result.deps_sets():
        n = len(s["functions"])
        lines.append(f"dependency set {s['hash'][:12]}: {n} function{'s' * (n != 1)}, "
                     f"installed {_times(s['installs'])}, "
                     f"{s['layers_written']} layer{'s' * (s['layers_written'] != 1)} written, "
                     f"{s['layers_cached']} from the layer cache")
    sent = result.transfer()
    if any(sum(row.values()) for row in sent.values()):
        parts = [f"{role} {row['sent']} ({size_text(row['sent_bytes'])})" for role, row in sent.items()]
        mounted = sum(row["mounted"] for row in sent.values())
        skipped = sum(row["skipped"] for row in sent.values())
        lines.append(f"blobs sent: {', '.join(parts)}; {mounted} mounted, {skipped} already there")
    return lines


def check_all_flags(command: str, all_: bool, *, fleet_only: dict[str, Any], single_only: dict[str, Any]) -> None:
    """Usage errors for ``--all``: ``fleet_only`` flags (e.g. ``--changed-since``) need it,
    ``single_only`` flags (e.g. ``--function``) exclude it. Values that are None/False are unset."""
    if not all_:
        given = [flag for flag, value in fleet_only.items() if value not in (None, False)]
        if given:
            raise UsageError(f"{command}: {given[0]} needs --all", f"use `lambdaship {command} --all {given[0]} …`")
        return
    given = [flag for flag, value in single_only.items() if value not in (None, False)]
    if given:
        raise UsageError(f"{command}: --all and {given[0]} exclude each other",
                         f"drop {given[0]} (per-function settings belong in the config), or run "
                         f"`lambdaship {command} --function <key>` for one function")


def run_deploy_all(
    project: Path | None,
    *,
    changed_since: str | None,
    workers: int,
    dry_run: bool,
    json_: bool,
    overrides: dict[str, Any] | None = None,
    **options: Any,
) -> int:
    """``lambdaship deploy --all``: print the summary (or JSON); the exit code (1 if any failed).
    ``overrides``: the command's config flags (``--memory`` …), applied to every function."""
    from lambdaship.commands._common import console, emit_json, err_console
    from lambdaship.config import load_project

    check_workers(workers)
    proj = load_project(project, overrides)

    def event(key: str, message: str) -> None:  # stderr, also with --json (CI logs show progress)
        err_console.print(f"[{proj.functions[key].function_name}] {message}", markup=False, highlight=False)

    result = deploy_all(proj, changed_since=changed_since, workers=workers, dry_run=dry_run, on_event=event,
                        **options)
    if json_:
        emit_json(result.to_json())
    else:
        header = ["function", "status", "version", "digest", "reason" if dry_run else "detail"]
        rows = [header, *[list(r) for r in summary_rows(result)]]
        if dry_run:
            rows = [[r[0], r[1], r[4]] for r in rows]
        for line in _table(rows):
            console.print(line, markup=False, highlight=False)
        if not dry_run:
            for line in sharing_lines(result):
                console.print(line, markup=False, highlight=False)
        console.print(totals_line(result), markup=False, highlight=False)
    return 0 if result.ok else 1


def run_status_all(project: Path | None, *, since: str, json_: bool) -> int:
    """``lambdaship status --all``: one table (or JSON) for every function of the project."""
    from lambdaship.commands._common import console, emit_json
    from lambdaship.config import load_project

    window = parse_since(since)
    proj = load_project(project)
    report = status_all(proj, window)
    if json_:
        emit_json(report.to_json())
    else:
        for line in _table(status_rows(report), last_free=False):
            console.print(line, markup=False, highlight=False)
        console.print(
            f"metrics: {report.start:%Y-%m-%d %H:%M}Z → {report.end:%Y-%m-%d %H:%M}Z (CloudWatch AWS/Lambda, "
            "sums over the window; p50/p99 of Duration; max. concurrent executions)",
            markup=False, highlight=False,
        )
        for st in report.functions:
            if st.error:
                console.print(f"{st.function_name}: {st.error}", markup=False, highlight=False)
    return 1 if any(st.error or "Failed" in (st.state, st.last_update_status) for st in report.functions) else 0
