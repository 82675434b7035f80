"""The deterministic layer writer: same files → same bytes, and what Lambda needs in a tar."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from lambdaship.errors import LambdashipError
from lambdaship.image import layer as L


def _tree(root: Path, mtime: int) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "data.bin").write_bytes(bytes(range(256)) * 9000)
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o700)
    (root / "private.txt").write_text("x")
    (root / "private.txt").chmod(0o600)
    long_dir = root / ("d" * 80) / ("e" * 80)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 90 + ".py")).write_text("x = 1\n")
    (root / "link.py").symlink_to("app.py")
    for p in [root, *root.rglob("*")]:
        os.utime(p, (mtime, mtime), follow_symlinks=False)
    return root


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tf:
        return tf.getmembers()


def test_same_files_same_bytes_whatever_the_mtimes_and_directory(tmp_path: Path) -> None:
    a = _tree(tmp_path / "a", 1_600_000_000)
    b = _tree(tmp_path / "elsewhere" / "b", 1_700_000_000)
    da, ba = L.layer_bytes(L.tree_entries(a, "var/task"))
    db, bb = L.layer_bytes(L.tree_entries(b, "var/task"))
    assert da == db
    assert ba == bb


def test_digests_match_the_bytes_and_thread_count_does_not_matter(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    # ~3.5 MiB of mixed content: several compression chunks
    (root / "big.bin").write_bytes(hashlib.sha256(b"seed").digest() * 40000 + bytes(2_300_000))
    (root / "small.txt").write_text("hello\n")
    outs = []
    for threads in (1, 2, 3):
        buf = io.BytesIO()
        blob = L.gzip_stream(L.tar_stream(L.tree_entries(root, "var/task")), buf, threads=threads)
        outs.append((buf.getvalue(), blob))
    data, blob = outs[0]
    assert all(o[0] == data for o in outs)
    raw = gzip.decompress(data)  # a valid gzip stream (CRC and size checked by gzip)
    assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert blob.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert blob.size == len(data)
    assert blob.uncompressed_size == len(raw)
    assert data[:10] == L.GZIP_HEADER  # no mtime, no file name


def test_entries_sorted_with_parents_normalised_owner_modes_and_times(tmp_path: Path) -> None:
    root = _tree(tmp_path / "a", 1_650_000_000)
    data, _ = L.layer_bytes(L.tree_entries(root, "var/task"), mtime=1234)
    members = _members(data)
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert names[:2] == ["var", "var/task"]
    present = set(names)
    for m in members:
        parts = m.name.split("/")
        for i in range(1, len(parts)):
            assert "/".join(parts[:i]) in present, f"parent of {m.name} missing"
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 1234)
        if m.isdir():
            assert m.mode == 0o755
    by = {m.name: m for m in members}
    assert by["var/task/app.py"].mode == 0o644
    assert by["var/task/private.txt"].mode == 0o644
    assert by["var/task/run.sh"].mode == 0o755
    assert by["var/task/link.py"].issym() and by["var/task/link.py"].linkname == "app.py"
    long = [n for n in names if n.endswith("f" * 90 + ".py")]
    assert long and len(long[0]) > 100  # needs a PAX header; tarfile read it back in full


def test_source_date_epoch_sets_the_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.py").write_text("a = 1\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    data, _ = L.layer_bytes(L.tree_entries(root, "var/task"))
    assert {m.mtime for m in _members(data)} == {1_700_000_000}
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    data, _ = L.layer_bytes(L.tree_entries(root, "var/task"))
    assert {m.mtime for m in _members(data)} == {L.DEFAULT_EPOCH}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(LambdashipError, match="SOURCE_DATE_EPOCH"):
        L.source_date_epoch()


def test_symlink_escaping_the_tree_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (tmp_path / "secret").write_text("s")
    (root / "escape").symlink_to("../secret")
    with pytest.raises(LambdashipError, match="points outside the project"):
        L.tree_entries(root, "var/task")
    (root / "escape").unlink()
    (root / "abs").symlink_to("/etc/passwd")
    with pytest.raises(LambdashipError, match="points outside the project"):
        L.tree_entries(root, "var/task")


def test_write_layer_names_the_blob_by_digest(tmp_path: Path) -> None:
    layer = L.write_layer([L.Entry("var/task/a.py", "file", data=b"a = 1\n")], tmp_path / "blobs")
    assert layer.path is not None and layer.path.name == layer.digest.split(":", 1)[1]
    assert hashlib.sha256(layer.path.read_bytes()).hexdigest() == layer.path.name
    assert [p.name for p in (tmp_path / "blobs").iterdir()] == [layer.path.name]  # no temp file left
