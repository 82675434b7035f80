"""prune's scan for imports of bundled test suites: the str.find scan finds exactly the lines the
line pattern finds, in the same order (it only skips the lines that cannot match)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdaship.package.prune import _TEST_IMPORT_LINE, _test_import_lines

WORDS = ["import", "from", "tests", "test", "testing", "pytest", "#", " ", ".", "pkg", "\n", "\r", "_", "x",
         "(", ")", "as"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=60).map("".join))
def test_same_lines_as_the_pattern(text: str) -> None:
    assert _test_import_lines(text) == _TEST_IMPORT_LINE.findall(text)


def test_known_cases() -> None:
    text = ("import numpy\nfrom pandas import tests\n# from x import tests\nx = 1  # import tests\n"
            "from .tests import helper\nraise E from test_error\nfrom pandas.tests.io import a")
    assert _test_import_lines(text) == ["from pandas import tests", "from .tests import helper",
                                        "from pandas.tests.io import a"]
    assert _test_import_lines(text) == _TEST_IMPORT_LINE.findall(text)
