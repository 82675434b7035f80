"""The sandbox a package's own code runs in when lambdaship needs it to: resolving and building a
pure-Python source distribution from the index (:mod:`lambdaship.package.sdists`). Nothing of
the sort runs on the host: without bubblewrap it is refused (:func:`require`).

What the code inside sees (bubblewrap, via :func:`lambdaship.bubblewrap.argv`):

* ``/`` an empty read-only tmpfs; read-only on it: ``/usr`` (and the ``/bin``, ``/lib*``
  links or directories), ``/etc/ld.so.cache``, the CA certificates (``SSL_CERT_FILE``,
  ``SSL_CERT_DIR``, ``/etc/ssl/certs``), generated ``/etc/hosts``/``passwd``/``group``, the
  interpreter's prefix (e.g. ``/root/.pyenv/versions/3.12.1``, never a directory holding the
  home), the uv binary, and the input files the caller adds (:meth:`BuildBox.add_file`,
  :meth:`BuildBox.add_text`);
* writable: ``/build`` (a fresh scratch directory: ``home``, ``cache`` (uv's, its own),
  ``in``, ``out``) and a capped ``/tmp``; nothing else of the host, so no home directory
  (``~/.aws``, ``~/.docker``, ``~/.ssh``, ``~/.netrc``, ``~/.config/uv``), no project files
  but the inputs;
* the environment: a fixed one (``PATH``, ``HOME=/build/home``, uv's settings, the index URLs
  without credentials, TLS certificate settings); nothing inherited;
* the network: a namespace of its own; out only through :class:`lambdaship.package.egress.Egress`
  (the index hosts; a plain-http index on loopback).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lambdaship import bubblewrap
from lambdaship.errors import LambdashipError
from lambdaship.package.egress import Egress

WORK = "/build"
NET = "/run/lambdaship"
FORWARD = "/opt/lambdaship/egress_forward.py"
TMP_MB = 1024
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01: reproducible wheels
PASS_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT", "UV_CONCURRENT_DOWNLOADS")
HINT = ("install bubblewrap (apt-get install bubblewrap) with user namespaces enabled, or vendor a wheel built "
        "for the target (a directory of .whl files and '--find-links <dir>' in the requirements file)")


def require(what: str) -> None:
    """Refuse (one line) when the sandbox cannot run here: ``what`` would run its code on the host."""
    ok, why = bubblewrap.available()
    if not ok:
        raise LambdashipError(f"{what} runs the package's own code, which lambdaship runs only in the bubblewrap "
                              f"sandbox; the sandbox is not available: {why}", HINT)


@dataclass(frozen=True)
class Network:
    allow: frozenset[tuple[str, int]] = frozenset()  # CONNECT targets (https)
    direct: frozenset[int] = frozenset()  # plain-http loopback ports, forwarded as they are
    env: dict[str, str] = field(default_factory=dict)  # index settings for uv inside


def _python_binds(python: str) -> list[str]:
    """The interpreter's prefixes, read-only; a prefix that is ``/`` or holds the home directory
    is narrowed to its ``lib/pythonX.Y``, its shared library and the executable."""
    probe = ("import sys, sysconfig; print(sys.prefix); print(sys.base_prefix); "
             "print(sysconfig.get_config_var('LIBDIR') or ''); print('%d.%d' % sys.version_info[:2])")
    out = subprocess.run([python, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=30)
    prefix, base, libdir, version = [*out.stdout.splitlines(), "", "", "", ""][:4]
    home = Path.home().resolve()
    paths: list[Path] = [Path(os.path.realpath(python))]
    for p in {Path(prefix), Path(base)} - {Path("")}:
        p = p.resolve()
        if p == Path("/usr") or Path("/usr") in p.parents:
            continue
        if p == Path("/") or p == home or p in home.parents:
            paths += [p / "lib" / f"python{version}", *Path(libdir or p / "lib").glob("libpython*.so*")]
        else:
            paths.append(p)
    return [arg for p in dict.fromkeys(paths) if p.exists() for arg in ("--ro-bind", str(p), str(p))]


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    certs = [os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"), "/etc/ssl/certs", "/etc/ld.so.cache"]
    for path in dict.fromkeys(c for c in certs if c and os.path.exists(c)):
        args += ["--ro-bind", path, path]
    return args


class BuildBox:
    """One scratch directory, one egress, any number of :meth:`run` calls (``with BuildBox(...)``)."""

    def __init__(self, python: str, uv: str, *, network: Network | None = None) -> None:
        self.python = os.path.realpath(python)
        self.uv = os.path.realpath(uv)
        self.network = network or Network()
        self.scratch = Path(tempfile.mkdtemp(prefix="lambdaship-build-"))
        self.inputs: dict[str, Path] = {}  # path inside -> host file, bound read-only
        self.egress: Egress | None = None

    def __enter__(self) -> BuildBox:
        for d in ("work/home", "work/cache", "work/in", "work/out", "etc"):
            (self.scratch / d).mkdir(parents=True)
        uid = bubblewrap.SANDBOX_UID
        (self.scratch / "etc" / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        (self.scratch / "etc" / "passwd").write_text(f"sbx_user1051:x:{uid}:{uid}::{WORK}/home:/sbin/nologin\n")
        (self.scratch / "etc" / "group").write_text(f"sbx_user1051:x:{uid}:\n")
        self.egress = Egress(self.scratch / "net", set(self.network.allow), set(self.network.direct))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.egress is not None:
            self.egress.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def add_file(self, path: Path) -> None:
        """Bind the host file ``path`` read-only at its own (absolute) path."""
        self.inputs[os.path.abspath(path)] = path

    def add_text(self, inside: Path, text: str) -> None:
        """A file of ``text`` at ``inside`` (read-only), e.g. a requirements file without credentials."""
        copy = self.scratch / "inputs" / str(len(self.inputs))
        copy.parent.mkdir(exist_ok=True)
        copy.write_text(text, encoding="utf-8")
        self.inputs[os.path.abspath(inside)] = copy

    def path(self, inside: str) -> Path:
        """The host path of ``/build/<inside>``."""
        return self.scratch / "work" / inside

    def _mounts(self) -> list[str]:
        args = _system_binds()
        for name in ("hosts", "passwd", "group"):
            args += ["--ro-bind", str(self.scratch / "etc" / name), f"/etc/{name}"]
        args += _python_binds(self.python)
        args += ["--ro-bind", self.uv, self.uv]
        args += ["--ro-bind", str(Path(__file__).with_name("egress_forward.py")), FORWARD]
        for inside, host in self.inputs.items():
            args += ["--ro-bind", str(host), inside]
        args += ["--ro-bind", str(self.scratch / "net"), NET, "--bind", str(self.scratch / "work"), WORK]
        return [*args, "--remount-ro", "/"]

    def env(self) -> dict[str, str]:
        env = {"PATH": f"{Path(self.python).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": f"{WORK}/home",
               "TMPDIR": "/tmp", "LANG": "C.UTF-8", "UV_CACHE_DIR": f"{WORK}/cache", "UV_NO_CONFIG": "1",
               "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        env |= {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        return env | self.network.env

    def run(self, argv: list[str], *, cwd: str = WORK, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``argv`` inside the sandbox (uv as :attr:`uv`); a timeout is returncode -9."""
        exe = bubblewrap.bwrap()
        if exe is None or self.egress is None:
            raise LambdashipError("internal: the build sandbox is not set up")
        config = json.dumps(self.egress.config(NET))
        command = [self.python, "-I", "-S", FORWARD, config, *argv]
        cmd = bubblewrap.argv(exe, command, mounts=self._mounts(), network=False, tmp_mb=TMP_MB, chdir=cwd)
        try:
            return subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return subprocess.CompletedProcess(cmd, -9, out, f"error: timed out after {timeout:.0f} s")


def interpreter(version: str) -> str:
    """An interpreter of the target version for the build (the running one when there is none)."""
    from lambdaship.package.bytecode import find_interpreter

    return find_interpreter(version) or sys.executable
