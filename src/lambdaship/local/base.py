"""An offline Lambda-like base image, built with debootstrap and pushed to a registry.

The AWS base images (public.ecr.aws/lambda/python) cannot be pulled on an offline machine or
in a CI job without internet access to ECR Public. This builds a stand-in: Debian bookworm
(minbase) + python3 (3.11) + pip + awslambdaric + ``/lambda-entrypoint.sh``, env
``LAMBDA_TASK_ROOT=/var/task``, ``WORKDIR /var/task``, one gzip layer, Docker v2s2 format.

The layer is cached by recipe hash in a stable place that survives test sessions:
``$LAMBDASHIP_BASE_CACHE``, else ``$XDG_CACHE_HOME/lambdaship-base`` (``~/.cache/lambdaship-base``).
The first build takes about a minute (debootstrap + apt + pip); later calls only push (or
find the image already in the registry).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from lambdaship.errors import LambdashipError
from lambdaship.fsutil import tmp_sibling
from lambdaship.image.model import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    Descriptor,
    Image,
    Layer,
    canonical_json,
    sha256_digest,
)
from lambdaship.paths import base_cache_dir
from lambdaship.platform import Architecture

SUITE = "bookworm"
PYTHON = "3.11"
AWSLAMBDARIC = "4.2.2"
PACKAGES = ("python3", "python3-pip", "ca-certificates")
REPOSITORY = "lambdaship/base"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ENTRYPOINT = """#!/bin/sh
# Lambda-like entrypoint (lambdaship offline base): run the handler given as the first
# argument (the image's CMD) with the runtime interface client, against AWS_LAMBDA_RUNTIME_API.
if [ $# -lt 1 ]; then
  echo "usage: /lambda-entrypoint.sh module.handler" >&2
  exit 142
fi
if [ -z "$AWS_LAMBDA_RUNTIME_API" ]; then
  echo "AWS_LAMBDA_RUNTIME_API is not set: run this image with 'lambdaship run' or on AWS Lambda" >&2
  exit 142
fi
export _HANDLER="$1"
cd "${LAMBDA_TASK_ROOT:-/var/task}" || exit 142
exec /usr/bin/python3 -m awslambdaric "$@"
"""
ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    "TZ=:/etc/localtime",
    "LAMBDA_TASK_ROOT=/var/task",
    "LAMBDA_RUNTIME_DIR=/var/runtime",
]
# Not part of the image: device nodes, kernel filesystems, apt/pip caches, host-specific files.
EXCLUDES = ("./dev/*", "./proc/*", "./sys/*", "./run/*", "./tmp/*", "./var/tmp/*", "./var/cache/apt/*",
            "./var/lib/apt/lists/*", "./var/log/*", "./root/.cache", "./var/cache/debconf/*-old")


def architecture() -> str:
    host = Architecture.host()
    return host.oci if host else platform.machine().lower()


def recipe() -> dict[str, object]:
    return {"version": 1, "suite": SUITE, "variant": "minbase", "packages": list(PACKAGES),
            "awslambdaric": AWSLAMBDARIC, "entrypoint": ENTRYPOINT, "env": ENV, "excludes": list(EXCLUDES),
            "architecture": architecture()}


def recipe_hash() -> str:
    return hashlib.sha256(canonical_json(recipe())).hexdigest()[:20]


def apt_mirror() -> str:
    """The Debian mirror the machine's apt uses (so its proxy/mirror settings carry over)."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        for m in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.M):
            uri = m.group(1).rstrip("/")
            if uri.startswith(("http://", "https://")) and re.search(r"/debian$", uri):
                return uri
    return DEFAULT_MIRROR


def apt_proxy() -> str | None:
    for f in [*sorted(Path("/etc/apt/apt.conf.d").glob("*")), Path("/etc/apt/apt.conf")]:
        try:
            text = f.read_text()
        except OSError:
            continue
        m = re.search(r'Acquire::http::Proxy\s+"([^"]+)"', text)
        if m:
            return m.group(1)
    return None


@dataclass(frozen=True)
class BaseArtifacts:
    layer: Path          # gzip-compressed layer tarball
    digest: str          # of the compressed blob
    size: int
    diff_id: str         # sha256 of the uncompressed tar
    uncompressed_size: int


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None, timeout: float = 900) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-5:]
        raise LambdashipError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}",
                              "check network access to the Debian mirror and PyPI")


def _build_rootfs(root: Path, log: object = None) -> None:
    if shutil.which("debootstrap") is None:
        raise LambdashipError("debootstrap is not installed", "install it: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise LambdashipError("building the base image needs root (debootstrap, chroot)",
                              "run 'lambdaship local base' as root, e.g. in CI")
    env = dict(os.environ)
    proxy = apt_proxy()
    if proxy:
        env.setdefault("http_proxy", proxy)
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), apt_mirror()],
         "debootstrap", env=env)
    ca = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    (root / "tmp").mkdir(exist_ok=True)
    shutil.copyfile(ca, root / "tmp" / "lambdaship-ca.pem")
    pip_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
               "LANG": "C.UTF-8", "PIP_CONFIG_FILE": "/dev/null", "SSL_CERT_FILE": "/tmp/lambdaship-ca.pem",
               "PIP_CERT": "/tmp/lambdaship-ca.pem", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "PIP_INDEX_URL"):
        if k in os.environ:
            pip_env[k] = os.environ[k]
    _run(["unshare", "--mount", "--pid", "--fork", "--kill-child", "chroot", str(root),
          "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in pip_env.items()],
          "python3", "-m", "pip", "install", "--no-cache-dir", "--break-system-packages", "--root-user-action=ignore",
          f"awslambdaric=={AWSLAMBDARIC}"], "pip install awslambdaric (in the chroot)")
    (root / "tmp" / "lambdaship-ca.pem").unlink()
    ep = root / "lambda-entrypoint.sh"
    ep.write_text(ENTRYPOINT)
    ep.chmod(0o755)
    for d in ("var/task", "var/runtime", "opt"):
        (root / d).mkdir(parents=True, exist_ok=True)
    # Host-specific files debootstrap copied in: the runtime provides its own.
    (root / "etc" / "resolv.conf").unlink(missing_ok=True)
    (root / "etc" / "resolv.conf").write_text("")
    (root / "etc" / "hostname").write_text("localhost\n")


def _tar_layer(root: Path, dest: Path) -> BaseArtifacts:
    cmd = ["tar", "--numeric-owner", "--sort=name", "--xattrs", "--xattrs-include=security.capability",
           *[f"--exclude={e}" for e in EXCLUDES], "-C", str(root), "-cf", "-", "."]
    raw_hash, gz_hash = hashlib.sha256(), hashlib.sha256()
    raw_size = gz_size = 0
    try:
        from isal import isal_zlib  # faster gzip, same format

        comp = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
    except ImportError:  # pragma: no cover
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    tmp = tmp_sibling(dest)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc, tmp.open("wb") as out:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            raw_hash.update(chunk)
            raw_size += len(chunk)
            data = comp.compress(chunk)
            if data:
                gz_hash.update(data)
                gz_size += len(data)
                out.write(data)
        data = comp.flush()
        gz_hash.update(data)
        gz_size += len(data)
        out.write(data)
        err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise LambdashipError(f"tar of the base rootfs failed: {err.strip()[-300:]}")
    os.replace(tmp, dest)
    return BaseArtifacts(dest, "sha256:" + gz_hash.hexdigest(), gz_size, "sha256:" + raw_hash.hexdigest(), raw_size)


def _cached(entry: Path) -> BaseArtifacts | None:
    meta = entry / "layer.json"
    if not meta.is_file():
        return None
    info = json.loads(meta.read_text())
    layer = entry / "layer.tar.gz"
    if layer.is_file() and layer.stat().st_size == info["size"]:
        return BaseArtifacts(layer, info["digest"], info["size"], info["diff_id"], info["uncompressed_size"])
    return None


def build_layer(*, rebuild: bool = False, log: object = None) -> BaseArtifacts:
    """The base's single layer, built once per recipe and kept in ``base_cache_dir()``.

    Concurrent callers (two test sessions, a benchmark) serialise on a lock file; the second
    one finds the finished layer.
    """
    from lambdaship.fsutil import entry_lock

    entry = base_cache_dir() / recipe_hash()
    if not rebuild and (art := _cached(entry)) is not None:
        return art
    with entry_lock(entry / ".lock"):
        if not rebuild and (art := _cached(entry)) is not None:
            return art
        return _build_locked(entry, log)


def _build_locked(entry: Path, log: object) -> BaseArtifacts:
    meta = entry / "layer.json"
    work = Path(tempfile.mkdtemp(prefix="build-", dir=entry))
    try:
        root = work / "rootfs"
        _build_rootfs(root, log)
        art = _tar_layer(root, entry / "layer.tar.gz")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta.write_text(json.dumps({"digest": art.digest, "size": art.size, "diff_id": art.diff_id,
                                "uncompressed_size": art.uncompressed_size, "recipe": recipe()}, indent=2))
    return art


def base_image(art: BaseArtifacts | None = None) -> Image:
    """The base as an ``Image`` value (Docker v2s2 manifest, one local gzip layer)."""
    art = art or build_layer()
    config = {
        "architecture": architecture(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": ENV,
            "Entrypoint": ["/lambda-entrypoint.sh"],
            "WorkingDir": "/var/task",
            "Labels": {"dev.lambdaship.base": recipe_hash(),
                       "org.opencontainers.image.description":
                           f"lambdaship offline Lambda-like base: Debian {SUITE} + Python {PYTHON} "
                           f"+ awslambdaric {AWSLAMBDARIC}"},
        },
        "rootfs": {"type": "layers", "diff_ids": [art.diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z",
                     "created_by": f"lambdaship local base: debootstrap --variant=minbase {SUITE} "
                                   f"+ {' '.join(PACKAGES)} + awslambdaric=={AWSLAMBDARIC}"}],
    }
    config_bytes = canonical_json(config)
    layer_desc = Descriptor(DOCKER_LAYER_GZIP, art.digest, art.size)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config_bytes), "digest": sha256_digest(config_bytes)},
        "layers": [layer_desc.to_json()],
    }
    layer = Layer(layer_desc, art.diff_id, path=art.layer, uncompressed_size=art.uncompressed_size)
    return Image(manifest=canonical_json(manifest), config=config_bytes, layers=(layer,))


def default_registry() -> str:
    url = os.environ.get("LAMBDASHIP_REGISTRY_URL")
    if url:
        return url
    from lambdaship.local import stack

    state = stack.read_state()
    if state is not None:
        return state.registry.url
    raise LambdashipError("no registry to push the base image to",
                          "pass --registry URL, set LAMBDASHIP_REGISTRY_URL, or start 'lambdaship local up'")


def tag() -> str:
    return f"{SUITE}-python{PYTHON}-{recipe_hash()[:12]}"


def ensure_base(registry_url: str | None = None, *, rebuild: bool = False) -> str:
    """Build (once) and push the base; returns ``host[:port]/lambdaship/base@sha256:…``."""
    from lambdaship.registries import registry_client

    registry_url = (registry_url or default_registry()).rstrip("/")
    image = base_image(build_layer(rebuild=rebuild))
    client = registry_client(registry_url)
    if client.head_manifest(REPOSITORY, image.digest) is None:
        for digest, size, source in (
            (image.config_descriptor.digest, len(image.config), image.config),
            (image.layers[0].digest, image.layers[0].size, image.layers[0].path),
        ):
            if not client.blob_exists(REPOSITORY, digest):
                client.upload_blob(REPOSITORY, digest, size, source)
        client.put_manifest(REPOSITORY, image.digest, image.manifest, DOCKER_MANIFEST)
    if client.head_manifest(REPOSITORY, tag()) != image.digest:
        client.put_manifest(REPOSITORY, tag(), image.manifest, DOCKER_MANIFEST)
    host = re.sub(r"^http://", "", registry_url) if re.match(r"^http://(127\.|localhost)", registry_url) \
        else registry_url
    return f"{host}/{REPOSITORY}@{image.digest}"
