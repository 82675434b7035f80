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


def extra(name: str, alias_version: str | None, versions: dict[str, str]) -> FunctionState:
    """An extra function of the app (authorizer, event handler): its versions by the digest they run."""
    alias = {"FunctionVersion": alias_version, "RevisionId": f"{name}-rev"} if alias_version else None
    return FunctionState(name=name, function={"Configuration": {}}, alias=alias,
                         versions=tuple(VersionRef(v, "app", d) for v, d in versions.items()))


def test_rollback_moves_the_extra_functions_to_their_version_on_the_same_image() -> None:
    """The authorizer's versions 7 and 8 run the images of the main function's versions 2 and 3."""
    auth = extra("app-auth", "8", {"6": DIGESTS["1"], "7": DIGESTS["2"], "8": DIGESTS["3"]})
    newer = extra("app-new", "1", {"1": DIGESTS["3"]})  # added by the current deploy: nothing to go back to
    there = extra("app-job", "4", {"4": DIGESTS["2"]})  # already on that image
    p = plan_rollback(fn(), replace(state(), extras=(auth, newer, there)))
    assert [(s.action, s.params["FunctionName"], s.params["FunctionVersion"]) for s in p.steps] == [
        ("lambda:UpdateAlias", "app-auth", "7"), ("lambda:UpdateAlias", "app", "2")]
    assert p.steps[0].params["RevisionId"] == "app-auth-rev" and p.steps[0].params["Name"] == fn().alias


def test_zip_extra_functions_match_by_code_sha256() -> None:
    main = tuple(VersionRef(v, code_sha256=f"zip{v}") for v in ("1", "2", "3"))
    auth = FunctionState(name="app-auth", function={"Configuration": {}}, alias={"FunctionVersion": "5"},
                         versions=(VersionRef("4", code_sha256="zip2"), VersionRef("5", code_sha256="zip3")))
    p = plan_rollback(fn(), replace(state(), versions=main, extras=(auth,)))
    moved = [(s.params["FunctionName"], s.params["FunctionVersion"]) for s in p.steps]
    assert moved == [("app-auth", "4"), ("app", "2")]
