"""The sandbox a local function runs in: bubblewrap (``bwrap``) driven, never hand-made.

What :func:`command` builds, for one runtime process:

* a new user, pid, mount, ipc, uts and cgroup namespace (``--unshare-all``); the network
  namespace is **shared with the host** (``--share-net``) so the runtime reaches the Runtime API
  emulator on 127.0.0.1, as a Lambda function reaches the network;
* the handler runs as uid/gid 993 (Lambda's sandbox user) with no capabilities;
* the verified rootfs bound read-only at ``/``; ``/var/task`` (``serve``: the live source tree)
  and the dependency tree bound read-only on top;
* ``/tmp`` a fresh tmpfs of ``ephemeral_mb`` MiB (``bwrap --size``), ``/dev`` a minimal devtmpfs
  (null, zero, full, random, urandom, tty, pts, shm), ``/proc`` of its own pid namespace;
* no other host path; the environment is exactly what the engine hands in (nothing inherited);
* the whole tree is killed with its parent (``--die-with-parent``) and by SIGKILL on timeout;
* memory: as root, a memory cgroup (v1 ``memory.limit_in_bytes`` or v2 ``memory.max``) per
  runtime under the caller's own cgroup; otherwise ``RLIMIT_AS`` (address space, not RSS) at
  ``memory_mb`` + :data:`AS_HEADROOM_MB` — :func:`memory_mode` says which applies.

A target architecture other than the host's runs under qemu-user: with a registered binfmt
handler nothing changes; without one, the static emulator binary is bound into the sandbox
(``/opt/lambdaship/qemu``) and runs the image's Python directly; processes the handler
starts are then not emulated (no binfmt).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from lambdaship import bubblewrap
from lambdaship.bubblewrap import SANDBOX_UID, available, bwrap
from lambdaship.errors import LambdashipError
from lambdaship.platform import Architecture

AS_HEADROOM_MB = 256  # Python reserves address space (arenas, thread stacks) beyond its RSS
QEMU = {Architecture.arm64: "qemu-aarch64", Architecture.x86_64: "qemu-x86_64"}
QEMU_MOUNT = "/opt/lambdaship/qemu"  # = rootcache.QEMU_MOUNT


@dataclass(frozen=True)
class Box:
    """One sandbox: the rootfs and what is bound on top of it."""

    rootfs: Path
    binds: tuple[tuple[Path, str], ...] = ()  # (host path, path inside), all read-only
    tmp_mb: int = 512
    memory_mb: int = 512
    chdir: str = "/var/task"
    emulator: Path | None = None  # qemu-user binary, bound at QEMU_MOUNT
    network: bool = True  # share the host's network namespace (runtimes reach the emulator on loopback)


def require() -> str:
    ok, why = available()
    if not ok:
        raise LambdashipError(f"the local sandbox is not available: {why}",
                              "install bubblewrap and enable user namespaces (kernel.unprivileged_userns_clone=1)")
    return why


# ---- memory -------------------------------------------------------------------------------------
def _own_cgroup() -> tuple[Path, str] | None:
    """(directory, "v1"|"v2") of this process's memory cgroup, when we may create children in it."""
    if os.geteuid() != 0:
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            d = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if (d / "memory.limit_in_bytes").exists() and os.access(d, os.W_OK):
                return d, "v1"
    for line in lines:
        if line.startswith("0::"):
            d = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            controllers = (d / "cgroup.controllers").read_text() if (d / "cgroup.controllers").exists() else ""
            if "memory" in controllers and os.access(d, os.W_OK) and (d / "memory.max").exists():
                return d, "v2"
    return None


@functools.cache
def memory_mode() -> str:
    """``cgroup-v1`` / ``cgroup-v2`` (RSS capped at memory_mb) or ``rlimit-as`` (address space)."""
    found = _own_cgroup()
    if found is not None:
        probe = found[0] / f"lambdaship-probe-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
            return f"cgroup-{found[1]}"
        except OSError:
            pass
    return "rlimit-as"


class MemoryCap:
    """The memory limit of one runtime process tree; :meth:`wrap` prefixes its argv."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.mode = memory_mode()
        self.cgroup: Path | None = None
        if self.mode.startswith("cgroup"):
            found = _own_cgroup()
            assert found is not None
            self.cgroup = found[0] / f"lambdaship-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self.cgroup.mkdir()
            limit = str(memory_mb * 1024 * 1024)
            if self.mode == "cgroup-v1":
                (self.cgroup / "memory.limit_in_bytes").write_text(limit)
                with contextlib.suppress(OSError):  # swap accounting may be off
                    (self.cgroup / "memory.memsw.limit_in_bytes").write_text(limit)
            else:
                (self.cgroup / "memory.max").write_text(limit)
                with contextlib.suppress(OSError):
                    (self.cgroup / "memory.swap.max").write_text("0")

    def wrap(self, argv: list[str]) -> list[str]:
        if self.cgroup is not None:
            # join the cgroup before exec'ing bwrap, so every process of the sandbox is in it
            return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(self.cgroup), *argv]
        limit = (self.memory_mb + AS_HEADROOM_MB) * 1024 * 1024
        return ["prlimit", f"--as={limit}", "--", *argv]

    def peak_mb(self) -> int | None:
        if self.cgroup is None:
            return None
        name = "memory.max_usage_in_bytes" if self.mode == "cgroup-v1" else "memory.peak"
        try:
            return int((self.cgroup / name).read_text()) // (1024 * 1024)
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                self.cgroup.rmdir()


# ---- the command ----------------------------------------------------------------------------------
def emulator_for(arch: Architecture) -> tuple[Path | None, str | None]:
    """(qemu binary to bind, note) for running ``arch`` here; (None, None) when native or binfmt."""
    if Architecture.host() == arch:
        return None, None
    name = QEMU[arch]
    binfmt = Path("/proc/sys/fs/binfmt_misc") / name
    if binfmt.exists():
        return None, f"target {arch.value} is not this machine's architecture: running under {name} (binfmt)"
    exe = shutil.which(f"{name}-static")
    if exe is None:
        raise LambdashipError(
            f"target {arch.value} is not this machine's architecture and no qemu-user emulator is installed",
            "apt-get install qemu-user-static (or run on a matching machine)")
    return Path(exe), f"target {arch.value} is not this machine's architecture: running under {exe}"


def command(box: Box, argv: list[str]) -> list[str]:
    """The bwrap argv running ``argv`` inside ``box`` (environment: whatever Popen is given);
    namespaces, uid, /dev, /proc and /tmp from :func:`lambdaship.bubblewrap.argv`."""
    exe = bwrap()
    if exe is None:
        require()
        raise AssertionError  # pragma: no cover
    mounts = [arg for src, dest in box.binds for arg in ("--ro-bind", str(src), dest)]
    if box.emulator is not None:  # bound on the placeholder file every cached rootfs has
        mounts += ["--ro-bind", str(box.emulator), QEMU_MOUNT]
        argv = [QEMU_MOUNT, *argv]
    return bubblewrap.argv(exe, argv, root=["--ro-bind", str(box.rootfs), "/"], mounts=mounts,
                           network=box.network, tmp_mb=box.tmp_mb, chdir=box.chdir)


def describe(tmp_mb: int, memory_mb: int) -> str:
    """One line: the isolation a function gets on this machine, as this user."""
    ok, why = available()
    if not ok:
        return f"no sandbox ({why}): host Python, isolation mode, only the declared requirements"
    mem = (f"memory {memory_mb} MB ({memory_mode()})" if memory_mode().startswith("cgroup")
           else f"address space {memory_mb + AS_HEADROOM_MB} MB (RLIMIT_AS; no memory cgroup for this user)")
    return (f"sandbox: {why}, uid {SANDBOX_UID}, rootfs and /var/task read-only, /tmp {tmp_mb} MB, {mem}, "
            "own pid/mount/ipc/uts namespaces, network shared with the host")
