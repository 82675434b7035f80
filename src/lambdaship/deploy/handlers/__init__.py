"""Step handlers: one function per plan action, ``(step, params, run) -> output``.

One table for every plan the executor runs: the function's own calls (:mod:`.function`),
packages and checks (:mod:`.artifacts`), and the wiring of triggers (:mod:`.triggers`). A part
that adds step kinds (API Gateway, event sources) adds its handlers to this table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdaship.deploy.handlers import artifacts, function, triggers

Handler = Callable[..., Any]

HANDLERS: dict[str, Handler] = {**function.HANDLERS, **artifacts.HANDLERS, **triggers.HANDLERS}

__all__ = ["HANDLERS", "Handler"]
