"""What a Lambda name + qualifier runs, read from moto (through ``lambdaship.aws``).

Resolution: name, ARN or partial ARN (``name:qualifier`` too) + ``Qualifier`` → a version
(``$LATEST``, a number, or an alias's version, chosen by the alias's weights) → the version's
configuration (``GetFunction``) → a :class:`CodeSpec`. Image functions run the exact digest:
the one lambdaship recorded for the version in its description (``lambdaship image=repo@digest``;
moto shares ``Code.ImageUri`` between versions), else ``Code.ImageUri``. Zip functions run the
zip moto was given: moto keeps it in memory only (``Code.Location`` names a bucket that does not
exist), so the data plane keeps a copy of every zip that passes through it (``CodeStore``),
addressed by ``CodeSha256``.

Regions: one moto serves every region (it reads the region from each request's signature), and
so does the data plane: ``resolve(..., region=)`` reads the function in that region (the
caller's, from the Invoke request's SigV4 credential scope; default: the stack's region), and
the :class:`CodeSpec` carries it, so the function runs with that ``AWS_REGION``.

Results are cached; any write to Lambda / API Gateway that passes through the data plane
clears the cache (``invalidate``), and entries expire after ``TTL`` seconds in case moto was
changed behind the data plane's back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdaship.local.dataplane.workers import CodeSpec

TTL = 5.0
ARN_RE = re.compile(r"^(?:arn:[\w-]+:lambda:(?P<region>[\w-]+):)?(?:(?P<account>\d{12}):)?(?:function:)?"
                    r"(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$")


class NotFound(Exception):
    """The function, version or alias does not exist (``resource`` names it as Lambda would)."""

    def __init__(self, resource: str, function_exists: bool) -> None:
        super().__init__(resource)
        self.resource = resource
        self.function_exists = function_exists


class CodeMissing(Exception):
    pass


@dataclass(frozen=True)
class Target:
    spec: CodeSpec
    arn: str  # unqualified function ARN
    executed_version: str


def parse_name(name_or_arn: str, qualifier: str | None) -> tuple[str, str | None]:
    m = ARN_RE.match(name_or_arn)
    if not m:
        return name_or_arn, qualifier
    return m.group("name"), qualifier or m.group("qualifier")


class CodeStore:
    """Zip packages by CodeSha256 (base64 of the SHA-256 of the zip), unpacked on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    @staticmethod
    def _name(code_sha256: str) -> str:
        return base64.b64decode(code_sha256).hex()

    def put(self, data: bytes) -> str:
        sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
        path = self.root / f"{self._name(sha)}.zip"
        if not path.exists():
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return sha

    def has(self, code_sha256: str) -> bool:
        return (self.root / f"{self._name(code_sha256)}.zip").is_file()

    def unpacked(self, code_sha256: str) -> Path:
        name = self._name(code_sha256)
        dest = self.root / name
        if (dest / ".lambdaship-complete").exists():
            return dest
        src = self.root / f"{name}.zip"
        if not src.is_file():
            raise CodeMissing(code_sha256)
        with self._lock:
            if (dest / ".lambdaship-complete").exists():
                return dest
            work = Path(tempfile.mkdtemp(prefix=".unzip-", dir=self.root))
            with zipfile.ZipFile(src) as zf:
                for info in zf.infolist():
                    out = Path(zf.extract(info, work))  # zipfile drops '..' and absolute parts
                    mode = (info.external_attr >> 16) & 0o777
                    if mode and not info.is_dir():
                        out.chmod(mode | 0o444)
            (work / ".lambdaship-complete").write_text(code_sha256 + "\n")
            shutil.rmtree(dest, ignore_errors=True)
            work.rename(dest)
        return dest


class Functions:
    def __init__(self, store: CodeStore, *, region: str, account: str) -> None:
        self.store = store
        self.region = region
        self.account = account
        self.generation = 0
        self._cache: dict[tuple[str, ...], tuple[int, float, Any]] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1
            self._cache.clear()

    def cached(self, key: tuple[str, ...], load: Any) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            gen = self.generation
        if hit is not None and hit[0] == gen and now - hit[1] < TTL:
            return hit[2]
        value = load()
        with self._lock:
            if self.generation == gen:
                self._cache[key] = (gen, now, value)
        return value

    def arn(self, name: str, qualifier: str | None = None, region: str | None = None) -> str:
        base = f"arn:aws:lambda:{region or self.region}:{self.account}:function:{name}"
        return f"{base}:{qualifier}" if qualifier else base

    # ---- resolution ---------------------------------------------------------------------
    def _in(self, region: str, call: Any) -> Any:
        from lambdaship.aws.session import in_region

        with in_region(region):
            return call()

    def _function(self, name: str, version: str, region: str | None = None) -> dict[str, Any] | None:
        from lambdaship.aws import lambda_

        r = region or self.region
        return self.cached(("fn", r, name, version), lambda: self._in(r, lambda: lambda_.get_function(name, version)))

    def _alias(self, name: str, alias: str, region: str | None = None) -> dict[str, Any] | None:
        from lambdaship.aws import lambda_

        r = region or self.region
        return self.cached(("alias", r, name, alias), lambda: self._in(r, lambda: lambda_.get_alias(name, alias)))

    def version_for(self, name: str, qualifier: str | None, region: str | None = None) -> str:
        """The version ``qualifier`` names now (an alias picks by its routing weights)."""
        if not qualifier or qualifier == "$LATEST" or qualifier.isdigit():
            return qualifier or "$LATEST"
        alias = self._alias(name, qualifier, region)
        if alias is None:
            raise NotFound(self.arn(name, qualifier, region), self._function(name, "$LATEST", region) is not None)
        version = str(alias["FunctionVersion"])
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        roll = random.random()
        for extra, weight in sorted(weights.items()):
            if roll < float(weight):
                return str(extra)
            roll -= float(weight)
        return version

    def resolve(self, name_or_arn: str, qualifier: str | None = None, region: str | None = None) -> Target:
        """What ``name_or_arn`` (+ ``qualifier``) runs in ``region`` (default: the stack's)."""
        r = region or self.region
        name, qualifier = parse_name(name_or_arn, qualifier)
        version = self.version_for(name, qualifier, r)
        spec = self.cached(("spec", r, name, version), lambda: self._spec(name, version, r))
        return Target(spec, self.arn(name, region=r), version)

    def _spec(self, name: str, version: str, region: str) -> CodeSpec:
        fn = self._function(name, version, region)
        if fn is None:
            exists = version != "$LATEST" and self._function(name, "$LATEST", region) is not None
            raise NotFound(self.arn(name, None if version == "$LATEST" else version, region), exists)
        cfg, code = fn["Configuration"], fn.get("Code") or {}
        env = dict((cfg.get("Environment") or {}).get("Variables") or {})
        common: dict[str, Any] = {
            "function_name": name, "version": version, "timeout": float(cfg.get("Timeout") or 3),
            "memory": int(cfg.get("MemorySize") or 128),
            "ephemeral": int((cfg.get("EphemeralStorage") or {}).get("Size") or 512),
            "environment": tuple(sorted(env.items())),
            "architecture": (cfg.get("Architectures") or ["x86_64"])[0], "code_sha256": cfg.get("CodeSha256") or "",
            "region": region, "account": self.account,
        }
        if cfg.get("PackageType") == "Image":
            image_cfg = (cfg.get("ImageConfigResponse") or {}).get("ImageConfig") or {}
            return CodeSpec(kind="image", image_ref=image_ref(code.get("ImageUri") or "", cfg.get("Description"),
                                                              version),
                            image_command=tuple(image_cfg.get("Command") or ()),
                            image_entrypoint=tuple(image_cfg.get("EntryPoint") or ()),
                            image_workdir=image_cfg.get("WorkingDirectory"), **common)
        sha = cfg.get("CodeSha256") or ""
        return CodeSpec(kind="zip", code_dir=str(self.store.unpacked(sha)), runtime=cfg.get("Runtime"),
                        handler=cfg.get("Handler"), **common)

    # ---- resource policy ------------------------------------------------------------------
    def policy(self, name: str) -> list[dict[str, Any]]:
        from lambdaship.aws import lambda_

        return self.cached(("policy", name), lambda: lambda_.get_policy(name))


def image_ref(uri: str, description: str | None, version: str) -> str:
    """The exact image a version runs: lambdaship's recorded digest, else ``Code.ImageUri``."""
    from lambdaship.deploy.markers import parse_marker

    repo, digest = parse_marker(description)
    host = uri.split("/", 1)[0] if "/" in uri else ""
    if version != "$LATEST" and digest and host:
        if repo:
            return f"{host}/{repo}@{digest}"
        return f"{uri.split('@', 1)[0].rsplit(':', 1)[0]}@{digest}"
    return uri


def record_code(store: CodeStore, body: bytes, nested: bool) -> None:
    """Keep the zip of a CreateFunction (``nested``: under ``Code``) / UpdateFunctionCode request."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return
    code = data.get("Code") if nested else data
    if not isinstance(code, dict):
        return
    if isinstance(code.get("ZipFile"), str):
        try:
            store.put(base64.b64decode(code["ZipFile"]))
        except ValueError:
            return
    elif code.get("S3Bucket") and code.get("S3Key"):
        from lambdaship.aws import s3

        try:
            store.put(s3.get_bytes(code["S3Bucket"], code["S3Key"], code.get("S3ObjectVersion")))
        except Exception:
            return
