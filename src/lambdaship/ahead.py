"""The base image's layers sent to the push target while the image is still being built.

A cold push spends most of its time installing, compiling and compressing the dependencies;
the base layers (84 MB for the bench's base, more for AWS's) do not depend on any of that. So
``push`` resolves the base and copies its layers into the target repository beside the build
(``oci.push.send_ahead``), and the push after the build takes them as done.

The target may have to be created first (a new ECR repository). When the build fails, the
copy is stopped and a repository created for it is deleted again (only while it holds no
image), so a failed build leaves nothing behind. Any failure of the copy itself is left to
the push, which sends what is missing and reports its own errors.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from lambdaship.image.base import resolve_base, shared_bases

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig
    from lambdaship.oci.push import Ahead

# The push target (creating what it needs) and how to take back what it created (None: nothing).
Target = Callable[[], tuple[str, Callable[[], None] | None]]


class BaseAhead:
    """The copy running beside a build: :meth:`result` waits for it."""

    def __init__(self) -> None:
        self._future: Future[tuple[str, Ahead | None]] = Future()
        self.undo: Callable[[], None] | None = None

    def result(self) -> tuple[str | None, Ahead | None]:
        """(the target, the blobs now in it); (None, None) when the target could not be had:
        the push then asks for it again and reports the error."""
        try:
            return self._future.result()
        except Exception:
            return None, None


@contextlib.contextmanager
def base_ahead(fn: FunctionConfig, target: Target) -> Iterator[BaseAhead]:
    """Inside: the build (its base is resolved once, shared with the copy). An error from the
    block stops the copy and undoes what ``target`` created before it propagates."""
    stop = threading.Event()
    with shared_bases(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambdaship-ahead") as pool:
        handle = BaseAhead()

        def run() -> tuple[str, Ahead | None]:
            where, handle.undo = target()
            from lambdaship.registries import send_ahead

            try:
                base = resolve_base(fn.image_base, fn.architecture)
                return where, send_ahead([lay for lay in base.layers if lay.source is not None], where, stop)
            except Exception:  # the build reports a base it cannot resolve, the push what it cannot send
                return where, None

        handle._future = pool.submit(contextvars.copy_context().run, run)
        try:
            yield handle
        except BaseException:
            stop.set()
            with contextlib.suppress(Exception):
                handle._future.result()
            if handle.undo is not None:
                with contextlib.suppress(Exception):
                    handle.undo()
            raise
