"""Answers shared within a scope: inside ``with memo.scope():`` the first caller of a key asks,
the others (threads that copied the context too) wait for that answer instead of asking again.
An error is not remembered: the next caller asks again. Outside a scope every call asks.

Used where one command asks the same read-only question many times: a deploy's planning reads
the function once (``aws.lambda_.shared_reads``), a fleet resolves its base image's tag once
(``image.base.shared_bases``: every function of the run gets the same digest).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    """A scoped single-flight memo; ``copy`` gives each caller its own copy of a mutable answer."""

    def __init__(self, name: str, copy: Callable[[T], T] | None = None) -> None:
        self._var: contextvars.ContextVar[dict[Hashable, Future[T]] | None] = contextvars.ContextVar(
            name, default=None)
        self._lock = threading.Lock()
        self._copy = copy

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Answers are shared within this block; a block inside another shares the outer one's."""
        token = self._var.set({}) if self._var.get() is None else None
        try:
            yield
        finally:
            if token is not None:
                self._var.reset(token)

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        memo = self._var.get()
        if memo is None:
            return load()
        with self._lock:
            pending = memo.get(key)
            mine = pending is None
            if pending is None:
                pending = memo[key] = Future()
        if mine:
            try:
                pending.set_result(load())
            except BaseException as exc:
                with self._lock:
                    memo.pop(key, None)  # the next caller asks again
                pending.set_exception(exc)
                raise
        answer = pending.result()
        return self._copy(answer) if self._copy is not None else answer
