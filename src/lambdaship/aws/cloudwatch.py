"""CloudWatch metrics of Lambda functions: namespace ``AWS/Lambda``, dimension ``FunctionName``.

One period covers the whole window (its end rounded up to the minute), so every statistic is one
datapoint per function:

- Invocations, Errors, Throttles (Sum), ConcurrentExecutions (Maximum), Duration (Maximum, and
  Sum / SampleCount for the mean): ``GetMetricData``, up to 500 queries per call, every function
  in one batch.
- Duration p50/p99: ``GetMetricStatistics`` with ``ExtendedStatistics``, one call per function.
  AWS computes percentiles both ways, but moto server (the local stack) answers a
  ``GetMetricData`` percentile query with HTTP 500, while it accepts ``ExtendedStatistics`` and
  returns the datapoint without percentile values: there the percentiles are ``None``.

Sums of a function without datapoints are 0 (Lambda publishes nothing for a quiet function);
maxima, means and percentiles are ``None``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdaship.aws.session import client as _client

NAMESPACE = "AWS/Lambda"
DIMENSION = "FunctionName"
# (key in the result, metric name, statistic)
QUERIES: tuple[tuple[str, str, str], ...] = (
    ("invocations", "Invocations", "Sum"),
    ("errors", "Errors", "Sum"),
    ("throttles", "Throttles", "Sum"),
    ("concurrent_executions_max", "ConcurrentExecutions", "Maximum"),
    ("duration_max_ms", "Duration", "Maximum"),
    ("_duration_sum", "Duration", "Sum"),
    ("_duration_count", "Duration", "SampleCount"),
)
PERCENTILES = ("p50", "p99")
SUMS = {"invocations", "errors", "throttles"}
MAX_QUERIES = 500  # GetMetricData's limit per call


def client() -> Any:
    return _client("cloudwatch")


def period_for(since: timedelta) -> int:
    """The window in seconds, rounded up to what CloudWatch accepts for data that old: a multiple
    of 60 s up to 15 days back, of 300 s up to 63 days, of 3600 s beyond."""
    seconds = max(60, math.ceil(since.total_seconds()))
    step = 60 if since <= timedelta(days=15) else 300 if since <= timedelta(days=63) else 3600
    return int(math.ceil(seconds / step) * step)


def window(since: timedelta, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``(end, start)``: the end is ``now`` rounded up to the minute, ``start = end - period``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    end = now.replace(second=0, microsecond=0)
    if end < now:
        end += timedelta(minutes=1)
    return end, end - timedelta(seconds=period_for(since))


def _combine(stat: str, values: list[float]) -> float | None:
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    return max(values) if stat == "Maximum" else sum(values)


def standard_metrics(function_names: list[str], start: datetime, end: datetime) -> dict[str, dict[str, float | None]]:
    """The non-percentile statistics of :data:`QUERIES` for every function (GetMetricData)."""
    period = int((end - start).total_seconds())
    queries: list[dict[str, Any]] = []
    index: dict[str, tuple[str, str, str]] = {}
    for i, name in enumerate(function_names):
        for j, (key, metric, stat) in enumerate(QUERIES):
            qid = f"f{i}m{j}"
            index[qid] = (name, key, stat)
            queries.append({
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                               "Dimensions": [{"Name": DIMENSION, "Value": name}]},
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            })
    out: dict[str, dict[str, float | None]] = {name: {} for name in function_names}
    cw = client()
    for b in range(0, len(queries), MAX_QUERIES):
        batch = queries[b:b + MAX_QUERIES]
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"MetricDataQueries": batch, "StartTime": start, "EndTime": end}
            if token:
                kw["NextToken"] = token
            resp = cw.get_metric_data(**kw)
            for res in resp.get("MetricDataResults", []):
                name, key, stat = index[res["Id"]]
                value = _combine(stat, res.get("Values", []))
                prev = out[name].get(key)
                if prev is not None and value is not None:
                    value = _combine(stat, [prev, value])
                out[name][key] = value if value is not None else prev
            token = resp.get("NextToken")
            if not token:
                break
    for name in function_names:
        m = out[name]
        for key, _metric, _stat in QUERIES:
            m.setdefault(key, None)
        for key in SUMS:
            if m[key] is None:
                m[key] = 0.0
        total, count = m.pop("_duration_sum"), m.pop("_duration_count")
        m["duration_avg_ms"] = total / count if total is not None and count else None
    return out


def parse_percentiles(datapoints: list[dict[str, Any]]) -> dict[str, float | None]:
    """``{"duration_p50_ms": …, "duration_p99_ms": …}`` from GetMetricStatistics datapoints; when
    the window spans several datapoints the highest value is kept."""
    out: dict[str, float | None] = {}
    for p in PERCENTILES:
        values = [float(dp["ExtendedStatistics"][p]) for dp in datapoints
                  if p in (dp.get("ExtendedStatistics") or {})]
        out[f"duration_{p}_ms"] = max(values) if values else None
    return out


def duration_percentiles(function_name: str, start: datetime, end: datetime, cw: Any = None) -> dict[str, float | None]:
    resp = (cw or client()).get_metric_statistics(
        Namespace=NAMESPACE, MetricName="Duration",
        Dimensions=[{"Name": DIMENSION, "Value": function_name}],
        StartTime=start, EndTime=end, Period=int((end - start).total_seconds()),
        ExtendedStatistics=list(PERCENTILES),
    )
    return parse_percentiles(resp.get("Datapoints", []))


def lambda_metrics(
    function_names: list[str], start: datetime, end: datetime, *, workers: int = 4
) -> dict[str, dict[str, float | None]]:
    """Per function: invocations, errors, throttles, concurrent_executions_max, duration_avg_ms,
    duration_max_ms, duration_p50_ms, duration_p99_ms over ``[start, end)``."""
    if not function_names:
        return {}
    out = standard_metrics(function_names, start, end)
    cw = client()
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(function_names)))) as pool:
        for name, pct in zip(function_names, pool.map(lambda n: duration_percentiles(n, start, end, cw),
                                                      function_names), strict=True):
            out[name].update(pct)
    return out
