"""Renders ``oci.push.PushEvent``s: rich progress bars on a terminal, one plain line per blob
otherwise. Counts the bytes actually sent apart from those skipped (already present) and
mounted (issue #20: the old total counted skipped and mounted layers as sent)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:  # not at start-up: oci.push imports httpx (~90 ms)
    from lambdaship.oci.push import PushEvent

LABEL = {"upload": "uploaded", "stream": "copied", "mount": "mounted", "skip": "present"}


def size_text(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


class PushRenderer:
    """A ``PushEvent`` sink (call it with each event); use as a context manager around the push."""

    def __init__(self, console: Console, *, tty: bool, enabled: bool = True) -> None:
        self.console, self.tty, self.enabled = console, tty, enabled
        self.sent_bytes = self.skipped_bytes = self.mounted_bytes = 0
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._total: Any = None
        self._to_send = 0
        self._done: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> PushRenderer:
        if self.enabled and self.tty:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                      TransferSpeedColumn(), console=self.console, transient=False)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: PushEvent) -> None:
        with self._lock:
            if event.kind == "blob":
                self._count(event)
            if self.enabled:
                (self._rich if self._progress is not None else self._plain)(event)

    def _count(self, event: PushEvent) -> None:
        if event.how in ("upload", "stream"):
            self.sent_bytes += event.bytes_done
        elif event.how == "skip":
            self.skipped_bytes += event.bytes_total
        elif event.how == "mount":
            self.mounted_bytes += event.bytes_total

    def _rich(self, event: PushEvent) -> None:
        p = self._progress
        if event.kind == "start":
            # "to send": shrinks as blobs turn out to be present or mountable.
            self._to_send = event.bytes_total
            self._total = p.add_task("to send", total=self._to_send)
        elif event.kind == "progress":
            task = self._tasks.get(event.digest)
            if task is None:
                task = self._tasks[event.digest] = p.add_task(
                    f"{event.role} {event.digest[7:19]}", total=event.bytes_total)
            p.update(task, completed=event.bytes_done)
            self._update_total(event.digest, event.bytes_done)
        elif event.kind == "blob" and event.how in ("skip", "mount"):
            self._to_send = max(0, self._to_send - event.bytes_total)
            if self._total is not None:
                p.update(self._total, total=self._to_send)
            p.console.log(f"{LABEL[event.how]:<8} {event.role} {event.digest[:19]} "
                          f"({size_text(event.bytes_total)}, not sent)")
        elif event.kind == "blob":
            task = self._tasks.get(event.digest)
            if task is not None:
                p.update(task, completed=event.bytes_total)
            self._update_total(event.digest, event.bytes_total)

    def _update_total(self, digest: str, done: int) -> None:
        self._done[digest] = done
        if self._total is not None:
            self._progress.update(self._total, completed=sum(self._done.values()))

    def _plain(self, event: PushEvent) -> None:
        if event.kind == "progress":
            self._started.setdefault(event.digest, time.monotonic())
        elif event.kind == "blob":
            took = time.monotonic() - self._started.pop(event.digest, time.monotonic())
            if event.how in ("upload", "stream"):
                when = "while the image was built" if event.ahead else f"in {took:.1f} s"
                detail = f"{size_text(event.bytes_done)} sent {when}"
            else:
                detail = f"{size_text(event.bytes_total)}, not sent"
            self.console.print(f"{LABEL[event.how or 'upload']:<8} {event.role} {event.digest[:19]} ({detail})",
                               highlight=False)
        elif event.kind == "manifest":
            self.console.print(f"tagged   {event.tag} → {event.digest[:19]}", highlight=False)
