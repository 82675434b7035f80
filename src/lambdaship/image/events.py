"""Progress of a build as values: ``build_image`` emits ``BuildEvent``s, a front end renders them.

The library never prints. A caller passes a sink (``progress=callable``); ``progress=True`` sends
the events to the default sink a front end registered with :func:`set_default_sink` (the CLI
does at start), so code between the command and the builder only passes a flag along.

A stage is announced when it starts (``phase="start"``) and reported when it ends
(``phase="end"``, with its duration and what it produced); a stage that is skipped (a cache hit)
sends only its end. Stages, in build order (``STAGES``): ``base`` (the base image's manifest and
config), ``deps`` (the dependency set came from the cache or a previous image: nothing to
install), ``resolve`` / ``download`` / ``install`` (the installer's phases; ``count`` packages,
``bytes`` the installed tree), ``bytecode`` (``bytes`` of .pyc written), ``compress`` (one per
layer, ``item`` names it: ``bytes_in`` uncompressed, ``bytes`` compressed), ``fetch`` (base
blobs for ``--out``/``--tar``), and ``done`` (``bytes``: the image's compressed size,
``seconds``: the whole build). Sinks may be called from several threads at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

STAGES = ("base", "deps", "resolve", "download", "install", "bytecode", "compress", "fetch", "done")


@dataclass(frozen=True)
class BuildEvent:
    """One stage starting or ending; see the module's docstring for the stages and their fields."""

    stage: str
    detail: str = ""
    bytes: int = 0
    seconds: float = 0.0
    phase: str = "end"  # "start" | "end"
    count: int = 0  # packages (resolve, download, install, deps)
    bytes_in: int = 0  # compress: bytes before compression
    item: str = ""  # which one of a stage that runs more than once (compress: the layer's name)


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


@dataclass
class Stage:
    """What :func:`stage` reports when the block ends: set ``count``/``bytes``/``bytes_in``/``detail``."""

    count: int = 0
    bytes: int = 0
    bytes_in: int = 0
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def stage(emit: BuildSink, name: str, detail: str = "", item: str = "") -> Iterator[Stage]:
    """Announce stage ``name``, run the block, report its end with the seconds it took and what
    the block put into the yielded :class:`Stage`. A block that raises reports no end."""
    emit(BuildEvent(name, detail, phase="start", item=item))
    t0 = time.monotonic()
    result = Stage(detail=detail)
    yield result
    emit(BuildEvent(name, result.detail, result.bytes, time.monotonic() - t0, "end", result.count,
                    result.bytes_in, item))


def adapter(emit: BuildSink) -> Callable[..., None]:
    """A keyword-argument callback (what ``package.deps.install(progress=…)`` calls, since
    ``package`` does not import ``image``) that sends ``BuildEvent(**kwargs)`` to ``emit``."""
    def report(**fields: Any) -> None:
        emit(BuildEvent(**fields))
    return report
