"""Hostile images against the unpacker and its cache: link and path tricks, setuid, devices,
lying digests / diff_ids, corrupt gzip, cache poisoning and tampering.

Every image is written with plain ``tarfile`` into an OCI layout or an ``Image`` value; each
test checks that the host outside the rootfs is unchanged and that errors are one line.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from lambdaship.errors import LambdashipError
from lambdaship.image.model import Image, write_layout
from lambdaship.local.rootcache import cached_rootfs, rootfs_cache, unpack
from lambdaship.local.rootfs import apply_layer
from tests.conftest import run_cli
from tests.images import docker_image, gz_layer


def tar_gz(tmp: Path, name: str, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    out = tmp / f"{name}.tar.gz"
    out.write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    return out


def entry(name: str, kind: str = "file", *, link: str = "", mode: int = 0o644, uid: int = 0
          ) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, 1_000_000
    data: bytes | None = None
    if kind == "file":
        data = f"content of {name}\n".encode()
    elif kind == "dir":
        info.type = tarfile.DIRTYPE
    elif kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, link
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, link
    elif kind in ("chr", "blk"):
        info.type = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
        info.devmajor, info.devminor = 1, 3
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    return info, data


def image_of(blobs: list[Path], *, diff_ids: list[str] | None = None, digests: list[str] | None = None,
             cmd: tuple[str, ...] = ("main.handler",)) -> Image:
    """An image of the layer files ``blobs``; ``diff_ids`` / ``digests``: what it claims instead of the real ones."""
    layers = [gz_layer(blob, digest=digests[i] if digests else None, diff_id=diff_ids[i] if diff_ids else None)
              for i, blob in enumerate(blobs)]
    return docker_image(layers, {"config": {"Cmd": list(cmd), "WorkingDir": "/var/task"}})


def snapshot(path: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every entry below ``path`` with mode, size and content (links by target)."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        data = os.readlink(p).encode() if p.is_symlink() else (p.read_bytes() if p.is_file() else b"")
        out[str(p.relative_to(path))] = (st.st_mode, st.st_size, data)
    return out


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host directory with a canary file an image must never change."""
    d = tmp_path / "host"
    d.mkdir()
    (d / "canary").write_text("host file\n")
    return d


def one_line(exc: LambdashipError) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_symlinked_parent_directories_are_re_rooted(tmp_path: Path, host: Path) -> None:
    before = snapshot(host)
    l1 = tar_gz(tmp_path, "l1", [entry("abs", "symlink", link=str(host)), entry("up", "symlink", link="../../../.."),
                                 entry("rel", "symlink", link=os.path.relpath(host, tmp_path / "root"))])
    l2 = tar_gz(tmp_path, "l2", [entry("abs/canary"), entry("up/canary"), entry("rel/canary"),
                                 entry("abs/new"), entry("up" + str(host) + "/canary")])
    root = tmp_path / "root"
    apply_layer(l1, root)
    apply_layer(l2, root)
    assert snapshot(host) == before
    inside = root / str(host).lstrip("/")
    assert (inside / "new").read_text() == "content of abs/new\n"  # /<host> inside the root
    assert (inside / "canary").read_text().startswith("content of up")  # the last entry for that name


def test_dotdot_and_absolute_names_stay_inside(tmp_path: Path, host: Path) -> None:
    before = snapshot(host)
    rel = os.path.relpath(host / "canary", tmp_path / "root")
    layer = tar_gz(tmp_path, "l", [entry("../../../../" + rel), entry(str(host / "canary")), entry("a/../../b"),
                                   entry(f"x/{'../' * 12}{rel}", "symlink", link="/")])
    root = tmp_path / "root"
    apply_layer(layer, root)
    assert snapshot(host) == before
    assert (root / "b").is_file() and (root / str(host).lstrip("/") / "canary").is_file()


def test_hardlinks_never_reach_or_change_host_files(tmp_path: Path, host: Path) -> None:
    before = snapshot(host)
    host_ino = (host / "canary").stat().st_ino
    layer = tar_gz(tmp_path, "l", [
        entry("outside", "hardlink", link=str(host / "canary")),
        entry("dotdot", "hardlink", link="../" * 12 + str(host / "canary").lstrip("/")),
        entry("via", "symlink", link=str(host)), entry("through", "hardlink", link="via/canary"),
    ])
    root = tmp_path / "root"
    apply_layer(layer, root)
    assert snapshot(host) == before
    for name in ("outside", "dotdot", "through"):
        assert not (root / name).exists() or (root / name).stat().st_ino != host_ino


def test_a_hardlink_then_a_file_never_writes_through_to_a_lower_layer(tmp_path: Path) -> None:
    """Layer 2 links to a layer-1 file and then rewrites the link (and setuid-chmods it): the
    cached base tree another image shares keeps its file as it was."""
    base = tar_gz(tmp_path, "base", [entry("usr", "dir"), entry("usr/lib.py")])
    evil = tar_gz(tmp_path, "evil", [entry("usr/link", "hardlink", link="usr/lib.py", mode=0o4777),
                                     entry("usr/link", mode=0o4777)])
    other = tar_gz(tmp_path, "other", [entry("var/task/app.py")])
    good = cached_rootfs(image_of([base, other]))
    lib = good / "usr/lib.py"
    before = (lib.read_bytes(), lib.stat().st_mode)
    bad = cached_rootfs(image_of([base, evil]))
    assert (bad / "usr/link").read_text() == "content of usr/link\n"
    assert (lib.read_bytes(), lib.stat().st_mode) == before
    assert not (bad / "usr/link").stat().st_mode & (stat.S_ISUID | stat.S_ISGID)


def test_setuid_device_nodes_and_ownership_are_dropped(tmp_path: Path) -> None:
    layer = tar_gz(tmp_path, "l", [
        entry("bin", "dir"), entry("bin/su", mode=0o4755, uid=0), entry("bin/sg", mode=0o2755, uid=1234),
        entry("shared", "dir", mode=0o3777), entry("dev", "dir"), entry("dev/mem", "chr"), entry("dev/sda", "blk"),
        entry("run", "dir"), entry("run/pipe", "fifo"),
    ])
    root = tmp_path / "root"
    apply_layer(layer, root)
    for name in ("bin/su", "bin/sg", "shared"):
        st = (root / name).lstat()
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), name
        assert st.st_uid == os.geteuid(), "ownership is never applied"
    assert (root / "shared").stat().st_mode & stat.S_ISVTX, "the sticky bit is harmless and kept"
    assert os.access(root / "bin/su", os.X_OK)
    for name in ("dev/mem", "dev/sda", "run/pipe"):
        assert not os.path.lexists(root / name)


def test_whiteouts_cannot_delete_outside(tmp_path: Path, host: Path) -> None:
    before = snapshot(host)
    l1 = tar_gz(tmp_path, "l1", [entry("h", "symlink", link=str(host)), entry("keep")])
    l2 = tar_gz(tmp_path, "l2", [entry("h/.wh.canary"), entry("../../.wh." + host.name), entry("h/.wh..wh..opq"),
                                 entry(".wh..wh..opq")])
    root = tmp_path / "root"
    apply_layer(l1, root)
    apply_layer(l2, root)
    assert snapshot(host) == before
    assert not (root / "keep").exists(), "the opaque root whiteout emptied the root, inside only"


def test_a_config_whose_diff_ids_lie_is_refused_and_nothing_is_cached(tmp_path: Path) -> None:
    layer = tar_gz(tmp_path, "l", [entry("var/task/main.py")])
    fake = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(LambdashipError) as exc:
        cached_rootfs(image_of([layer], diff_ids=[fake]))
    assert "claims diff_id" in one_line(exc.value)
    assert not any(p.name[:12] == fake[7:19] for p in (rootfs_cache() / "chains").iterdir())


def test_a_layer_whose_digest_lies_is_refused(tmp_path: Path) -> None:
    layer = tar_gz(tmp_path, "l", [entry("var/task/main.py")])
    with pytest.raises(LambdashipError) as exc:
        unpack(image_of([layer], digests=["sha256:" + "0" * 64]), tmp_path / "root")
    assert "not its digest" in one_line(exc.value)


def test_a_bad_gzip_checksum_is_one_line(tmp_path: Path) -> None:
    layer = tar_gz(tmp_path, "l", [entry("var/task/main.py")])
    data = bytearray(layer.read_bytes())
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    layer.write_bytes(bytes(data))
    with pytest.raises(LambdashipError) as exc:
        apply_layer(layer, tmp_path / "root")
    assert "is corrupt" in one_line(exc.value)


def test_an_image_claiming_another_images_diff_id_cannot_reuse_or_poison_its_tree(tmp_path: Path) -> None:
    """Image B's config names image A's (verified) diff_id for its own, different layer: B is
    refused — neither served A's cached tree nor allowed to replace it."""
    good = tar_gz(tmp_path, "good", [entry("var/task/main.py")])
    evil = tar_gz(tmp_path, "evil", [entry("var/task/main.py", mode=0o755), entry("var/task/evil.py")])
    a = image_of([good])
    tree = cached_rootfs(a)
    before = snapshot(tree)
    b = image_of([evil], diff_ids=[a.layers[0].diff_id])
    for _ in range(2):
        with pytest.raises(LambdashipError) as exc:
            cached_rootfs(b)
        assert "claims diff_id" in one_line(exc.value)
    assert cached_rootfs(a) == tree and snapshot(tree) == before


def test_a_cache_tree_changed_after_unpacking_is_detected_and_replaced(tmp_path: Path) -> None:
    layer = tar_gz(tmp_path, "l", [entry("var/task/main.py")])
    img = image_of([layer])
    tree = cached_rootfs(img)
    from lambdaship.local import rootcache as mod

    mod._checked.clear()  # a new process: nothing verified yet
    (tree / "var/task/main.py").write_text("import os  # planted\n")
    (tree / "var/task/planted.py").write_text("x = 1\n")
    again = cached_rootfs(img)
    assert (again / "var/task/main.py").read_text() == "content of var/task/main.py\n"
    assert not (again / "var/task/planted.py").exists()


def test_run_refuses_a_lying_layout_in_one_line(tmp_path: Path) -> None:
    layer = tar_gz(tmp_path, "l", [entry("var/task/main.py")])
    fake = "sha256:" + hashlib.sha256(b"lie").hexdigest()
    layout = write_layout(image_of([layer], diff_ids=[fake]), tmp_path / "layout")
    proc = run_cli("run", str(layout), "--get", "/")
    assert proc.returncode == 1
    assert proc.stderr.count("error: ") == 1 and "claims diff_id" in proc.stderr
    assert "Traceback" not in proc.stderr
    # a config blob that does not match the manifest's config digest
    index = json.loads((layout / "index.json").read_text())
    manifest_path = layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]
    config_digest = json.loads(manifest_path.read_text())["config"]["digest"]
    (layout / "blobs/sha256" / config_digest.split(":")[1]).write_text(json.dumps({"rootfs": {"diff_ids": []}}))
    proc = run_cli("run", str(layout), "--get", "/")
    assert proc.returncode == 1 and "does not match the digest" in proc.stderr and "Traceback" not in proc.stderr


# ---- what the unpacker learns about the tree's shape within one layer must follow every change ----
def test_a_directory_replaced_by_a_symlink_in_the_same_layer_is_not_written_through(tmp_path: Path,
                                                                                     host: Path) -> None:
    """The layer creates a/b (known to be real directories), replaces a with a symlink to the host,
    then writes a/b/x: x lands below the re-rooted host path inside the root, never in the host."""
    (host / "b").mkdir()
    before = snapshot(host)
    layer = tar_gz(tmp_path, "l", [entry("a", "dir"), entry("a/b", "dir"), entry("a/b/first"),
                                   entry("a", "symlink", link=str(host)), entry("a/b/x")])
    root = tmp_path / "root"
    apply_layer(layer, root)
    assert snapshot(host) == before
    assert (root / str(host).lstrip("/") / "b/x").read_text() == "content of a/b/x\n"
    assert (root / "a").is_symlink()


def test_a_whited_out_directory_is_recreated_and_never_followed_when_linked(tmp_path: Path, host: Path) -> None:
    """After ``p/.wh.sub`` removes a directory the layer already wrote into and a symlink p/sub -> host
    replaces it, a file below p/sub stays inside the root; after ``d/.wh.sub``, files below d/sub
    recreate it."""
    (host / "sub").mkdir()
    before = snapshot(host)
    l1 = tar_gz(tmp_path, "l1", [entry("d", "dir"), entry("d/sub", "dir"), entry("d/sub/f"),
                                 entry("p", "dir"), entry("p/sub", "dir")])
    l2 = tar_gz(tmp_path, "l2", [entry("p/sub/h"), entry("p/.wh.sub"), entry("p/sub", "symlink", link=str(host)),
                                 entry("p/sub/canary"), entry("d/sub/h"), entry("d/.wh.sub"), entry("d/sub/g")])
    root = _apply_both(l1, l2, tmp_path / "root", host, before)
    assert sorted(p.name for p in (root / "d/sub").iterdir()) == ["g"]
    assert (root / str(host).lstrip("/") / "canary").read_text() == "content of p/sub/canary\n"


def _apply_both(l1: Path, l2: Path, root: Path, host: Path, before: object) -> Path:
    """``l1`` then ``l2`` applied to ``root``; the host checked unchanged first, even when a layer failed."""
    apply_layer(l1, root)
    try:
        apply_layer(l2, root)
    finally:
        assert snapshot(host) == before
    return root


def test_an_opaque_directory_after_files_of_the_same_layer_is_followed_exactly(tmp_path: Path, host: Path) -> None:
    """``o/.wh..wh..opq`` after the layer wrote o/deep/y and o/deep2/v removes o/deep and o/deep2
    (not named by this layer): a symlink o/deep2 -> host planted after it is re-rooted for o/deep2/w,
    and a later o/deep/z recreates o/deep."""
    (host / "deep2").mkdir()
    before = snapshot(host)
    l1 = tar_gz(tmp_path, "l1", [entry("o", "dir"), entry("o/old"), entry("o/deep", "dir"), entry("o/deep/x"),
                                 entry("o/deep2", "dir")])
    l2 = tar_gz(tmp_path, "l2", [entry("o/deep/y"), entry("o/deep2/v"), entry("o/.wh..wh..opq"),
                                 entry("o/deep2", "symlink", link=str(host / "deep2")), entry("o/deep2/w"),
                                 entry("o/deep/z")])
    root = _apply_both(l1, l2, tmp_path / "root", host, before)
    assert sorted(p.name for p in (root / "o").iterdir()) == ["deep", "deep2"]
    assert sorted(p.name for p in (root / "o/deep").iterdir()) == ["z"]
    assert (root / str(host).lstrip("/") / "deep2/w").read_text() == "content of o/deep2/w\n"


def test_a_removed_symlink_no_longer_redirects_later_entries(tmp_path: Path) -> None:
    """l -> t is followed for l/f; after ``.wh.l`` the name l is a plain (new) directory for l/g."""
    layer = tar_gz(tmp_path, "l", [entry("t", "dir"), entry("l", "symlink", link="t"), entry("l/f"),
                                   entry(".wh.l"), entry("l/g")])
    root = tmp_path / "root"
    apply_layer(layer, root)
    assert (root / "t/f").is_file() and not (root / "t/g").exists()
    assert not (root / "l").is_symlink() and (root / "l/g").read_text() == "content of l/g\n"
