"""What the functions of one ``deploy --all`` run share, and what each of them built and sent.

* :class:`SharedDeps` — functions whose dependency inputs and platform are the same (the same
  ``package.deps`` hash) install them once per run: the first of them to start (the set's
  *leader*) builds; the others wait until it is past its install (a build event after the
  ``deps`` stage, its first deploy step, or its end) and then find the set in the cache. The
  dependency *layers* are written once by the layer cache's own lock (``image.cache``), which also
  holds between processes.
* :class:`BuildTally` — one function's build events (``image.events.BuildEvent``) condensed:
  installed or from the cache, dependency layers written or found in the layer cache.
* :class:`PushTally` — one function's push events (``oci.push.PushEvent``), per blob, with each
  blob's role (base, deps, app, config) taken from the image: what was sent, mounted or skipped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.config import FunctionConfig

# Build stages that come after the dependency install (the events of image.build / image.events;
# "layers" is the older single event before the layers were written).
PAST_INSTALL = frozenset({"deps", "compress", "layers", "fetch", "done"})
ROLES = ("base", "deps", "app", "config")


@dataclass(frozen=True)
class DepsSet:
    """A function's dependency set: its hash (inputs + target platform) and its cache entry."""

    hash: str
    marker: Path  # the entry's info file: there once the set is installed and recorded

    def in_cache(self) -> bool:
        return self.marker.is_file()


def deps_set(fn: FunctionConfig) -> DepsSet | None:
    """``fn``'s dependency set; None when it has none or it is invalid (the function's own deploy
    then reports the problem)."""
    from lambdaship import paths
    from lambdaship.errors import LambdashipError
    from lambdaship.package import deps as deps_mod

    try:
        plan = deps_mod.plan(fn)
    except (LambdashipError, OSError, ValueError):
        return None
    return None if plan.empty else DepsSet(plan.hash, paths.cache("deps") / plan.hash / deps_mod.MARKER)


@dataclass
class _Set:
    leader: str | None = None
    ready: bool = False  # the leader is past its install: the set is in the cache (or was not needed)
    members: list[str] = field(default_factory=list)


class SharedDeps:
    """One run's dependency sets: who installs each, who waits (see the module's docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sets: dict[str, _Set] = {}

    @contextmanager
    def turn(self, fn_key: str, key: str | None,
             on_wait: Callable[[str], None] | None = None) -> Iterator[Turn]:
        """The deploy of ``fn_key`` (dependency set ``key``) runs inside. A follower enters once its
        set's leader is past the install; a leader that ends without getting there (it failed)
        hands over to the next member. Call the yielded turn's ``past_install`` when the deploy is
        past its install (also when it ends well without saying so). ``on_wait(leader)`` is called
        before a follower waits."""
        if key is None:
            yield Turn(self, None, leads=False)
            return
        with self._cond:
            s = self._sets.setdefault(key, _Set())
            s.members.append(fn_key)
            while s.leader is not None and not s.ready:
                if on_wait is not None:
                    on_wait(s.leader)
                    on_wait = None
                self._cond.wait()
            leads = not s.ready
            if leads:
                s.leader = fn_key
        try:
            yield Turn(self, key, leads=leads)
        finally:
            if leads:
                with self._cond:
                    if not s.ready:
                        s.leader = None  # failed before its install: the next member installs
                    self._cond.notify_all()

    def _ready(self, key: str) -> None:
        with self._cond:
            self._sets[key].ready = True
            self._cond.notify_all()

    def sets(self) -> dict[str, list[str]]:
        """Dependency hash → the functions of this run with that set, in start order."""
        with self._cond:
            return {k: list(s.members) for k, s in self._sets.items()}


class Turn:
    """One deploy's place in its dependency set: ``leads`` when it installs for the others."""

    def __init__(self, owner: SharedDeps, key: str | None, *, leads: bool) -> None:
        self._owner, self._key, self.leads, self._said = owner, key, leads, False

    def past_install(self) -> None:
        """This deploy is past its dependency install: the members waiting for it go on."""
        if self.leads and not self._said and self._key is not None:
            self._said = True
            self._owner._ready(self._key)

    def build_event(self, event: Any) -> None:
        """A build event of this deploy: one after the install stages releases the waiting members."""
        if getattr(event, "stage", "") in PAST_INSTALL:
            self.past_install()


@dataclass
class BuildTally:
    """One function's build, from its events: how the dependency set and its layers were had."""

    deps: str | None = None  # "installed" | "cached" | "reused" | None (no dependencies / no build)
    layers_written: int = 0  # dependency layers compressed by this build
    layers_cached: int = 0  # dependency layers found in the layer cache
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def installed(self) -> None:
        """The set was installed by this deploy (not in the cache when it began, there after it:
        the zip planner of a ``package_type = "auto"`` function installs before the build)."""
        self.deps = "installed"

    def add(self, event: Any) -> None:
        stage, phase = getattr(event, "stage", ""), getattr(event, "phase", "end")
        detail = getattr(event, "detail", "") or ""
        if phase != "end":
            return
        with self._lock:  # a build's stages end in several threads
            self._count(stage, detail, str(getattr(event, "item", "")))

    def _count(self, stage: str, detail: str, item: str) -> None:
        if stage == "install":
            self.deps = "installed"
        elif stage == "deps" and self.deps != "installed":
            self.deps = "reused" if detail.startswith("reused") else "cached"
        elif stage == "compress" and item.startswith("deps"):
            if "cache" in detail:
                self.layers_cached += 1
            else:
                self.layers_written += 1

    def to_json(self) -> dict[str, Any]:
        return {"deps": self.deps, "deps_layers_written": self.layers_written,
                "deps_layers_cached": self.layers_cached}


def image_roles(image: Any) -> dict[str, str]:
    """Blob digest → role (base, deps, app, config) of a built image: the deps layers are the ones
    its ``dev.lambdaship.deps-layers`` label lists, the app layer is the last, the rest the base's."""
    from lambdaship.image.mutate import LABEL_DEPS_LAYERS

    layers = [lay.digest for lay in image.layers]
    labels = (image.config_json.get("config") or {}).get("Labels") or {}
    try:
        deps = {d["digest"] for d in json.loads(labels.get(LABEL_DEPS_LAYERS) or "{}").get("layers", [])}
    except (ValueError, TypeError, AttributeError):
        deps = set()
    roles = {d: "deps" if d in deps else "base" for d in layers[:-1]}
    if layers:
        roles[layers[-1]] = "app"
    roles[image.config_descriptor.digest] = "config"
    return roles


@dataclass
class PushTally:
    """One function's push, from its ``blob`` events: per blob how it got into the repository."""

    blobs: dict[str, tuple[str, int]] = field(default_factory=dict)  # digest -> (how, bytes sent)

    def add(self, event: Any) -> None:
        if getattr(event, "kind", "") == "blob":
            self.blobs[event.digest] = (str(event.how), int(event.bytes_done))

    def by_role(self, roles: dict[str, str]) -> dict[str, dict[str, int]]:
        """Per role: blobs sent (uploaded or streamed), their bytes, mounted and skipped."""
        out = {r: {"sent": 0, "sent_bytes": 0, "mounted": 0, "skipped": 0} for r in ROLES}
        for digest, (how, sent) in self.blobs.items():
            row = out[roles.get(digest, "base" if how == "stream" else "app")]
            if how in ("upload", "stream"):
                row["sent"] += 1
                row["sent_bytes"] += sent
            elif how == "mount":
                row["mounted"] += 1
            else:
                row["skipped"] += 1
        return out


def totals(rows: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """The per-role counts of several pushes added up."""
    out = {r: {"sent": 0, "sent_bytes": 0, "mounted": 0, "skipped": 0} for r in ROLES}
    for row in rows:
        for role, counts in row.items():
            for k, v in counts.items():
                out[role][k] += v
    return out
