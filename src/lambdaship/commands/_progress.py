"""Renders a build's ``BuildEvent``s (``lambdaship.image.events``): on a terminal a row per ended
stage (a check mark, its duration, what it produced) above a live area of the stages still
running (a spinner and the time so far); elsewhere (CI logs, pipes) one plain line per stage when it ends, with
its duration and bytes, and a summary line when the build is done::

    base         0.2 s  public.ecr.aws/lambda/python:3.12 (188.1 MB)
    resolve      0.5 s  3 packages
    download     0.6 s  3 packages (numpy 15.8MiB)
    install      0.3 s  3 packages, 56.0 MB
    bytecode     1.2 s  5.4 MB of .pyc (Python 3.12)
    compress     0.0 s  app: 5.6 kB → 535 B
    compress     0.1 s  deps: 654.3 kB → 144.5 kB
    compress     1.0 s  deps numpy: 61.5 MB → 19.9 MB
    built        3.7 s  sha256:2ab3383d97b0…: 3 packages, 62.2 MB → 20.1 MB compressed; image 208.2 MB

:func:`stage_line` is the same line for stages outside a build, and :class:`StepLines` prints a
deploy's steps with it (waiting for Lambda included), so a CI log reads as one list.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from rich.console import Console
from rich.text import Text

from lambdaship.commands._push_progress import size_text
from lambdaship.image.events import BuildEvent

LABELS = {"base": "base", "deps": "deps", "resolve": "resolve", "download": "download", "install": "install",
          "bytecode": "bytecode", "compress": "compress", "fetch": "fetch"}
RUNNING = {"base": "resolving the base image", "deps": "dependencies", "resolve": "resolving dependencies",
           "download": "downloading", "install": "installing", "bytecode": "compiling bytecode",
           "compress": "compressing", "fetch": "fetching base layers"}


def stage_line(label: str, seconds: float, what: str) -> str:
    """One stage's line in a CI log: label, duration, what it did."""
    return f"{label:<9} {seconds:6.1f} s  {what}".rstrip()


def describe(event: BuildEvent) -> str:
    """What an ended stage produced, in words."""
    parts: list[str] = []
    if event.stage == "compress":
        name = event.item or "layer"
        return f"{name}: {size_text(event.bytes_in)} → {size_text(event.bytes)}" + (
            f" ({event.detail})" if event.detail else "")
    if event.stage in ("base", "fetch"):  # the reference first, then what its layers weigh
        return f"{event.detail} ({size_text(event.bytes)})" if event.detail else size_text(event.bytes)
    if event.stage in ("resolve", "download", "install", "deps") and (event.count or event.stage != "download"):
        parts.append(f"{event.count} package{'s' if event.count != 1 else ''}")
    if event.bytes:
        parts.append(size_text(event.bytes) + (" of .pyc" if event.stage == "bytecode" else ""))
    text = ", ".join(parts)
    if event.detail:
        text = f"{text} ({event.detail})" if text else event.detail
    return text


class _Summary:
    """What the summary line says, gathered from the ended stages."""

    def __init__(self) -> None:
        self.packages = self.installed = self.raw = self.compressed = 0

    def add(self, event: BuildEvent) -> None:
        if event.stage in ("install", "deps"):
            self.packages = max(self.packages, event.count)
            self.installed = max(self.installed, event.bytes)
        elif event.stage == "compress":
            self.raw += event.bytes_in
            self.compressed += event.bytes

    def line(self, done: BuildEvent) -> str:
        parts = []
        if self.packages:
            parts.append(f"{self.packages} package{'s' if self.packages != 1 else ''}")
        if self.compressed:
            parts.append(f"{size_text(self.raw)} → {size_text(self.compressed)} compressed")
        image = f"image {size_text(done.bytes)}"
        what = f"{', '.join(parts)}; {image}" if parts else image
        return stage_line("built", done.seconds, f"{done.detail[:19]}…: {what}" if done.detail else what)


class BuildRenderer:
    """A ``BuildEvent`` sink for ``console`` (stderr), thread-safe. On a terminal (``tty``): an
    ended stage is printed as a row of its own (check mark, duration, result) and stays; the live
    area below shows only the stages running (spinner, time so far) and disappears when none is,
    so a display never outlives its stages (a zip deploy installs without a build that would end
    it), and nests under a caller's status line. Otherwise: one plain line per ended stage and,
    at ``done``, a summary line."""

    def __init__(self, console: Console, *, tty: bool) -> None:
        self.console, self.tty = console, tty
        self._lock = threading.Lock()
        self._progress: Any = None
        self._tasks: dict[tuple[str, str], Any] = {}
        self._summary = _Summary()

    def __call__(self, event: BuildEvent) -> None:
        with self._lock:
            if event.stage == "done":
                if not self.tty:
                    self.console.print(self._summary.line(event), markup=False, highlight=False)
                self._summary = _Summary()
            elif self.tty:
                self._rich(event)
            elif event.phase == "end":
                self.console.print(stage_line(LABELS.get(event.stage, event.stage), event.seconds, describe(event)),
                                   markup=False, highlight=False)
            if event.phase == "end" and event.stage != "done":
                self._summary.add(event)

    def _rich(self, event: BuildEvent) -> None:
        key = (event.stage, event.item)
        label = LABELS.get(event.stage, event.stage)
        if event.phase == "start":
            if self._progress is None:
                self._start()
            if key not in self._tasks:
                what = f"{RUNNING.get(event.stage, event.stage)} {event.item}".strip() + "…"
                self._tasks[key] = self._progress.add_task(label, total=None, what=what)
            return
        task = self._tasks.pop(key, None)
        if task is not None:
            self._progress.remove_task(task)
        row = Text.assemble(("✓ ", "green"), (f"{label:<9}", "bold"), (f" {event.seconds:6.1f} s  ", "dim"),
                            describe(event), no_wrap=True, overflow="ellipsis")
        self.console.print(row, soft_wrap=False, highlight=False)  # above the live area, for good
        if not self._tasks:
            self._stop()

    def _start(self) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn
        from rich.table import Column

        fixed = {"no_wrap": True, "overflow": "crop"}
        self._progress = Progress(
            SpinnerColumn(table_column=Column(width=1, **fixed)),
            TextColumn("[bold]{task.description}[/bold]", table_column=Column(width=9, **fixed)),
            _took_column()(table_column=Column(width=7, **fixed)),
            TextColumn("{task.fields[what]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            console=self.console, transient=True, expand=True,
        )
        self._progress.start()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    def stop(self) -> None:
        """Stop the display (a build that failed leaves stages running)."""
        with self._lock:
            self._stop()


@functools.cache
def _took_column() -> Any:
    """The duration column's class (rich.progress is imported only when a display starts)."""
    from rich.progress import ProgressColumn

    class Took(ProgressColumn):
        """The time a running stage has taken so far."""

        def render(self, task: Any) -> Text:
            return Text(f"{task.elapsed or 0:6.1f} s")

    return Took


_renderers: dict[int, BuildRenderer] = {}


def renderer_for(console: Console, *, tty: bool) -> BuildRenderer:
    """The one renderer of ``console`` in this process (the CLI's default build sink)."""
    key = id(console)
    if key not in _renderers:
        _renderers[key] = BuildRenderer(console, tty=tty)
    return _renderers[key]


def stop_all() -> None:
    """Stop every live display (before an error line is printed)."""
    for r in list(_renderers.values()):
        r.stop()


class StepLines:
    """A deploy's steps as stage lines outside a terminal: ``reporter(step, ctx)`` for
    ``deploy.pipeline.ship`` (called as each step starts); a step's line is printed when the next
    one starts, or at :meth:`close`, with its duration. ``lambda:Wait`` reads as waiting for Lambda.
    :meth:`close` also prints the summary line (``what``: e.g. the version and :func:`push_summary`)."""

    def __init__(self, console: Console, prefix: str = "") -> None:
        self.console = console
        self.prefix = prefix  # e.g. the region, in a deploy to several regions
        self._current: tuple[str, str, float] | None = None
        self._t0 = time.monotonic()

    def __call__(self, step: Any, _ctx: Any = None) -> None:
        self._flush()
        service, _, operation = str(step.action).partition(":")
        params = getattr(step, "params", {}) or {}
        if step.action == "lambda:Wait":
            label, what = "wait", f"for Lambda ({params.get('Waiter', 'update')} of {params.get('FunctionName', '?')})"
        else:
            label, what = service, operation or service
        self._current = (label, self.prefix + what, time.monotonic())

    def _flush(self) -> None:
        if self._current is not None:
            label, what, t0 = self._current
            self.console.print(stage_line(label, time.monotonic() - t0, what), markup=False, highlight=False)
            self._current = None

    def close(self, label: str | None = None, what: str = "") -> None:
        """The last step's line; with ``label`` the summary line (total seconds since the start)."""
        self._flush()
        if label:
            self.console.print(stage_line(label, time.monotonic() - self._t0, what), markup=False, highlight=False)


def push_summary(pushed: Any) -> str:
    """What a ``PushRenderer`` counted: bytes sent, already present, mounted."""
    return (f"{size_text(pushed.sent_bytes)} sent, {size_text(pushed.skipped_bytes)} already present, "
            f"{size_text(pushed.mounted_bytes)} mounted")


class RegionLines:
    """A deploy to several regions, as it runs: outside a terminal one stage line per step, the
    region first in what it did (``lambda  0.3 s  eu-west-1: UpdateFunctionCode``); on a terminal
    one status line with each region's current step. ``step(region, step, ctx)`` is the reporter."""

    def __init__(self, console: Console, regions: list[str], *, tty: bool, enabled: bool = True) -> None:
        self.console, self.tty, self.enabled = console, tty, enabled
        self._lines = {r: StepLines(console, prefix=f"{r}: ") for r in regions} if enabled and not tty else {}
        self._now = dict.fromkeys(regions, "waiting")
        self._status: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> RegionLines:
        if self.enabled and self.tty:
            self._status = self.console.status(self._text())
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
        for lines in self._lines.values():
            lines.close()

    def _text(self) -> str:
        return "  ".join(f"{r}: {what}" for r, what in self._now.items())

    def done(self, region: str, _outcome: Any = None) -> None:
        """The region finished: its last step's line now, with its own duration."""
        with self._lock:
            self._now[region] = "done"
            lines = self._lines.pop(region, None)
            if lines is not None:
                lines.close()
            if self._status is not None:
                self._status.update(self._text())

    def step(self, region: str, step: Any, ctx: Any = None) -> None:
        with self._lock:
            self._now[region] = f"{str(step.action).split(':', 1)[-1]}…"
            if region in self._lines:
                self._lines[region](step, ctx)
            if self._status is not None:
                self._status.update(self._text())


def region_rows(result: Any) -> list[str]:
    """The summary of a deploy to several regions (``deploy.regions.RegionsResult``): a line, then
    a row per region — its version and alias, the smoke test, what its registry received."""
    n, ok = len(result.regions), len(result.deployed)
    digest = result.digest or ""
    head = (f"deployed {result.function_name} to {ok} of {n} regions" if ok < n
            else f"deployed {result.function_name} to {n} region{'s' if n != 1 else ''}")
    rows = [f"{head} ({digest})" if digest else head]
    width = max(len(r.region) for r in result.regions)
    for r in result.regions:
        cells = [f"{r.region:<{width}}"]
        res = r.result
        if not r.ok:
            cells.append(f"FAILED: {r.error.one_line() if r.error else 'no result'}")
        elif res.function_up_to_date:
            cells.append(f"up to date (alias {result.alias} → version {res.alias_version})")
        else:
            moved = f"{res.previous_version or ''} → {res.alias_version}".lstrip()
            cells.append(f"version {res.version} (alias {result.alias}: {moved})")
            if res.smoke:
                cells.append("smoke test passed")
        push = r.push
        if push is not None:
            total = push.uploaded_blobs + push.skipped_blobs + push.mounted_blobs
            verb = "copied" if r.copied_from else "pushed"
            what = f"{verb} {size_text(push.uploaded_bytes)} ({push.uploaded_blobs} of {total} blobs)"
            if r.copied_from:
                from lambdaship.patterns import ECR_HOST_RE

                host = r.copied_from.split("/", 1)[0]
                m = ECR_HOST_RE.match(host)
                what += f" from {m.group('region') if m else host}"
            cells.append(what)
        cells.append(f"{r.seconds:.1f} s")
        rows.append("  " + "  ".join(cells))
    return rows
