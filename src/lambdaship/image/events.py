"""Progress of a build as values: ``build_image`` emits ``BuildEvent``s, a front end renders them.

The library never prints. A caller passes a sink (``progress=callable``); ``progress=True`` sends
the events to the default sink a front end registered with :func:`set_default_sink` (the CLI
does at start), so code between the command and the builder only passes a flag along.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BuildEvent:
    """``stage``: "resolve" (base image + dependencies), "layers", "fetch" (base blobs for --out/--tar)
    when it starts, "done" at the end (``bytes``: the image's compressed size, ``seconds``: the build)."""

    stage: str
    detail: str
    bytes: int = 0
    seconds: float = 0.0


BuildSink = Callable[[BuildEvent], None]
_default: BuildSink | None = None


def set_default_sink(sink: BuildSink | None) -> None:
    global _default
    _default = sink


def sink_for(progress: bool | BuildSink | None) -> BuildSink:
    """The sink for a ``progress`` argument: the callable itself, the default sink for True, else none."""
    if callable(progress):
        return progress
    if progress and _default is not None:
        return _default
    return lambda _event: None
