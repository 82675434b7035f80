"""``lambdaship.shared.Shared``: within a scope one load per key, shared by the threads that copy
the context; errors are not remembered; outside a scope every call loads."""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lambdaship.shared import Shared


def test_one_load_per_key_across_threads() -> None:
    memo: Shared[list[int]] = Shared("t1", copy=list)
    loads: list[str] = []
    gate = threading.Event()

    def load() -> list[int]:
        loads.append("x")
        gate.wait(5)  # the others arrive while the first is still asking
        return [1, 2]

    with memo.scope(), ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(contextvars.copy_context().run, memo.get, "k", load) for _ in range(4)]
        time.sleep(0.2)
        gate.set()
        answers = [f.result() for f in futures]
        assert memo.get("other", lambda: [3]) == [3]
    assert loads == ["x"]
    assert answers == [[1, 2]] * 4
    assert len({id(a) for a in answers}) == 4  # each caller its own copy


def test_an_error_is_not_remembered() -> None:
    memo: Shared[int] = Shared("t2")
    calls = {"n": 0}

    def flaky() -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first")
        return 7

    with memo.scope():
        with pytest.raises(RuntimeError):
            memo.get("k", flaky)
        assert memo.get("k", flaky) == 7
        assert memo.get("k", flaky) == 7
    assert calls["n"] == 2


def test_outside_a_scope_every_call_loads_and_inner_scopes_share_the_outer() -> None:
    memo: Shared[int] = Shared("t3")
    calls = {"n": 0}

    def load() -> int:
        calls["n"] += 1
        return calls["n"]

    assert memo.get("k", load) == 1 and memo.get("k", load) == 2
    with memo.scope():
        first = memo.get("k", load)
        with memo.scope():
            assert memo.get("k", load) == first
    with memo.scope():
        assert memo.get("k", load) == first + 1  # a new scope asks again
