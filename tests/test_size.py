"""``lambdaship size``: figures checked against independent measurements; the HTML report in Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from lambdaship import project
from lambdaship.config import load_project
from lambdaship.package import archive, deps
from tests.conftest import EXAMPLES, run_cli

REQUIREMENTS = "humanize==4.12.3\nrequests==2.32.3\nboto3==1.35.99\nbotocore==1.35.99\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The handler example with requests (transitive deps) and boto3 + botocore (shipped by the runtime;
    named, so the installer keeps them; their other dependencies are left out by deps.install)."""
    dest = tmp_path_factory.mktemp("size") / "app"
    shutil.copytree(EXAMPLES / "handler-app", dest)
    (dest / "requirements.txt").write_text(REQUIREMENTS)
    return dest


@pytest.fixture(scope="module")
def report(app: Path) -> dict:
    proc = run_cli("size", "--json", cwd=app)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_totals_match_an_independent_measurement_of_the_installed_tree(app: Path, report: dict, tmp_path: Path):
    fn = load_project(app).function()
    installed = deps.install(fn, target="lambda")  # the same cached tree the command measured
    tree = Path(installed.path)
    walked = 0
    for dirpath, _dirs, files in os.walk(tree):
        walked += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    app_files = project.app_files(fn)
    app_bytes = sum(p.stat().st_size for _, p in app_files)
    assert report["deps_size"] == walked
    assert report["app_size"] == app_bytes
    assert report["unzipped_size"] == walked + app_bytes
    assert sum(r["size"] for r in report["rows"]) == report["unzipped_size"]

    # Python's own zipfile, deflate level 9, every file of the tree and the app: same byte count.
    ref = tmp_path / "ref.zip"
    with zipfile.ZipFile(ref, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for dirpath, _dirs, files in os.walk(tree):
            for f in files:
                p = Path(dirpath, f)
                zf.write(p, p.relative_to(tree).as_posix())
        for arc, p in app_files:
            zf.write(p, arc)
    with zipfile.ZipFile(ref) as zf:
        assert sum(i.file_size for i in zf.infolist()) == report["unzipped_size"]
        compressed = sum(i.compress_size for i in zf.infolist())
    assert report["zip_size"] == ref.stat().st_size
    assert report["deps_zipped"] + report["app_zipped"] + archive.END_OVERHEAD == report["zip_size"]
    assert compressed < report["zip_size"]
    assert sum(r["zipped"] for r in report["rows"]) + archive.END_OVERHEAD == report["zip_size"]
    # ... and exactly the size of the zip a deploy would upload.
    assert archive.build_zip(fn).size == report["zip_size"]


def test_rows_follow_the_dist_info_records(app: Path, report: dict):
    fn = load_project(app).function()
    tree = Path(deps.install(fn, target="lambda").path)
    rows = {r["name"]: r for r in report["rows"]}
    assert {"humanize", "requests", "boto3", "botocore", "idna", "certifi", "(app code)"} <= set(rows)
    (info,) = tree.glob("requests-*.dist-info")
    recorded = [ln.split(",")[0] for ln in (info / "RECORD").read_text().splitlines() if ln.strip()]
    files = [tree / r for r in recorded if (tree / r).is_file()]
    pyc = list((tree / "requests").rglob("*.pyc"))  # compiled after install, attributed to requests
    assert rows["requests"]["size"] == sum(p.stat().st_size for p in files + [p for p in pyc if p not in files])
    assert rows["requests"]["direct"] and rows["requests"]["version"] == "2.32.3"
    assert rows["idna"]["required_by"] == ["requests"] and not rows["idna"]["direct"]
    assert rows["botocore"]["kind"] == "runtime-provided" and rows["botocore"]["direct"]
    assert "boto3" in rows["botocore"]["required_by"]
    assert rows["humanize"]["kind"] == "dependency"
    assert report["rows"][-1]["name"] == "(app code)"


def test_runtime_provided_savings_and_recommendation(app: Path, report: dict):
    rp = report["runtime_provided"]
    pruned = deps.install(load_project(app).function(), target="lambda").pruned
    assert rp["already_left_out"] == sorted(pruned)
    assert "urllib3" in rp["already_left_out"]  # only a transitive dependency here
    rows = {r["name"]: r for r in report["rows"]}
    shipped = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
    assert set(rp["packages"]) == {n for n in rows if n in shipped}
    assert {"boto3", "botocore"} <= set(rp["packages"])
    assert rp["size"] == sum(rows[n]["size"] for n in rp["packages"])
    assert rp["zipped"] == sum(rows[n]["zipped"] for n in rp["packages"])
    assert rp["zip_size_without"] == report["zip_size"] - rp["zipped"]
    assert rp["source"].startswith("https://docs.aws.amazon.com/lambda/")
    limits = {x["name"]: x for x in report["limits"]}
    assert limits["zip direct upload"]["limit"] == 50 * 1024 * 1024
    assert limits["zip direct upload"]["value"] == report["zip_size"] and limits["zip direct upload"]["fits"]
    assert limits["zip unzipped (incl. layers)"]["limit"] == 250 * 1024 * 1024
    assert limits["container image"]["limit"] == 10 * 1024**3
    assert report["recommendation"]["package_type"] == "zip"
    assert report["recommendation"]["upload"] == "direct"
    assert "fits a direct zip upload" in report["recommendation"]["reason"]


def test_table_output(app: Path, report: dict):
    proc = run_cli("size", cwd=app, env={"COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"botocore\s+│\s+\S+\s+│\s+\d+\s+│\s+[\d.]+ MiB", out)
    assert "in the Lambda runtime" in out and "via requests" in out
    assert "Left out already" in out
    assert "Recommendation: zip (direct)" in out
    assert "Already in the Lambda Python runtime:" in out


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("chromium is not installed (scripts/install.sh installs the Debian 'chromium' package)")
    return exe


def _chromium_args(tmp_path: Path) -> list[str]:
    return [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
    ]


def test_html_report_renders_its_chart_in_headless_chromium(app: Path, report: dict, tmp_path: Path):
    page = tmp_path / "out" / "size.html"
    proc = run_cli("size", "--html", str(page), "--json", cwd=app)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["html"] == str(page.resolve())
    source = page.read_text()
    # self-contained: no external scripts, styles, fonts or images
    assert not re.search(r"<script[^>]+src=|<link\b|@import|url\(|<img\b", source)
    assert "<rect" not in source  # the bars are drawn by the inline script, not written by Python

    dom = subprocess.run(
        [*_chromium_args(tmp_path), "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    bars = re.findall(r'<rect class="bar" [^>]*data-bytes="(\d+)"', html)
    assert len(bars) == len(report["rows"])
    assert sorted(int(b) for b in bars) == sorted(r["size"] for r in report["rows"])
    assert len(re.findall(r'<rect class="limit-bar"', html)) == 3
    assert f'data-rendered="{len(report["rows"])}"' in html
    assert re.search(r'<g class="row" data-name="botocore">', html)

    shot = tmp_path / "shot.png"
    res = subprocess.run(
        [*_chromium_args(tmp_path), "--window-size=1100,900", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_unknown_function_is_a_config_error(app: Path):
    proc = run_cli("size", "-f", "nope", cwd=app)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no function 'nope'")


def test_size_measures_the_configured_target_and_takes_the_build_flags(tmp_path: Path) -> None:
    """`size` measures what deploy would ship: the config's Python/architecture, and the same flags
    (--python, --architecture, …) override them the same way (it used to measure 3.12 whatever deploy used)."""
    (tmp_path / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (tmp_path / "lambdaship.toml").write_text('function_name = "sized"\nhandler = "handler.handler"\npython = "3.11"\n')
    from lambdaship.package.deps import plan

    configured = json.loads(run_cli("size", "--json", cwd=tmp_path).stdout)
    assert (configured["python"], configured["architecture"]) == ("3.11", "x86_64")
    assert configured["deps_hash"] == plan(load_project(tmp_path).function()).hash
    proc = run_cli("size", "--json", "--python", "3.13", "--architecture", "arm64", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    flagged = json.loads(proc.stdout)
    assert (flagged["python"], flagged["architecture"]) == ("3.13", "arm64")
    fn = load_project(tmp_path, {"python": "3.13", "architecture": "arm64"}).function()
    assert flagged["deps_hash"] == plan(fn).hash != configured["deps_hash"]
