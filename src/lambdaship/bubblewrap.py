"""bubblewrap (``bwrap``): whether this machine can run it, and the one place its command line is
made. Two sandboxes compose it: :mod:`lambdaship.local.sandbox` (a function's runtime on its
image's rootfs) and :mod:`lambdaship.package.buildbox` (an sdist's build on a few read-only host
directories). Both get, from :func:`argv`:

* new user, pid, mount, ipc, uts and cgroup namespaces (``--unshare-all``); the network
  namespace is shared with the host only when asked (``network=True``);
* uid/gid 993 (Lambda's sandbox user), no capabilities, no nested user namespaces, a new session
  (no TIOCSTI into the caller's terminal), killed with its parent;
* ``/dev`` minimal, ``/proc`` of its own pid namespace with Docker's masked / read-only paths
  (as root the sandbox's uid 993 is the host's uid 0 without capabilities, and root-owned files
  such as ``/proc/sys/kernel/core_pattern`` only check ownership), ``/tmp`` a capped tmpfs.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

SANDBOX_UID = 993
DISABLE_ENV = "LAMBDASHIP_SANDBOX"  # "none": no namespaces (what macOS gets)

PROC_READ_ONLY = ("sys", "fs", "bus", "irq")
PROC_MASKED_FILES = ("sysrq-trigger", "kcore", "keys", "latency_stats", "timer_list", "timer_stats", "sched_debug",
                     "kallsyms", "kmsg", "config.gz", "vmallocinfo", "slabinfo")
PROC_MASKED_DIRS = ("acpi", "asound", "scsi", "driver")


def bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def available() -> tuple[bool, str]:
    """Can this machine run the sandbox? (True, "bwrap X") or (False, why)."""
    if os.environ.get(DISABLE_ENV) == "none":
        return False, f"{DISABLE_ENV}=none"
    if not Path("/proc/self/ns/user").exists():
        return False, "this system has no Linux user namespaces"
    exe = bwrap()
    if exe is None:
        return False, "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)"
    proc = subprocess.run([exe, "--unshare-all", "--uid", str(SANDBOX_UID), "--ro-bind", "/", "/", "--", "/bin/true"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return False, f"bwrap cannot create a user namespace: {proc.stderr.strip()[-160:]}"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    return True, version or "bwrap"


@functools.cache
def proc_masks() -> tuple[str, ...]:
    out: list[str] = []
    for name in PROC_READ_ONLY:
        if Path("/proc", name).exists():
            out += ["--ro-bind", f"/proc/{name}", f"/proc/{name}"]
    for name in PROC_MASKED_FILES:
        if Path("/proc", name).exists():
            out += ["--ro-bind", "/dev/null", f"/proc/{name}"]
    for name in PROC_MASKED_DIRS:
        if Path("/proc", name).is_dir():
            out += ["--tmpfs", f"/proc/{name}", "--remount-ro", f"/proc/{name}"]
    return tuple(out)


def argv(exe: str, command: Sequence[str], *, root: Sequence[str] = (), mounts: Sequence[str] = (),
         network: bool = False, tmp_mb: int = 512, chdir: str = "/") -> list[str]:
    """The bwrap argv running ``command``: ``root`` (bwrap arguments making ``/``; none: an empty
    tmpfs), then ``/dev``, ``/proc``, ``/tmp``, then ``mounts`` (bwrap arguments, in order). The
    environment is whatever the caller's Popen is given."""
    return [exe, "--unshare-all", "--unshare-user", *(["--share-net"] if network else []), "--disable-userns",
            "--die-with-parent", "--new-session",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "localhost",
            *root,
            "--dev", "/dev", "--proc", "/proc",
            "--perms", "1777", "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", "/tmp",
            *proc_masks(), *mounts,
            "--cap-drop", "ALL", "--chdir", chdir, "--", *command]
