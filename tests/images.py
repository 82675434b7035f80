"""Test helpers: tiny Lambda-like base images, written as OCI layouts and pushed with skopeo;
layer files written with plain ``tarfile`` and the ``Image`` values made of them.

The layers are made with lambdaship's own deterministic layer writer; the push uses skopeo
(a real third-party client), so the registry content does not depend on lambdaship.oci.push.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

from lambdaship.image.layer import Entry, layer_bytes
from lambdaship.image.model import (
    DOCKER_LAYER_GZIP,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    Descriptor,
    Image,
    Layer,
    canonical_json,
)
from lambdaship.image.mutate import make_manifest
from lambdaship.oci.media import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, sha256_digest

ENTRYPOINT = b"""#!/bin/sh
# Tiny stand-in for the AWS base image's entrypoint.
if [ $# -ne 1 ]; then echo "entrypoint requires the handler name" >&2; exit 1; fi
exec /var/lang/bin/python3 -m awslambdaric "$1"
"""

BASE_ENV = [
    "PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LANG=en_US.UTF-8",
    "TZ=:/etc/localtime",
    "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LAMBDA_TASK_ROOT=/var/task",
    "LAMBDA_RUNTIME_DIR=/var/runtime",
]

GOARCH = {"x86_64": "amd64", "arm64": "arm64", "amd64": "amd64"}


def tar_layer(tmp: Path, name: str, entries: list[tuple]) -> Path:
    """The gzip layer file ``tmp/name.tar.gz``, written with plain ``tarfile``.

    entries: (kind, path, data/target[, mode]); kind in file, dir, symlink, hardlink, chr.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for kind, path, *rest in entries:
            info = tarfile.TarInfo(path)
            if kind == "file":
                data = rest[0].encode()
                info.size = len(data)
                info.mode = rest[1] if len(rest) > 1 else 0o644
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, rest[0]
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, rest[0]
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tf.addfile(info)
    out = tmp / f"{name}.tar.gz"
    out.write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    return out


def gz_layer(blob: Path, *, digest: str | None = None, diff_id: str | None = None) -> Layer:
    """The Docker gzip layer of the file ``blob``; ``digest`` / ``diff_id``: what an image claims
    instead of the real ones (a lying image)."""
    data = blob.read_bytes()
    desc = Descriptor(DOCKER_LAYER_GZIP, digest or sha256_digest(data), len(data))
    return Layer(desc, diff_id or sha256_digest(gzip.decompress(data)), path=blob)


def docker_image(layers: Sequence[Layer], config: dict, *, arch: str = "amd64") -> Image:
    """A Docker v2s2 image of ``layers``: ``config`` (``arch`` and linux unless it names its own)
    with the layers' diff_ids as its rootfs, under lambdaship's own manifest (``make_manifest``)."""
    cfg = canonical_json({"architecture": arch, "os": "linux", **config,
                          "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}})
    return Image(manifest=make_manifest(DOCKER_MANIFEST, cfg, list(layers)), config=cfg, layers=tuple(layers))


def _put(layout: Path, data: bytes) -> str:
    digest = sha256_digest(data)
    p = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return digest


def base_layers(arch: str = "amd64") -> list[list[Entry]]:
    """Two small layers: a 'system' layer and a 'runtime' layer with the entrypoint."""
    system = [
        Entry("etc/os-release", "file", data=b'NAME="Lambda-like test base"\nID=lambdaship-test\n'),
        Entry("etc/arch", "file", data=arch.encode() + b"\n"),
        Entry("var/lang/bin", "dir"),
        Entry("tmp", "dir"),
    ]
    runtime = [
        Entry("lambda-entrypoint.sh", "file", data=ENTRYPOINT, executable=True),
        Entry("var/runtime/bootstrap.py", "file", data=b"# runtime bootstrap stand-in\n"),
        Entry("var/task", "dir"),
    ]
    return [system, runtime]


def write_base_layout(
    layout: Path,
    *,
    arch: str = "amd64",
    tag: str = "latest",
    layers: list[list[Entry]] | None = None,
    env: list[str] | None = None,
) -> dict:
    """Write a single-image OCI layout; return {"manifest": digest, "size": n, "platform": …}."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descs, diff_ids = [], []
    for entries in layers if layers is not None else base_layers(arch):
        data, blob = layer_bytes(entries, mtime=1_700_000_000)
        _put(layout, data)
        descs.append({"mediaType": OCI_LAYER_GZIP, "digest": blob.digest, "size": blob.size})
        diff_ids.append(blob.diff_id)
    config = {
        "architecture": GOARCH[arch],
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/lambda-entrypoint.sh"],
            "Env": list(env if env is not None else BASE_ENV),
            "WorkingDir": "/var/task",
            "Cmd": ["app.handler"],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"test base layer {i}"}
                    for i in range(len(diff_ids))],
    }
    cfg = canonical_json(config)
    cfg_digest = _put(layout, cfg)
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest, "size": len(cfg)},
        "layers": descs,
    })
    m_digest = _put(layout, manifest)
    platform = {"architecture": GOARCH[arch], "os": "linux"}
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": m_digest, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag}, "platform": platform,
        }],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return {"manifest": m_digest, "size": len(manifest), "platform": platform}


def write_index_layout(layout: Path, archs: list[str], tag: str = "latest") -> None:
    """An OCI layout whose tag names an image index with one image per architecture."""
    entries = []
    for arch in archs:
        sub = layout.parent / f"{layout.name}-{arch}"
        info = write_base_layout(sub, arch=arch)
        for blob in (sub / "blobs" / "sha256").iterdir():
            dest = layout / "blobs" / "sha256" / blob.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blob, dest)
        entries.append({"mediaType": OCI_MANIFEST, "digest": info["manifest"], "size": info["size"],
                        "platform": info["platform"]})
    idx = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    idx_digest = _put(layout, idx)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": idx_digest, "size": len(idx),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }))


def skopeo_push(layout: Path, tag: str, dest: str, *, fmt: str | None = "v2s2", all_images: bool = False,
                creds: str | None = None) -> None:
    """``skopeo copy oci:LAYOUT:TAG docker://DEST`` (plain HTTP allowed; ``creds`` = "user:password")."""
    cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
    if creds:
        cmd += ["--dest-creds", creds]
    if fmt:
        cmd += ["--format", fmt]
    if all_images:
        cmd.append("--all")
    cmd += [f"oci:{layout}:{tag}", f"docker://{dest}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"skopeo copy failed: {proc.stderr.strip()}")


def registry_host(registry_url: str) -> str:
    return registry_url.removeprefix("http://").removeprefix("https://").rstrip("/")


def push_base(
    registry_url: str, work: Path, repo: str = "lambda-base/python", tag: str = "3.12", *,
    arch: str = "amd64", fmt: str = "v2s2", **kw,
) -> str:
    """Push a tiny Lambda-like base image; return its reference ``host:port/repo:tag``."""
    layout = work / f"base-{repo.replace('/', '_')}-{tag}-{arch}"
    write_base_layout(layout, arch=arch, tag=tag, **kw)
    ref = f"{registry_host(registry_url)}/{repo}:{tag}"
    skopeo_push(layout, tag, ref, fmt=fmt)
    return ref


def push_index(registry_url: str, work: Path, repo: str, tag: str, archs: list[str], fmt: str | None = None) -> str:
    """Push a multi-architecture image index (OCI; ``fmt="v2s2"``: Docker manifest list)."""
    layout = work / f"index-{repo.replace('/', '_')}-{tag}"
    write_index_layout(layout, archs, tag=tag)
    ref = f"{registry_host(registry_url)}/{repo}:{tag}"
    skopeo_push(layout, tag, ref, fmt=fmt, all_images=True)
    return ref


def push_declared_huge(base_ref: str, tag: str, declared: int = 11 * 1024**3) -> str:
    """Re-tag ``base_ref`` with a manifest whose first layer declares ``declared`` bytes.

    The registry stores what the manifest says; a builder must refuse such a base before
    writing anything (the 10 GB check), without needing 10 GB.
    """
    from lambdaship.oci.client import RegistryClient
    from lambdaship.oci.reference import Reference

    r = Reference.parse(base_ref)
    client = RegistryClient.for_registry(r.registry)
    raw, media_type, _ = client.get_manifest(r.repository, r.ref)
    doc = json.loads(raw)
    doc["layers"][0]["size"] = declared
    client.put_manifest(r.repository, tag, canonical_json(doc), media_type)
    return f"{r.registry}/{r.repository}:{tag}"


def push_many_layers(registry_url: str, repo: str, tag: str, count: int) -> str:
    """A Docker v2s2 base with ``count`` (identical, tiny) layers: a big manifest."""
    from lambdaship.image.model import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST
    from lambdaship.oci.client import RegistryClient

    client = RegistryClient.for_registry(registry_url)
    data, blob = layer_bytes([Entry("etc/marker", "file", data=b"x")], mtime=0)
    client.upload_blob(repo, blob.digest, blob.size, data)
    config = canonical_json({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/lambda-entrypoint.sh"], "Env": list(BASE_ENV), "WorkingDir": "/var/task"},
        "rootfs": {"type": "layers", "diff_ids": [blob.diff_id] * count},
    })
    client.upload_blob(repo, sha256_digest(config), len(config), config)
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": DOCKER_LAYER_GZIP, "digest": blob.digest, "size": blob.size}] * count,
    })
    client.put_manifest(repo, tag, manifest, DOCKER_MANIFEST)
    return f"{registry_host(registry_url)}/{repo}:{tag}"
