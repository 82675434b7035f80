"""The installer's error, as lambdaship reports it in one line: uv wraps a long cause at COLUMNS."""

from __future__ import annotations

import pytest

from lambdaship.package.installer import last_error_line, unwrapped

CAUSE = ("Because lambdaship-no-such-package-zq was not found in the package registry and you require "
         "lambdaship-no-such-package-zq, we can conclude that your requirements are unsatisfiable.")
PLAIN = f"Using CPython 3.11.7\nerror: No solution found when resolving dependencies\n  cause: {CAUSE}\n"
WRAPPED = """Using CPython 3.11.7
error: No solution found when resolving dependencies
  cause: Because lambdaship-no-such-package-zq was not found in the package
         registry and you require lambdaship-no-such-package-zq, we can conclude
         that your requirements are unsatisfiable.
  hint: check the name
"""
TREE = """  \u00d7 No solution found when resolving dependencies:
  ╰─▶ Because lambdaship-no-such-package-zq was not found in the package
      registry and you require lambdaship-no-such-package-zq, we can conclude
      that your requirements are unsatisfiable.
"""


@pytest.mark.parametrize("stderr", [PLAIN, WRAPPED, "error: No solution found when resolving dependencies\n" + TREE])
def test_the_whole_cause_is_on_the_one_line(stderr: str) -> None:
    assert last_error_line(stderr) == f"No solution found when resolving dependencies: {CAUSE}"


def test_unwrapping_keeps_separate_items_apart() -> None:
    lines = unwrapped(WRAPPED).splitlines()
    assert lines[-1] == "  hint: check the name" and lines[-2].endswith("unsatisfiable.")
