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


def test_edited_records_never_write_through_a_hard_link(tmp_path: Path) -> None:
    """Installed trees are hard links into uv's cache: the RECORDs prune edits (bundled tests,
    console scripts) get a new file each, and the cached wheel's copies keep their text."""
    tree, cache = tmp_path / "tree", tmp_path / "uv-cache"
    _write(tree, "pkg/__init__.py")
    _write(tree, "pkg/tests/test_x.py")
    _write(tree, "bin/tool", "#!/bin/sh\n")
    originals = {}
    for name, text in (("pkg-1.0.dist-info", "pkg/__init__.py,,\npkg/tests/test_x.py,,\n"),
                       ("tool-1.0.dist-info", "../../bin/tool,,\ntool.py,,\n")):
        cached = cache / name / "RECORD"
        _write(cache, f"{name}/RECORD", text)
        (tree / name).mkdir()
        (tree / name / "RECORD").hardlink_to(cached)
        originals[cached] = text

    assert prune.prune_tests(tree) == ["pkg/tests/"]
    prune.clean(tree)

    assert (tree / "pkg-1.0.dist-info" / "RECORD").read_text() == "pkg/__init__.py,,\n"
    assert (tree / "tool-1.0.dist-info" / "RECORD").read_text() == "tool.py,,\n"
    for cached, text in originals.items():
        assert cached.read_text() == text
        assert cached.stat().st_nlink == 1
