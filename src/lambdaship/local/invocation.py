"""One invocation as values: what a runtime process is launched with, what the caller gets back
(as Lambda's Invoke API reports it) and the pending request the Runtime API hands out."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

LogSink = Callable[[str], None]


class Launch(Protocol):
    """One runtime process's command line, from a pool's ``launcher`` (e.g. the sandbox)."""

    argv: list[str]

    def peak_mb(self) -> int | None: ...

    def release(self) -> None: ...


@dataclass
class InvokeResult:
    """The outcome of one invocation, as Lambda's Invoke API would report it."""

    request_id: str
    payload: bytes
    function_error: str | None = None  # "Unhandled" when the function failed
    duration_ms: float = 0.0
    timed_out: bool = False
    init_duration_ms: float | None = None
    logs: list[str] = field(default_factory=list)
    max_memory_mb: int | None = None  # the runtime's peak memory, where the sandbox can measure it

    @property
    def ok(self) -> bool:
        return self.function_error is None

    def json(self) -> Any:
        try:
            return json.loads(self.payload) if self.payload else None
        except ValueError:
            return self.payload.decode("utf-8", "replace")

    @property
    def error(self) -> dict[str, Any] | None:
        if self.ok:
            return None
        data = self.json()
        return data if isinstance(data, dict) else {"errorMessage": str(data), "errorType": "Unknown"}


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    timeout: float
    client_context: str | None = None
    deadline_ms: int = 0
    started: float = 0.0
    result: InvokeResult | None = None
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    logs: list[str] = field(default_factory=list)

    def resolve(self, result: InvokeResult) -> bool:
        with self.lock:
            if self.result is not None:
                return False
            result.logs = self.logs
            self.result = result
        self.done.set()
        return True


def error_payload(message: str, error_type: str, trace: list[str] | None = None) -> bytes:
    body: dict[str, Any] = {"errorMessage": message, "errorType": error_type}
    if trace is not None:
        body["stackTrace"] = trace
    return json.dumps(body).encode()
