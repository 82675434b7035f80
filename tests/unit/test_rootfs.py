"""rootfs.apply_layer without a server: the tar reader it feeds tarfile, member data read straight
from the stream, times and modes, tar formats."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from lambdaship.errors import LambdashipError
from lambdaship.local import rootfs
from lambdaship.local.rootfs import apply_layer, resolve_inside


def layer(tmp: Path, members: list[tuple[str, str, bytes | str]], *, fmt: int = tarfile.PAX_FORMAT,
          compress: bool = True, mtime: float = 1_234_567_890.5) -> Path:
    """(name, kind, data-or-link) members: kind is file, dir, symlink or hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = 0o644, mtime
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                assert isinstance(data, str)
                info.linkname = data
            tf.addfile(info)
    out = tmp / ("layer.tar.gz" if compress else "layer.tar")
    out.write_bytes(gzip.compress(buf.getvalue(), mtime=0) if compress else buf.getvalue())
    return out


def test_small_and_large_files_keep_their_content_mode_and_mtime(tmp_path: Path) -> None:
    """Every file gets the member's mtime (small ones too: .pyc files in an image are checked
    against their source's mtime) and its mode."""
    big = os.urandom(3 * rootfs.CHUNK + 12345)
    blob = layer(tmp_path, [("usr", "dir", b""), ("usr/small.py", "file", b"x = 1\n"), ("usr/big.bin", "file", big),
                            ("usr/empty", "file", b"")])
    root = tmp_path / "root"
    apply_layer(blob, root)
    assert (root / "usr/small.py").read_bytes() == b"x = 1\n"
    assert (root / "usr/big.bin").read_bytes() == big
    assert (root / "usr/empty").read_bytes() == b""
    for name in ("usr/small.py", "usr/big.bin", "usr/empty"):
        st = (root / name).stat()
        assert st.st_mtime == pytest.approx(1_234_567_890.5, abs=1e-3), name
        assert st.st_mode & 0o7777 == 0o644, name


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("compress", [True, False])
def test_long_names_links_and_formats(tmp_path: Path, fmt: int, compress: bool) -> None:
    deep = "/".join(["d" * 30] * 3)  # 92 characters: USTAR splits it into prefix and name
    ustar = fmt == tarfile.USTAR_FORMAT
    name = f"{deep}/f.txt" if ustar else f"{deep}/{'f' * 60}.txt"
    hard = "opt/short" if ustar else "opt/" + name  # a USTAR link name has at most 100 characters
    blob = layer(tmp_path, [("opt", "dir", b""), *[("opt/" + "/".join(["d" * 30] * i), "dir", b"") for i in (1, 2, 3)],
                            ("opt/" + name, "file", b"deep\n"), ("opt/link", "symlink", name),
                            ("opt/short", "file", b"deep\n"), ("opt/hard", "hardlink", hard)],
                 fmt=fmt, compress=compress)
    root = tmp_path / "root"
    diff_id = apply_layer(blob, root)
    assert diff_id.startswith("sha256:")
    assert (root / "opt" / name).read_text() == "deep\n"
    assert os.readlink(root / "opt/link") == name and (root / "opt/link").read_text() == "deep\n"
    assert (root / "opt/hard").stat().st_ino == (root / hard).stat().st_ino


def test_a_truncated_layer_is_corrupt_in_one_line(tmp_path: Path) -> None:
    blob = layer(tmp_path, [("big", "file", os.urandom(100_000))], compress=False)
    blob.write_bytes(blob.read_bytes()[:50_000])
    with pytest.raises(LambdashipError) as exc:
        apply_layer(blob, tmp_path / "root")
    assert "is corrupt" in str(exc.value) and "\n" not in str(exc.value)


def test_the_tar_reader_reads_across_chunks_and_only_seeks_forward() -> None:
    data = bytes(range(256)) * 20_000
    reader = rootfs._Tar(io.BytesIO(data))
    assert reader.read(512) == data[:512] and reader.tell() == 512
    reader.seek(rootfs.CHUNK - 10)
    assert reader.read(30) == data[rootfs.CHUNK - 10:rootfs.CHUNK + 20]  # spans two chunks
    assert reader.read(3 * rootfs.CHUNK) == data[rootfs.CHUNK + 20:4 * rootfs.CHUNK + 20]
    with pytest.raises(tarfile.ReadError):
        reader.seek(100)
    reader.drain()
    assert reader.tell() == len(data) and reader.read(10) == b""
    import hashlib

    assert reader.digest() == "sha256:" + hashlib.sha256(data).hexdigest()


def test_resolve_inside_keeps_every_link_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    os.symlink("usr/bin", root / "bin")
    os.symlink("/../../etc", root / "up")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    assert resolve_inside(root, "bin/python") == "usr/bin/python"
    assert resolve_inside(str(root), "up/passwd") == "etc/passwd"
    assert resolve_inside(root, "../../bin/../x") == "usr/x"
    with pytest.raises(LambdashipError, match="too many symlinks"):
        resolve_inside(root, "loop1/x")
