"""A package index on 127.0.0.1 for the supply tests (PEP 691 JSON, what uv and lambdaship's
sdist download read), and source distributions written by hand (no build backend runs to make
them).

``PackageIndex()`` serves every file :meth:`PackageIndex.add` was given: ``/simple/<name>/``
lists them with their SHA-256, ``/files/<filename>`` serves them; any other project is a 404.
Every request is recorded (``index.server.seen``).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

from tests.hostile.registry_server import HostileServer, Request

JSON = "application/vnd.pypi.simple.v1+json"


def write_sdist(dest: Path, name: str, files: dict[str, str], version: str = "1.0") -> Path:
    """``dest/name-version.tar.gz`` holding ``files`` (relative to ``name-version/``), with a
    PKG-INFO (Metadata 2.1: not static, so a resolver asks the build backend) unless given."""
    root = f"{name}-{version}"
    members = {"PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", **files}
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{root}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        for arc, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{root}/{arc}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class PackageIndex:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.server = HostileServer(self._app)
        self.url = f"{self.server.url}/simple"

    def add(self, path: Path) -> None:
        self.files[path.name] = path.read_bytes()

    def _project(self, filename: str) -> str:
        return _canon(re.split(r"-\d", filename, maxsplit=1)[0])

    def _app(self, req: Request) -> None:
        parts = [p for p in req.path.split("/") if p]
        if len(parts) == 2 and parts[0] == "simple":
            files = [{"filename": f, "url": f"/files/{f}", "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}
                     for f, data in sorted(self.files.items()) if self._project(f) == _canon(parts[1])]
            if not files:
                return req.send(404, b"not found")
            body = {"meta": {"api-version": "1.0"}, "name": _canon(parts[1]), "files": files}
            return req.send(200, json.dumps(body).encode(), {"Content-Type": JSON})
        if len(parts) == 2 and parts[0] == "files" and parts[1] in self.files:
            return req.send(200, self.files[parts[1]], {"Content-Type": "application/octet-stream"})
        return req.send(404, b"not found")

    def __enter__(self) -> PackageIndex:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)
