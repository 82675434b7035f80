"""#19.2: every registry read is bounded and verified (hostile server on 127.0.0.1).

Oversize manifests, configs, layers and error bodies stop at the bound with one line; blobs that
lie about their digest, or end early, are refused and nothing is kept; memory stays < 200 MB
while refusing an 800 MB blob declared at 1 KB (peak RSS of a client subprocess).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lambdaship.oci.client import RegistryClient
from lambdaship.oci.transport import ERROR_MAX, MANIFEST_MAX, RegistryError
from tests.hostile.registry_server import HostileServer, Request

MiB = 1024 * 1024
REPO = "r"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDASHIP_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("LAMBDASHIP_RETRY_WAIT", "0.01")


def endless(total: int, piece: int = MiB):
    chunk = b"\0" * piece
    for _ in range(total // piece):
        yield chunk


def one_line(exc: pytest.ExceptionInfo[RegistryError]) -> str:
    text = exc.value.one_line()
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.mark.parametrize("declare_length", [True, False])
def test_oversize_manifest_is_refused(declare_length: bool) -> None:
    big = json.dumps({"schemaVersion": 2, "pad": "x" * (MANIFEST_MAX + 10)}).encode()

    def app(req: Request) -> None:
        if declare_length:
            req.send(200, big, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        else:
            req.stream(200, [big[i:i + MiB] for i in range(0, len(big), MiB)])

    with HostileServer(app) as s, pytest.raises(RegistryError) as exc:
        RegistryClient(s.host).get_manifest(REPO, "latest")
    assert f"more than {MANIFEST_MAX:,} bytes" in one_line(exc) and s.host in one_line(exc)


def test_config_larger_than_its_descriptor_stops_at_the_descriptor() -> None:
    config = b'{"architecture":"amd64"}'

    def app(req: Request) -> None:
        req.stream(200, [config, *endless(20 * MiB)])

    with HostileServer(app) as s, pytest.raises(RegistryError) as exc:
        RegistryClient(s.host).get_blob(REPO, sha(config), len(config))
    assert f"larger than its declared {len(config):,} bytes" in one_line(exc)
    assert sha(config) in one_line(exc) and s.host in one_line(exc)


def test_config_declared_over_the_cap_is_refused_before_any_request() -> None:
    with HostileServer(lambda req: req.send(200, b"{}")) as s:
        with pytest.raises(RegistryError) as exc:
            RegistryClient(s.host).get_blob(REPO, sha(b"x"), 5 * MiB)
        assert s.seen == []
    assert "more than the 4,194,304 allowed" in one_line(exc)


@pytest.mark.parametrize("size", ["12", -1, True, 1.5, None])
def test_config_descriptor_with_a_bad_size(size: object) -> None:
    with HostileServer(lambda req: req.send(200, b"{}")) as s:
        if size is None:  # no size at all: the cap bounds it, the digest still checked
            assert RegistryClient(s.host).get_blob(REPO, sha(b"{}"), size) == b"{}"
            return
        with pytest.raises(RegistryError) as exc:
            RegistryClient(s.host).get_blob(REPO, sha(b"{}"), size)
        assert s.seen == []
    assert "invalid size" in one_line(exc)


def test_declared_content_length_over_the_descriptor_is_refused_at_once() -> None:
    def app(req: Request) -> None:  # claims 800 MB, sends nothing: we must not wait for it
        req.stream(200, [b""], {"Content-Length": str(800 * MiB)})

    with HostileServer(app) as s:
        t = time.monotonic()
        with pytest.raises(RegistryError) as exc:
            RegistryClient(s.host).get_blob(REPO, sha(b"x"), 1024)
        assert time.monotonic() - t < 5
        assert len([r for r in s.seen if r.method == "GET"]) == 1  # refused, not retried
    assert "larger than its declared 1,024 bytes" in one_line(exc)


def test_layer_larger_than_its_descriptor_leaves_nothing(tmp_path: Path) -> None:
    layer = b"L" * 4096

    def app(req: Request) -> None:
        req.stream(200, [layer, *endless(8 * MiB)])

    dest = tmp_path / "blobs" / "layer"
    with HostileServer(app) as s, pytest.raises(RegistryError) as exc:
        RegistryClient(s.host).download_blob(REPO, sha(layer), dest, size=len(layer))
    assert "larger than its declared 4,096 bytes" in one_line(exc)
    assert list(dest.parent.iterdir()) == []


def test_oversize_error_and_challenge_bodies_are_capped() -> None:
    def app(req: Request) -> None:
        req.stream(401 if "blobs" in req.path else 500, endless(50 * MiB),
                   {"WWW-Authenticate": 'Basic realm="x"'})

    with HostileServer(app) as s:
        client = RegistryClient(s.host)
        with pytest.raises(RegistryError) as exc:
            client.get_blob(REPO, sha(b"x"), 10)
        assert f"more than {ERROR_MAX:,} bytes" in one_line(exc)
        with pytest.raises(RegistryError) as exc:
            client.list_tags(REPO)
        assert f"more than {ERROR_MAX:,} bytes" in one_line(exc)


def test_lying_blob_digest(tmp_path: Path) -> None:
    wanted, served = b"the real layer", b"an evil layer!"
    assert len(wanted) == len(served)
    with HostileServer(lambda req: req.send(200, served)) as s:
        client = RegistryClient(s.host)
        with pytest.raises(RegistryError) as exc:
            client.get_blob(REPO, sha(wanted), len(wanted))
        text = one_line(exc)
        assert f"blob {sha(wanted)} from {s.host}/{REPO} does not match its digest" in text
        with pytest.raises(RegistryError):
            client.download_blob(REPO, sha(wanted), tmp_path / "b", size=len(wanted))
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(RegistryError), client.stream_blob(REPO, sha(wanted), size=len(wanted)) as it:
            for _ in it:
                pass


def test_lying_manifest_digest() -> None:
    real = json.dumps({"schemaVersion": 2, "layers": []}).encode()
    other = json.dumps({"schemaVersion": 2, "layers": [], "x": 1}).encode()
    with HostileServer(lambda req: req.send(200, other)) as s, pytest.raises(RegistryError) as exc:
        RegistryClient(s.host).get_manifest(REPO, sha(real))
    assert f"for {REPO}@{sha(real)} with digest {sha(other)}" in one_line(exc)


def test_truncated_bodies_resume_then_fail_in_one_line() -> None:
    blob = bytes(range(256)) * 40

    def app(req: Request) -> None:  # announces the whole blob, sends half of what is asked, closes
        start = int(req.headers.get("range", "bytes=0-")[6:].rstrip("-") or 0)
        rest = blob[start:]
        req.stream(206 if start else 200, [rest[:len(rest) // 2]], {"Content-Length": str(len(rest))})

    with HostileServer(app) as s:
        with pytest.raises(RegistryError) as exc:
            RegistryClient(s.host).get_blob(REPO, sha(blob), len(blob))
        ranges = [r.headers.get("range") for r in s.seen]
    assert "kept failing mid-body" in one_line(exc)
    assert ranges[:2] == [None, f"bytes={len(blob) // 2}-"]  # resumed where the cut was


def test_blob_shorter_than_its_descriptor() -> None:
    blob = b"x" * 1000
    with HostileServer(lambda req: req.send(200, blob[:500])) as s, pytest.raises(RegistryError) as exc:
        RegistryClient(s.host).get_blob(REPO, sha(blob), len(blob))
    assert "ended after 500 of 1,000 bytes" in one_line(exc)


CLIENT = """
import resource, sys, time
from lambdaship.oci.client import RegistryClient
from lambdaship.oci.transport import RegistryError
t = time.monotonic()
try:
    RegistryClient(sys.argv[1]).get_blob("r", "sha256:" + "0" * 64, 1024)
    outcome = "accepted"
except RegistryError as exc:
    outcome = exc.one_line()
# VmHWM: this process's peak RSS. ru_maxrss also counts the forked parent's pages before exec.
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(hwm // 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, round(time.monotonic() - t, 3),
      outcome)
"""


@pytest.mark.parametrize("kind", ["config", "layer"])
def test_memory_stays_bounded_refusing_an_800_mb_blob(kind: str, tmp_path: Path, capsys) -> None:
    """A blob declared at 1 KB served as 800 MB (no Content-Length): refused after ~1 MB read."""
    served = {"bytes": 0}

    def app(req: Request) -> None:
        def body():
            for c in endless(800 * MiB):
                served["bytes"] += len(c)
                yield c
        req.stream(200, body())

    script = CLIENT if kind == "config" else CLIENT.replace(
        'get_blob("r", "sha256:" + "0" * 64, 1024)',
        f'download_blob("r", "sha256:" + "0" * 64, __import__("pathlib").Path({str(tmp_path / "b")!r}), size=1024)')
    with HostileServer(app) as s:
        proc = subprocess.run([sys.executable, "-c", script, s.host], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rss_mb, maxrss_mb, seconds, outcome = proc.stdout.split(" ", 3)
    assert "larger than its declared 1,024 bytes" in outcome
    assert int(rss_mb) < 200, proc.stdout
    with capsys.disabled():
        print(f"\n[figure] {kind}: 800 MB served, refused; client peak RSS {rss_mb} MB (VmHWM; ru_maxrss "
              f"{maxrss_mb} MB incl. the forked parent), {seconds} s, "
              f"server wrote {served['bytes'] // MiB} MiB before the client hung up")
