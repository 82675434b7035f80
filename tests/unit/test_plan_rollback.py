"""Rollback planning from pure values: which version, which alias description, which refusals."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lambdaship.deploy.markers import history_description
from lambdaship.deploy.plan import plan_rollback, rollback_target
from lambdaship.deploy.state import FunctionState, VersionRef
from lambdaship.errors import LambdashipError, UsageError
from tests.unit.planning import fn

DIGESTS = {str(n): "sha256:" + str(n) * 64 for n in range(1, 5)}


def state(current: str = "3", history: tuple[str, ...] = ("2", "1"), missing: set[str] = frozenset()) -> FunctionState:
    versions = tuple(VersionRef(v, "app", d) for v, d in DIGESTS.items())
    return FunctionState(
        name="app", alias={"FunctionVersion": current, "Description": history_description(list(history)),
                           "RevisionId": "a-rev"},
        versions=versions, missing_images=frozenset(("app", DIGESTS[v]) for v in missing))


def test_rollback_moves_the_alias_to_the_previous_version_and_consumes_the_record() -> None:
    p = plan_rollback(fn(), state())
    assert [s.action for s in p.steps] == ["lambda:UpdateAlias"] and p.kind == "rollback"
    params = p.steps[0].params
    assert (params["FunctionVersion"], params["Description"], params["RevisionId"]) == (
        "2", "lambdaship previous=1", "a-rev")
    assert p.alias_version == "3"


def test_explicit_target_keeps_the_way_back() -> None:
    p = plan_rollback(fn(), state(), "1")
    assert p.steps[0].params["Description"] == "lambdaship previous=3,2"
    assert rollback_target(fn(), state(), DIGESTS["4"][:19]) == "4"


def test_without_a_record_the_highest_lower_version() -> None:
    assert rollback_target(fn(), state(history=()), None) == "2"


def test_refusals() -> None:
    f = fn()
    with pytest.raises(LambdashipError, match="no longer exists"):
        plan_rollback(f, state(missing={"2"}))
    with pytest.raises(UsageError, match="no version 9"):
        plan_rollback(f, state(), "9")
    with pytest.raises(LambdashipError, match="already points at version 3"):
        plan_rollback(f, state(), "3")
    with pytest.raises(LambdashipError, match="no version before 1"):
        plan_rollback(f, state(current="1", history=()))
    with pytest.raises(UsageError, match="neither a version number"):
        plan_rollback(f, state(), "latest!")
    with pytest.raises(LambdashipError, match="does not exist"):
        plan_rollback(f, replace(state(), alias=None))
