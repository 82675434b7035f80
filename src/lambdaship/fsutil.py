"""File-system helpers shared by the caches."""

from __future__ import annotations

import fcntl
import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_counter = itertools.count()
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def tmp_sibling(dest: Path) -> Path:
    """A temporary path beside ``dest``, unique to this process, thread and call.

    Write it, then ``os.replace`` it onto ``dest``: parallel builds in one process (``deploy
    --all``) share the caches, so a name unique per process only is not enough.
    """
    return dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.{next(_counter)}.tmp")


@contextmanager
def entry_lock(lock_file: Path) -> Iterator[None]:
    """Hold one cache entry alone: the threads of this process on a lock of ``lock_file``'s path,
    other processes on an ``flock`` of that file (created if missing, left in place: removing a
    lock file races with its next user). The caller checks the entry, takes this lock, checks
    again, and only then makes the entry: a concurrent maker waits, then finds it made."""
    key = os.path.abspath(lock_file)
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock
