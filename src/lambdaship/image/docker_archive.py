"""A tar that ``docker load`` accepts (Docker 25+ layout: an OCI layout plus ``manifest.json``)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

from lambdaship.errors import LambdashipError
from lambdaship.fsutil import tmp_sibling
from lambdaship.image import layer as layer_mod
from lambdaship.image.model import Image


def write_docker_archive(image: Image, dest: Path, repo_tag: str) -> Path:
    """A tar that ``docker load`` accepts (Docker 25+ layout: OCI layout + manifest.json).

    Every layer must have a local blob (see ``fetch_base_blobs``).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    cfg_hex = image.config_descriptor.digest.split(":", 1)[1]
    man_hex = image.digest.split(":", 1)[1]
    docker_manifest = [{
        "Config": f"blobs/sha256/{cfg_hex}",
        "RepoTags": [repo_tag],
        "Layers": [f"blobs/sha256/{lay.digest.split(':', 1)[1]}" for lay in image.layers],
    }]
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{
        "mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest),
        "annotations": {"io.containerd.image.name": repo_tag, "org.opencontainers.image.ref.name":
                        repo_tag.rsplit(":", 1)[-1]},
    }]}
    mtime = layer_mod.source_date_epoch()

    def add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), mtime, 0o644
        tf.addfile(info, io.BytesIO(data))

    def add_dir(tf: tarfile.TarFile, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mtime, info.mode = tarfile.DIRTYPE, mtime, 0o755
        tf.addfile(info)

    tmp = tmp_sibling(dest)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
            add_dir(tf, "blobs")
            add_dir(tf, "blobs/sha256")
            seen = set()
            blobs: list[tuple[str, bytes | Path]] = [(man_hex, image.manifest), (cfg_hex, image.config)]
            for lay in image.layers:
                if lay.path is None:
                    raise LambdashipError(f"layer {lay.digest} is not available locally")
                blobs.append((lay.digest.split(":", 1)[1], lay.path))
            for hexd, content in sorted(blobs, key=lambda b: b[0]):
                if hexd in seen:
                    continue
                seen.add(hexd)
                if isinstance(content, bytes):
                    add_bytes(tf, f"blobs/sha256/{hexd}", content)
                else:
                    info = tarfile.TarInfo(f"blobs/sha256/{hexd}")
                    info.size, info.mtime, info.mode = content.stat().st_size, mtime, 0o644
                    with content.open("rb") as fh:
                        tf.addfile(info, fh)
            add_bytes(tf, "index.json", json.dumps(index, sort_keys=True).encode())
            add_bytes(tf, "manifest.json", json.dumps(docker_manifest, sort_keys=True).encode())
            add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
