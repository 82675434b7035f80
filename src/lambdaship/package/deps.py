"""Dependencies installed for the Lambda target (not the host), cached by their inputs.

- Installer: uv (``uv pip install --only-binary :all: --python-platform … --python-version …
  --target DIR``), pip as fallback (``--platform … --only-binary=:all: --no-compile``).
  Platform by runtime: python3.12+ runs on Amazon Linux 2023 → ``manylinux_2_28``; 3.11 and
  older on Amazon Linux 2 → ``manylinux2014``; arm64 uses aarch64 wheels.
- Requirements: the function's ``requirements`` file (relative to ``source``), else
  ``requirements.txt`` in ``source`` when present, else no dependencies.
- Cache: ``<home>/deps/<hash>``, hash of (requirements text incl. ``-r``/``-c`` files, python
  version, platform, installer and version, pruning). An unchanged set is never installed
  twice. Unpinned requirements are resolved once per cache entry — pin them.
- Bytecode: compiled for the *target* Python only when an interpreter of exactly that version
  is found (never host-version .pyc for another target), in PEP 552 unchecked-hash mode with
  ``/var/task/...`` as the recorded path, so it stays valid whatever the file times are and
  identical across machines (``LAMBDASHIP_BYTECODE=0`` turns it off). Installer tooling (pip, setuptools, wheel) and
  packages' bundled test suites are not compiled.
- Test suites: ``tests``/``test`` sub-packages inside a package (``pandas/tests``,
  ``numpy/_core/tests``; never a top-level package) are left out of Lambda trees — a fifth of
  a numpy + pandas install — unless a non-test module of the package imports them
  (``from .tests``, ``import pkg.tests``…), which keeps them. ``LAMBDASHIP_KEEP_TESTS=1`` keeps all.
- Cleanup: ``bin/`` (console scripts with host shebangs) and installer lock files are removed
  and the RECORD files adjusted, so the tree does not depend on the host.
- AWS base images ship boto3, botocore, s3transfer, jmespath, python-dateutil, urllib3 and six.
  When the base image is an AWS public Lambda Python base (``public.ecr.aws/lambda/python``)
  and such a package came in only as a transitive dependency (it is not named in the
  requirements), it is left out of the image; naming it in the requirements keeps it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lambdaship import cacheverify, paths
from lambdaship.errors import LambdashipError
from lambdaship.fsutil import entry_lock
from lambdaship.package import bytecode, installer
from lambdaship.package import prune as pruning
from lambdaship.package import requirements as reqs
from lambdaship.package.records import check as check_records
from lambdaship.platform import AWS_BASE_REPOSITORY

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

MARKER = "info.json"  # next to the tree/ directory of a cache entry
CACHE_VERSION = "3"
AWS_BASE_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six")
AWS_BASE_PREFIX = AWS_BASE_REPOSITORY


@dataclass(frozen=True)
class DepsResult:
    path: Path  # cached directory holding the installed packages (may be empty)
    hash: str  # hex digest of the inputs
    requirements: list[str]  # installed distributions, "name==version", sorted
    cached: bool = False  # True when the cache already held this set
    pruned: tuple[str, ...] = ()  # packages left out because the base image ships them
    bytecode: bool = False  # .pyc compiled for the target version
    timings: dict[str, float] = field(default_factory=dict, compare=False)  # install, bytecode (seconds)
    content_bytes: int = -1  # bytes of file content in the tree (-1: unknown)
    entries: int = -1  # files, directories and symlinks in the tree (-1: unknown)
    # relative path -> cacheverify record (path, kind, content sha256) of every entry, from the hashing
    # that verified (or recorded) the tree: the content keys of the dependency layers, without hashing again
    records: dict[str, bytes] | None = field(default=None, compare=False, repr=False)


def _base_is_aws(fn: FunctionConfig) -> bool:
    ref = fn.image_base
    return ref.startswith(AWS_BASE_PREFIX + ":") or ref.startswith(AWS_BASE_PREFIX + "@")


def _env_payload(fn: FunctionConfig, target: str, pyc: str | None) -> dict[str, object]:
    """What shapes an installed distribution's files besides the distribution itself."""
    name, version = installer.installer()
    payload: dict[str, object] = {
        "v": CACHE_VERSION,
        "python": fn.python if target == "lambda" else bytecode.HOST_PYTHON,
        "platform": fn.platform.uv_platform if target == "lambda" else f"host:{sys.executable}",
        "installer": f"{name} {version}",
        "bytecode": pyc is not None,
    }
    if target == "lambda" and pruning.prune_tests_enabled():
        payload["prune_tests"] = True
    return payload


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _cache_key(fn: FunctionConfig, target: str, req_text: str, prune: tuple[str, ...], pyc: str | None) -> str:
    return _digest({**_env_payload(fn, target, pyc), "requirements": req_text, "prune": list(prune)})


@dataclass(frozen=True)
class DepsPlan:
    """What would be installed, known without installing: the inputs and their hash."""

    hash: str
    requirements_file: Path | None
    requirements_text: str
    named: frozenset[str]
    prune: tuple[str, ...]
    interpreter: str | None  # for bytecode
    extra: tuple[str, ...] = ()  # requirements the app needs but does not name (a Chalice app's chalice)
    env: str = ""  # digest of what shapes a distribution's files besides itself (python, platform, installer...)
    only: tuple[str, ...] | None = None  # install exactly these "name==version", without their dependencies

    @property
    def empty(self) -> bool:
        if self.extra:
            return False
        return self.requirements_file is None or not (self.named or reqs.has_options(self.requirements_text))


def plan(fn: FunctionConfig, *, target: Literal["lambda", "host"] = "lambda") -> DepsPlan:
    """The dependency set's hash (the cache key, and the ``dev.lambdaship.deps-hash`` label)."""
    req = reqs.requirements_file(fn)
    req_text = reqs.requirements_text(req) if req else ""
    named = reqs.named_requirements(req_text)
    extra = reqs.implicit_requirements(fn, named)
    if extra:
        req_text += "\n# added by lambdaship\n" + "\n".join(extra) + "\n"
        named |= {reqs.requirement_name(e) or e for e in extra}
    prune: tuple[str, ...] = ()
    if target == "lambda" and _base_is_aws(fn):
        prune = tuple(p for p in AWS_BASE_PACKAGES if p not in named)
    pyc = bytecode.find_interpreter(fn.python) if target == "lambda" and bytecode.bytecode_enabled() else None
    key = _cache_key(fn, target, req_text, prune, pyc)
    return DepsPlan(key, req, req_text, frozenset(named), prune, pyc, extra, env=_digest(_env_payload(fn, target, pyc)))


def resolve(fn: FunctionConfig, p: DepsPlan) -> list[str] | None:
    """The distributions :func:`install` would install for Lambda ("name==version", canonical names,
    sorted, before pruning), without installing them: the installer's dry run, which downloads only
    metadata. None when that cannot tell (pip; requirements with options, URLs, paths or hashes; a
    failure, which the install reports)."""
    text = p.requirements_text
    if installer.uv_binary() is None or p.empty or reqs.has_options(text) or "--hash" in text or any(
            ln.strip().startswith("-") and not ln.strip().startswith(("-r ", "-c ")) for ln in text.splitlines()):
        return None
    with tempfile.TemporaryDirectory(prefix="lambdaship-resolve-") as tmp:
        req_file = _requirements_file(p, Path(tmp))
        cmd, env = installer.install_cmd(fn, "lambda", req_file, Path(tmp) / "tree")
        try:
            proc = installer.run([*cmd, "--dry-run"], cwd=p.requirements_file.parent if p.requirements_file
                                 else fn.source, env=env, timeout=600)
        except LambdashipError:
            return None
    found = re.findall(r"(?m)^ \+ ([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*$", proc.stderr + proc.stdout)
    if proc.returncode != 0 or not found:
        return None
    return sorted({f"{reqs.canonical_name(n)}=={v}" for n, v in found})


def install(fn: FunctionConfig, *, target: Literal["lambda", "host"] = "lambda",
            progress: Callable[..., None] | None = None, only: tuple[str, ...] | None = None) -> DepsResult:
    """Install the function's dependencies (or take them from the cache). ``progress`` is called
    with the fields of an ``image.events.BuildEvent`` as the stages resolve, download, install
    and bytecode start and end (``image.events.adapter`` makes one from a build's sink).

    ``only``: install just these "name==version" of the set (:func:`resolve`'s, without their
    dependencies) — the others are reused as layers of a previous image. The files of each are
    those a full install gives."""
    p = plan(fn, target=target)
    if only is not None:  # a part of the set (the rest is reused): a cache entry of its own
        p = replace(p, hash=_digest({"set": p.hash, "only": sorted(only)}), only=tuple(sorted(only)))
    key = p.hash
    root = paths.cache("deps")
    entry = root / key
    cached = _cached_result(entry, key)
    if cached is not None:
        return cached
    # One install per entry, across threads and processes (two deploys of one dependency set on
    # one runner): the second waits for the first, then takes its entry from the cache.
    with entry_lock(root / f"{key}.lock"):
        cached = _cached_result(entry, key)
        if cached is not None:
            return cached
        return _install_entry(fn, p, target, root, entry, progress)


def _cached_result(entry: Path, key: str) -> DepsResult | None:
    info, records = _verified_entry(entry)
    if info is None:
        return None
    return DepsResult(entry / "tree", key, info["requirements"], cached=True,
                      pruned=tuple(info.get("pruned", [])), bytecode=bool(info.get("bytecode")),
                      content_bytes=int(info.get("content_bytes", -1)), entries=int(info.get("entries", -1)),
                      records=records)


def _install_entry(fn: FunctionConfig, p: DepsPlan, target: Literal["lambda", "host"], root: Path, entry: Path,
                   progress: Callable[..., None] | None) -> DepsResult:
    """Install the set of ``p`` into a new cache entry ``entry`` (under its lock)."""
    pyc, key = p.interpreter, p.hash
    info_file = entry / MARKER
    root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        tree = tmp / "tree"
        tree.mkdir()
        hashed: cacheverify.Known = {}  # the RECORD check's digests: the tree is not read twice
        (pruned, pruned_tests), sized = _fill(fn, p, target, tmp, tree, timings, progress, hashed)
        requirements = sorted(pruning.installed(tree))
        content_bytes, entries = sized or tree_size(tree)
        records = dict(cacheverify.tree_records(tree, hashed))
        (tmp / MARKER).write_text(json.dumps(
            {"requirements": requirements, "pruned": pruned, "pruned_tests": pruned_tests,
             "tree_digest": cacheverify.records_digest(records.values()),
             "bytecode": bool(pyc), "python": fn.python, "only": p.only,
             "target": target, "content_bytes": content_bytes, "entries": entries},
            sort_keys=True,
        ))
        try:
            os.rename(tmp, entry)
        except OSError:
            if not info_file.is_file():  # unless another process finished first (theirs is as good)
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return DepsResult(entry / "tree", key, requirements, cached=False, pruned=tuple(pruned), bytecode=bool(pyc),
                      timings=timings, content_bytes=content_bytes, entries=entries, records=records)


def _fill(fn: FunctionConfig, p: DepsPlan, target: str, tmp: Path, tree: Path, timings: dict[str, float],
          progress: Callable[..., None] | None, hashed: cacheverify.Known | None = None,
          ) -> tuple[tuple[list[str], list[str]], tuple[int, int] | None]:
    """Install into ``tree``, trim it, compile its bytecode; the stages to ``progress``.
    Returns what :func:`_trim` removed and, when it measured them for ``progress``, the final
    tree's :func:`tree_size` (the tree is walked once less)."""
    phases = installer.Phases(progress)
    installs = (p.requirements_file is not None or p.extra) and p.named | reqs.has_options(p.requirements_text)
    if p.only is not None:
        installs = bool(p.only)
    if installs:
        timings["install"] = _run_installer(fn, p, target, tmp, tree, phases, hashed)
    trimmed = _trim(tree, p.prune, target)
    sized = tree_size(tree) if progress is not None else None
    before = sized[0] if sized is not None else 0
    if installs and progress is not None:
        phases.installed(before)
    if p.interpreter:
        installer.check_abort()
        if progress is not None:
            progress(stage="bytecode", phase="start")
        t0 = time.monotonic()
        bytecode.compile_tree(tree, p.interpreter)
        timings["bytecode"] = time.monotonic() - t0
        sized = tree_size(tree) if progress is not None else None
        if sized is not None:
            progress(stage="bytecode", bytes=max(0, sized[0] - before), seconds=timings["bytecode"],
                     detail=f"Python {fn.python if target == 'lambda' else bytecode.HOST_PYTHON}")
    return trimmed, sized


def _run_installer(fn: FunctionConfig, p: DepsPlan, target: str, tmp: Path, tree: Path,
                   phases: installer.Phases, hashed: cacheverify.Known | None = None) -> float:
    """Install ``p``'s requirements into ``tree`` (pure-Python sdists built into wheels when the
    only-binary install fails on them); the seconds it took. One-line error on failure."""
    req = p.requirements_file
    req_file = _requirements_file(p, tmp)
    cmd, env = installer.install_cmd(fn, target, req_file, tree)
    if p.only is not None:
        cmd.append("--no-deps")
    cwd = req.parent if req else fn.source
    t0 = time.monotonic()
    phases.begin()
    proc = installer.run(cmd, cwd=cwd, env=env, on_line=phases.feed)
    if proc.returncode != 0 and target == "lambda" and installer.sdist_error(proc.stderr, fn):
        from lambdaship.package import sdists  # hook: pure-Python sdists built into wheels

        wheels = sdists.build_pure_wheels(fn, req_file)
        if wheels is not None:
            cmd = [*cmd, "--find-links", str(wheels)]
            proc = installer.run(cmd, cwd=cwd, env=env, on_line=phases.feed)
    if proc.returncode == 0:  # uv's cache is not trusted: the tree against its wheels' RECORDs
        proc = check_records(tree, lambda extra: installer.run([*cmd, *extra], cwd=cwd, env=env),
                             uv=cmd[0] != sys.executable, seen=hashed) or proc
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise installer.install_error(proc.stderr, fn, req.name if req else "requirements.txt")
    return seconds


def _requirements_file(p: DepsPlan, tmp: Path) -> Path:
    """The requirements file to install ``p`` from: the user's, or one of ours in ``tmp`` with what
    it lacks (``extra``), or the exact pins of ``only``."""
    req = p.requirements_file
    if p.only is not None:
        pins = tmp / "only.txt"
        pins.write_text("".join(f"{spec}\n" for spec in p.only), encoding="utf-8")
        return pins
    if p.extra:  # the user's file plus what it lacks, in a file of our own
        mine = tmp / "requirements.txt"
        mine.write_text((f"-r {req}\n" if req else "") + "\n".join(p.extra) + "\n", encoding="utf-8")
        return mine
    if req is None:
        raise LambdashipError("internal: nothing to install from")
    return req


def _trim(tree: Path, prune: tuple[str, ...], target: str) -> tuple[list[str], list[str]]:
    """Host files out; the base image's packages (``prune``) and, for Lambda, bundled test suites
    out. Returns (distributions removed, test directories removed)."""
    pruning.clean(tree)
    pruned = []
    for spec, dist_info in pruning.installed(tree).items():
        if spec.split("==")[0] in prune:
            pruning.remove_dist(tree, dist_info)
            pruned.append(spec.split("==")[0])
    pruned_tests = pruning.prune_tests(tree) if target == "lambda" and pruning.prune_tests_enabled() else []
    return pruned, pruned_tests


def _verified_entry(entry: Path) -> tuple[dict | None, dict[str, bytes] | None]:
    """The cache entry's info, and its entries' records, when its tree still has the digest recorded
    at install time; a corrupt or unreadable entry is discarded ((None, None): install again)."""
    info_file = entry / MARKER
    if not info_file.is_file():
        return None, None
    info = records = None
    try:
        info = json.loads(info_file.read_text())
        records = dict(cacheverify.tree_records(entry / "tree"))
        ok = isinstance(info, dict) and cacheverify.records_digest(records.values()) == info.get("tree_digest")
    except (OSError, ValueError):
        ok = False
    if ok:
        return info, records
    legacy = isinstance(info, dict) and "tree_digest" not in info  # written before trees were verified
    cacheverify.discard(entry, "dependency tree", quiet=legacy)
    return None, None


def tree_size(root: Path) -> tuple[int, int]:
    """(bytes of file content, number of entries) below ``root``."""
    total = count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        count += len(dirnames) + len(filenames)
        for f in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total, count
