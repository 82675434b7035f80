"""``status --all``: every function's state, alias and deployed digest, plus CloudWatch metrics
over a window (:mod:`lambdaship.aws.cloudwatch`)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdaship.config import FunctionConfig, Project
from lambdaship.errors import UsageError
from lambdaship.translate import translate

_SINCE_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_WINDOW = timedelta(days=455)  # CloudWatch keeps metrics for 15 months


def parse_since(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``7d``, ``2w`` → a timedelta."""
    m = _SINCE_RE.match(text or "")
    if not m:
        raise UsageError(f"--since {text!r} is not a duration", "use a number and a unit: 30m, 1h, 7d, 2w")
    delta = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if delta < timedelta(minutes=1) or delta > MAX_WINDOW:
        raise UsageError(f"--since {text}: must be between 1m and 455d")
    return delta


@dataclass
class FunctionStatus:
    key: str
    function_name: str
    exists: bool
    state: str | None = None
    last_update_status: str | None = None
    last_update_reason: str | None = None
    alias: str | None = None
    alias_version: str | None = None
    digest: str | None = None
    repository: str | None = None
    last_modified: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "function": self.function_name, "exists": self.exists, "state": self.state,
            "last_update_status": self.last_update_status, "last_update_reason": self.last_update_reason,
            "alias": self.alias, "alias_version": self.alias_version, "digest": self.digest,
            "repository": self.repository, "last_modified": self.last_modified, "metrics": self.metrics,
            "error": self.error,
        }


@dataclass
class FleetStatus:
    functions: list[FunctionStatus]
    start: datetime
    end: datetime
    percentiles: str = "ExtendedStatistics"

    def to_json(self) -> dict[str, Any]:
        return {
            "window": {"start": self.start.isoformat(), "end": self.end.isoformat(),
                       "seconds": int((self.end - self.start).total_seconds())},
            "functions": [f.to_json() for f in self.functions],
        }


def function_status(fn: FunctionConfig) -> FunctionStatus:
    """State, last update status, alias → version, the alias's image digest, when it was deployed:
    :func:`lambdaship.deploy.status.function_status` (the single-function view), condensed."""
    from lambdaship.deploy import status as single

    info = single.function_status(fn, versions=1, images=False)
    st = FunctionStatus(fn.key, fn.function_name, exists=bool(info["exists"]), alias=fn.alias)
    if not st.exists:
        st.state = "not deployed"
        return st
    target = info.get("alias_target") or {}
    st.state = info.get("state")
    st.last_update_status = info.get("last_update_status")
    st.last_update_reason = info.get("last_update_reason") or info.get("state_reason")
    st.alias_version = target.get("version")
    st.digest = target.get("digest") if target else info.get("latest_digest")
    st.repository = target.get("repository")
    st.last_modified = target.get("deployed_at") or info.get("last_modified")
    return st


def status_all(project: Project, since: timedelta, *, workers: int = 4, now: datetime | None = None) -> FleetStatus:
    """Every function's :func:`function_status` plus its metrics over the last ``since``."""
    from lambdaship.aws import cloudwatch

    fns = list(project.functions.values())
    end, start = cloudwatch.window(since, now=now)

    def one(fn: FunctionConfig) -> FunctionStatus:
        try:
            return function_status(fn)
        except Exception as exc:
            return FunctionStatus(fn.key, fn.function_name, exists=False, state="unknown",
                                  error=translate(exc).one_line())

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(fns)))) as pool:
        metrics_f = pool.submit(cloudwatch.lambda_metrics, [fn.function_name for fn in fns], start, end)
        statuses = list(pool.map(one, fns))
        metrics = metrics_f.result()
    for st in statuses:
        st.metrics = metrics.get(st.function_name, {})
    return FleetStatus(statuses, start, end)


def _ts(text: str | None) -> str:
    if not text:
        return ""
    try:
        dt = datetime.fromisoformat(text.replace("+0000", "+00:00"))
    except ValueError:
        return text
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    return (f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}") + unit


def status_rows(report: FleetStatus) -> list[list[str]]:
    """Rows of the ``status --all`` table (header first)."""
    rows = [["function", "state", "update", "alias → version", "digest", "last modified",
             "invocations", "errors", "throttles", "p50", "p99", "max conc."]]
    for st in report.functions:
        m = st.metrics
        alias = f"{st.alias} → {st.alias_version}" if st.alias_version else (f"{st.alias} → -" if st.exists else "")
        rows.append([
            st.function_name, st.state or "", st.last_update_status or "", alias,
            (st.digest or "")[:19], _ts(st.last_modified),
            _num(m.get("invocations")), _num(m.get("errors")), _num(m.get("throttles")),
            _num(m.get("duration_p50_ms"), " ms"), _num(m.get("duration_p99_ms"), " ms"),
            _num(m.get("concurrent_executions_max")),
        ])
    return rows
