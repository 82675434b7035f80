"""File-system helpers shared by the caches."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

_counter = itertools.count()


def tmp_sibling(dest: Path) -> Path:
    """A temporary path beside ``dest``, unique to this process, thread and call.

    Write it, then ``os.replace`` it onto ``dest``: parallel builds in one process (``deploy
    --all``) share the caches, so a name unique per process only is not enough.
    """
    return dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.{next(_counter)}.tmp")
