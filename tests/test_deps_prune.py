"""Packages' bundled test suites are left out of Lambda dependency trees, unless imported."""

from __future__ import annotations

from pathlib import Path

from lambdaship.package import prune


def _write(root: Path, rel: str, text: str = "") -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_unreferenced_test_suites_are_removed_referenced_ones_kept(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _write(tree, "pkg/__init__.py", "from pkg import core\n")
    _write(tree, "pkg/core.py", "X = 1\n")
    _write(tree, "pkg/tests/__init__.py")
    _write(tree, "pkg/tests/test_core.py", "from pkg import core\n")
    _write(tree, "pkg/sub/__init__.py")
    _write(tree, "pkg/sub/tests/test_sub.py")
    _write(tree, "pkg/testing.py", "from pkg.kept.tests._helpers import NA\n")  # runtime import of a test module
    _write(tree, "pkg/kept/__init__.py")
    _write(tree, "pkg/kept/tests/_helpers.py", "NA = None\n")
    _write(tree, "pkg/rel/__init__.py", "from .test import fixture\n")  # relative import keeps it
    _write(tree, "pkg/rel/test/__init__.py", "fixture = 1\n")
    _write(tree, "tests/__init__.py")  # a top-level distribution named tests: not a bundled suite
    _write(tree, "data/tests/x.txt")  # not inside a Python package
    _write(tree, "pkg-1.0.dist-info/RECORD",
            "pkg/__init__.py,,\npkg/tests/__init__.py,,\npkg/tests/test_core.py,,\npkg/core.py,,\n")

    removed = prune.prune_tests(tree)

    assert sorted(removed) == ["pkg/sub/tests/", "pkg/tests/"]
    assert not (tree / "pkg" / "tests").exists() and not (tree / "pkg" / "sub" / "tests").exists()
    assert (tree / "pkg" / "kept" / "tests" / "_helpers.py").is_file()
    assert (tree / "pkg" / "rel" / "test" / "__init__.py").is_file()
    assert (tree / "tests" / "__init__.py").is_file() and (tree / "data" / "tests" / "x.txt").is_file()
    assert (tree / "pkg-1.0.dist-info" / "RECORD").read_text() == "pkg/__init__.py,,\npkg/core.py,,\n"


def test_keep_tests_switch_changes_the_cache_key(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert prune.prune_tests_enabled()
    monkeypatch.setenv("LAMBDASHIP_KEEP_TESTS", "1")
    assert not prune.prune_tests_enabled()
