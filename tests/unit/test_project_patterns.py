"""The app's include/exclude patterns, compiled once per pattern set, decide as fnmatch does
pattern by pattern (the rule they replaced): checked on the default excludes and on generated
paths and patterns."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdaship.project import DEFAULT_EXCLUDES, _matches, matches_within


def reference(rel: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """One fnmatch per pattern: a pattern with "/" against the path (with and without its
    "**/" parts), another against the last component."""
    name = rel.rsplit("/", 1)[-1]
    for pat in patterns:
        pat = pat.strip().rstrip("/")
        if not pat:
            continue
        if "/" in pat:
            pat = pat.lstrip("/").removeprefix("./")
            if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(rel, pat.replace("**/", "")):
                return True
        elif fnmatch.fnmatchcase(name, pat):
            return True
    return False


SAMPLES = [
    ".env", ".env.prod", "app/.env.local", "config/prod.env", ".git", "src/.git/config", "id_rsa", "id_rsa.pub",
    "keys/server.pem", "a/b/.docker/config.json", ".docker/config.json", "tests", "pkg/tests/test_x.py",
    "app.py", "chalicelib/util.py", "__pycache__/x.cpython-311.pyc", "lambdaship.toml", "x.tfstate.backup",
    "terraform.tfstate.1", ".chalice/deployments/x.json", ".chalice/config.json", "node_modules/a/b.js",
    "APP.PY", "Tests", ".ENV", "",
]


def test_the_default_excludes_decide_as_fnmatch_did() -> None:
    for rel in SAMPLES:
        assert _matches(rel, DEFAULT_EXCLUDES) == reference(rel, DEFAULT_EXCLUDES), rel
    assert _matches(".env.prod", DEFAULT_EXCLUDES) and not _matches("app.py", DEFAULT_EXCLUDES)
    assert _matches("a/b/.docker/config.json", DEFAULT_EXCLUDES)
    assert not _matches(".ENV", DEFAULT_EXCLUDES)  # case-sensitive, as fnmatchcase


def test_a_directory_above_counts() -> None:
    assert matches_within("pkg/tests/test_x.py", DEFAULT_EXCLUDES)
    assert matches_within(".chalice/deployments/a/b.json", DEFAULT_EXCLUDES)
    assert not matches_within("chalicelib/testing.py", DEFAULT_EXCLUDES)


segment = st.text(alphabet="ab.*?[]!-_/", min_size=0, max_size=6)
path = st.lists(st.text(alphabet="ab.-_", min_size=1, max_size=5), min_size=1, max_size=4).map("/".join)


@settings(max_examples=400, deadline=None)
@given(rel=path, patterns=st.lists(segment.map(lambda s: s.replace("//", "/")), max_size=5))
def test_generated_patterns_decide_as_fnmatch(rel: str, patterns: list[str]) -> None:
    try:
        expected = reference(rel, patterns)
    except Exception:  # a pattern fnmatch itself cannot translate is not a case
        return
    assert _matches(rel, patterns) == expected, (rel, patterns)
