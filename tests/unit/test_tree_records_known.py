"""The dependency tree's records reuse the digests the RECORD check just computed (a cold install
read 141 MB twice), only for files that are still the files that were read: a file replaced or
rewritten after the check is read again, so the cache entry's digest is always its content's."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from lambdaship import cacheverify
from lambdaship.package import records


def _wheel_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    files = {"pkg/__init__.py": b"x = 1\n", "pkg/data.bin": os.urandom(4096), "pkg/sub/mod.py": b"y = 2\n"}
    rows = []
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
        b64 = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{rel},sha256={b64},{len(data)}")
    info = tree / "pkg-1.0.dist-info"
    info.mkdir()
    rows.append("pkg-1.0.dist-info/RECORD,,")
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return tree


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    read: list[str] = []
    real = cacheverify.file_sha256

    def counted(path: Path) -> str:
        read.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(cacheverify, "file_sha256", counted)
    return read


def test_checked_files_are_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _wheel_tree(tmp_path)
    seen: cacheverify.Known = {}
    assert records.mismatches(tree, seen) == set()
    assert set(seen) == {"pkg/__init__.py", "pkg/data.bin", "pkg/sub/mod.py"}
    read = _counting(monkeypatch)
    with_known = dict(cacheverify.tree_records(tree, seen))
    assert read == ["RECORD"]  # the only file the check did not hash
    assert with_known == dict(cacheverify.tree_records(tree))  # the same records as reading it all


def test_a_file_replaced_after_the_check_is_read_again(tmp_path: Path) -> None:
    tree = _wheel_tree(tmp_path)
    seen: cacheverify.Known = {}
    records.mismatches(tree, seen)
    target = tree / "pkg" / "data.bin"
    new = tmp_path / "other"
    new.write_bytes(os.urandom(4096))  # same size, another inode
    os.replace(new, target)
    got = dict(cacheverify.tree_records(tree, seen))["pkg/data.bin"]
    assert got.endswith(hashlib.sha256(target.read_bytes()).digest())


def test_a_file_rewritten_in_place_after_the_check_is_read_again(tmp_path: Path) -> None:
    tree = _wheel_tree(tmp_path)
    seen: cacheverify.Known = {}
    records.mismatches(tree, seen)
    target = tree / "pkg" / "sub" / "mod.py"
    st = target.stat()
    target.write_bytes(b"y = 3\n")  # same inode, same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    got = dict(cacheverify.tree_records(tree, seen))["pkg/sub/mod.py"]
    assert got.endswith(hashlib.sha256(b"y = 3\n").digest())
