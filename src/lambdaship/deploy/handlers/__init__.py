"""Step handlers: one function per plan action, ``(step, params, run) -> output``.

One table for every plan the executor runs: the function's own calls (:mod:`.function`),
packages and checks (:mod:`.artifacts`), and the wiring of triggers (:mod:`.triggers`). A part
that adds step kinds adds its handlers to this table; a part whose steps reuse AWS action names
with other semantics namespaces them and registers one ``<namespace>:*`` handler (the app's API,
extra functions and triggers: ``api:*`` → :func:`lambdaship.api.handlers.run_step`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdaship.deploy.handlers import artifacts, function, triggers

Handler = Callable[..., Any]

HANDLERS: dict[str, Handler] = {**function.HANDLERS, **artifacts.HANDLERS, **triggers.HANDLERS}


def register(key: str, handler: Handler) -> None:
    """Add a part's handler (``"<namespace>:*"`` for a namespace) without this package importing it."""
    HANDLERS[key] = handler

__all__ = ["HANDLERS", "Handler", "register"]
