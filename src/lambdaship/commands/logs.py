"""``lambdaship logs [--follow] [--since 10m] [--filter PATTERN]``: CloudWatch Logs of the function."""

from __future__ import annotations

import re
import time
from typing import Any

import typer

from lambdaship.commands._common import JsonOpt, emit_json
from lambdaship.commands.options import ProjectFlags, with_options
from lambdaship.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> int:
    """``90s``, ``10m``, ``2h``, ``1d``, ``1w`` or an ISO 8601 time → epoch milliseconds."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if m:
        return int((now - int(m.group(1)) * _UNITS[m.group(2)]) * 1000)
    from datetime import UTC, datetime

    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r} is not a duration or a time",
                         "use e.g. 10m, 2h, 1d or 2024-05-01T12:00:00") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _line(ev: dict) -> str:
    from datetime import UTC, datetime

    ts = datetime.fromtimestamp(ev["timestamp"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{ts} {ev.get('logStreamName', '')} {ev.get('message', '').rstrip()}"


def register(app: typer.Typer) -> None:
    @app.command("logs")
    @with_options
    def logs(
        where: ProjectFlags = ProjectFlags(),
        since: str = typer.Option("10m", "--since", help="How far back: 90s, 10m, 2h, 1d, or an ISO time."),
        filter_: str | None = typer.Option(None, "--filter", help="A CloudWatch Logs filter pattern.",
                                           show_default=False),
        follow: bool = typer.Option(False, "--follow", help="Keep polling for new events (Ctrl-C stops)."),
        interval: float = typer.Option(2.0, "--interval", help="Seconds between polls with --follow."),
        json_: bool = JsonOpt,
    ) -> None:
        """Print the function's log events (group /aws/lambda/<name>), oldest first."""
        from lambdaship.aws import logs as cwlogs
        from lambdaship.errors import LambdashipError

        _, fn = where.load()
        group = cwlogs.group_for(fn.function_name)
        start = parse_since(since)
        if not follow and not cwlogs.group_exists(group):
            raise LambdashipError(f"log group {group} does not exist",
                                  "the function has not logged anything yet (or is not deployed)")
        seen: set[str] = set()
        collected: list[dict[str, Any]] = []
        try:
            _poll(cwlogs, group, start, filter_, follow, interval, json_, seen, collected)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
        if json_ and not follow:
            emit_json({"function": fn.function_name, "log_group": group, "events": collected})


def _poll(
    cwlogs: Any, group: str, start: int, pattern: str | None, follow: bool, interval: float, json_: bool,
    seen: set[str], collected: list[dict[str, Any]],
) -> None:
    """Print (or collect) new events; with ``follow`` poll forever from the newest timestamp seen."""
    import json

    while True:
        latest = start
        if cwlogs.group_exists(group):
            for ev in cwlogs.filter_events(group, start_ms=start, pattern=pattern):
                key = ev.get("eventId") or f"{ev['timestamp']}|{ev.get('logStreamName')}|{ev.get('message')}"
                if key in seen:
                    continue
                seen.add(key)
                latest = max(latest, ev["timestamp"])
                record = {"timestamp": ev["timestamp"], "stream": ev.get("logStreamName"),
                          "message": ev.get("message", "")}
                if json_ and not follow:
                    collected.append(record)
                elif json_:
                    typer.echo(json.dumps(record))  # --follow --json: one JSON object per line
                else:
                    typer.echo(_line(ev))
        if not follow:
            return
        start = latest  # events at the same millisecond are de-duplicated by id
        time.sleep(interval)
