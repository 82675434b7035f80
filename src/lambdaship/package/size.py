"""Where the bytes of a Lambda package go, measured against Lambda's limits.

Measurement (see docs/design-zip.md):

- *unzipped*: the sum of the file sizes in the installed dependency tree (the one
  ``lambdaship.package.deps.install(fn, target="lambda")`` produces, shared with image builds) and of the
  app's files (``lambdaship.project.app_files``).
- *zipped*: each file is really compressed (raw deflate, zlib level 9), exactly as
  :mod:`lambdaship.package.archive` writes the deploy zip; a row's zipped size is the sum of its entries'
  compressed sizes plus their zip headers (local + central), so the rows plus the 22-byte end
  record add up to the size of the zip a deploy uploads, to the byte.
- files are attributed to distributions through each ``*.dist-info/RECORD``; files listed in no
  RECORD (e.g. installer lock files) are shown as "(other files)".
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdaship.package import archive, zipplan
from lambdaship.package.dists import Dist, pyc_source, read_dists
from lambdaship.package.requirements import canonical_name, requirement_name

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

# What the Lambda Python runtimes ship in /var/runtime: the AWS SDK for Python and its
# dependencies ("Runtime-included SDK versions",
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html#python-sdk-included).
# AWS recommends packaging your own SDK when you need a specific version; leaving these out only
# works when your code is happy with the runtime's versions.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
RUNTIME_SOURCE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html#python-sdk-included"
APP = "(app code)"
OTHER = "(other files)"


@dataclass
class Row:
    """One distribution (or the app / unattributed files)."""

    name: str
    version: str = ""
    kind: str = "dependency"  # dependency | runtime-provided | app | other
    files: int = 0
    size: int = 0
    zipped: int = 0
    direct: bool = False
    required_by: list[str] = field(default_factory=list)


@dataclass
class Limit:
    name: str
    limit: int
    value: int
    fits: bool
    measures: str


@dataclass
class SizeReport:
    function: str
    python: str
    architecture: str
    deps_hash: str
    rows: list[Row]
    deps_size: int
    deps_zipped: int
    app_size: int
    app_zipped: int
    unzipped_size: int
    zip_size: int
    files: int
    runtime_provided: dict[str, Any]
    limits: list[Limit]
    recommendation: dict[str, str]
    # an image's layers above the base: dependency layers (package.layers: name, packages, unpacked size,
    # entries; the split of the config's layer_split_mb), then the app's
    layers: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["units"] = "bytes"
        data["runtime_provided"]["source"] = RUNTIME_SOURCE
        return data


def _required_by(dists: list[Dist], direct: set[str]) -> dict[str, list[str]]:
    graph = {canonical_name(d.name): d.requires for d in dists}
    result: dict[str, set[str]] = {}
    for top in sorted(direct):
        seen, stack = set(), [top]
        while stack:
            cur = stack.pop()
            if cur in seen or cur not in graph:
                continue
            seen.add(cur)
            stack.extend(graph[cur])
        for name in seen - {top}:
            result.setdefault(name, set()).add(top)
    return {k: sorted(v) for k, v in result.items()}


def _top_level_owners(owner: dict[str, Row]) -> dict[str, Row]:
    """Top-level directory → the distribution that owns most of its recorded files."""
    counts: dict[str, dict[int, int]] = {}
    rows: dict[int, Row] = {}
    for path, row in owner.items():
        if "/" in path:
            top = path.split("/", 1)[0]
            counts.setdefault(top, {}).setdefault(id(row), 0)
            counts[top][id(row)] += 1
            rows[id(row)] = row
    return {top: rows[max(c, key=lambda k: c[k])] for top, c in counts.items()}


# ---- the analysis -------------------------------------------------------------------------------
def analyze(fn: FunctionConfig) -> SizeReport:
    """Install (or reuse) the function's dependencies for Lambda and measure them and the app."""
    from lambdaship import project
    from lambdaship.package import deps, requirements

    installed = deps.install(fn, target="lambda")
    req = requirements.requirements_file(fn)
    direct = sorted(requirements.named_requirements(req.read_text(encoding="utf-8"))) if req else []
    app = project.app_files(fn)
    project.warn_access_keys(app)  # files that look like credentials, by name only
    report = analyze_tree(
        Path(installed.path),
        app,
        deps_hash=installed.hash,
        requirements=direct,
        pruned=list(getattr(installed, "pruned", ())),
        function=fn.function_name,
        python=fn.python,
        architecture=fn.platform.architecture.value,
        zip_bucket=fn.zip_bucket,
    )
    report.layers = image_layers(Path(installed.path), report, fn.layer_split_mb)
    rec = report.recommendation
    if fn.package_type != "auto":
        rec["note"] = f'package_type = "{fn.package_type}" in the config decides the deploy'
    elif fn.base_image and rec["package_type"] == "zip":
        rec["note"] = "package_type auto deploys an image anyway: base_image is set"
    return report


def image_layers(tree: Path, report: SizeReport, split_mb: float) -> list[dict[str, Any]]:
    """The layers an image build adds to the base: the dependency layers of ``tree`` (at most
    ``MAX_SPLIT_LAYERS`` split off; a base with very many layers leaves room for fewer), then the app."""
    from lambdaship.package.layers import MAX_SPLIT_LAYERS, split_tree, threshold_bytes

    groups = split_tree(tree, threshold_bytes(split_mb), MAX_SPLIT_LAYERS)
    app = next((r for r in report.rows if r.kind == "app"), None)
    return [*(g.to_json() for g in groups),
            {"name": "app", "packages": [], "size": report.app_size, "entries": app.files if app else 0}]


def _entries(deps_dir: Path, deps_hash: str | None, app: list[tuple[str, Path]]) -> tuple[dict, dict]:
    """The zip entries of the dependency part (the cached deps zip a deploy uses) and of the app."""
    with tempfile.TemporaryDirectory(prefix="lambdaship-size-") as tmp:
        if deps_hash:
            deps_zip = archive.deps_zip(deps_dir, deps_hash).path
        else:
            deps_zip = archive.write_zip(Path(tmp, "deps.zip"), archive.tree_files(deps_dir)).path
        dep_entries = archive.read_entries(deps_zip)
        app_entries = archive.read_entries(archive.write_zip(Path(tmp, "app.zip"), app).path) if app else {}
    return dep_entries, app_entries


def _rows(deps_dir: Path, dep_entries: dict, app_entries: dict,
          requirements: list[str] | None) -> tuple[list[Row], Row]:
    """Every zip entry attributed to a distribution (RECORD, its .py for a .pyc, the top-level
    directory's main owner, else "(other files)"); rows sorted by size, and the app's row."""
    direct = {n for r in (requirements or []) if (n := requirement_name(r))}
    dists = read_dists(deps_dir)
    req_by = _required_by(dists, direct)
    runtime = {canonical_name(n) for n in RUNTIME_PROVIDED}
    owner: dict[str, Row] = {}
    rows: list[Row] = []
    for d in dists:
        cname = canonical_name(d.name)
        row = Row(
            d.name, d.version, "runtime-provided" if cname in runtime else "dependency",
            direct=cname in direct, required_by=req_by.get(cname, []),
        )
        rows.append(row)
        for p in d.paths:
            owner.setdefault(p, row)
    other = Row(OTHER, kind="other")
    app_row = Row(APP, kind="app")
    by_top = _top_level_owners(owner)
    for name, e in dep_entries.items():
        if name in app_entries:
            continue  # the app's file replaces it in the package
        row = owner.get(name) or owner.get(pyc_source(name)) or by_top.get(name.split("/", 1)[0]) or other
        _count(row, name, e)
    for name, e in app_entries.items():
        _count(app_row, name, e)
    rows = [r for r in rows if r.files] + [r for r in (other,) if r.files]
    rows.sort(key=lambda r: (-r.size, r.name.lower()))
    return rows, app_row


def _count(row: Row, name: str, entry: Any) -> None:
    row.files += 1
    row.size += entry.size
    row.zipped += entry.compressed_size + archive.entry_overhead(name)


def _limits(zip_size: int, unzipped: int) -> list[Limit]:
    return [
        Limit("zip direct upload", zipplan.ZIP_DIRECT_LIMIT, zip_size, zip_size <= zipplan.ZIP_DIRECT_LIMIT, "zipped"),
        Limit("zip unzipped (incl. layers)", zipplan.ZIP_UNZIPPED_LIMIT, unzipped,
              unzipped <= zipplan.ZIP_UNZIPPED_LIMIT, "unzipped"),
        Limit("container image", zipplan.IMAGE_LIMIT, unzipped, unzipped <= zipplan.IMAGE_LIMIT,
              "unzipped, excluding the base image"),
    ]


def _recommend(zip_size: int, unzipped: int, zip_bucket: str | None, rp: list[Row],
               runtime_info: dict[str, Any]) -> dict[str, str]:
    """Zip (direct or S3) or image for these sizes, with the alternatives that would also fit."""
    decision = zipplan.decide(zip_size, unzipped, zip_bucket, requested="auto")
    rec = {"package_type": decision.package_type, "upload": decision.upload, "reason": decision.reason}
    alternatives = []
    if decision.package_type == "image" and unzipped <= zipplan.ZIP_UNZIPPED_LIMIT and not zip_bucket:
        alternatives.append("a zip uploaded through S3 would fit: set zip_bucket (or deploy with --zip-bucket)")
    if (
        decision.package_type == "image" and rp
        and runtime_info["unzipped_size_without"] <= zipplan.ZIP_UNZIPPED_LIMIT
        and runtime_info["zip_size_without"] <= zipplan.ZIP_DIRECT_LIMIT
    ):
        alternatives.append(
            f"without the runtime-provided packages ({', '.join(r.name for r in rp)}) it would fit a "
            f"direct zip upload ({zipplan.mib(runtime_info['zip_size_without'])} zipped)"
        )
    if alternatives:
        rec["alternative"] = "; ".join(alternatives)
    return rec


def analyze_tree(
    deps_dir: Path,
    app: list[tuple[str, Path]],
    *,
    deps_hash: str | None = None,
    requirements: list[str] | None = None,
    pruned: list[str] | None = None,
    function: str = "",
    python: str = "",
    architecture: str = "",
    zip_bucket: str | None = None,
) -> SizeReport:
    """Measure an installed dependency tree plus app files (no network).

    ``requirements``: the names the user asked for (marked "direct"); ``pruned``: runtime-provided
    packages the installer already left out (reported, not measured).
    """
    dep_entries, app_entries = _entries(deps_dir, deps_hash, app)
    rows, app_row = _rows(deps_dir, dep_entries, app_entries, requirements)
    deps_size = sum(r.size for r in rows)
    deps_zipped = sum(r.zipped for r in rows)
    unzipped = deps_size + app_row.size
    zip_size = deps_zipped + app_row.zipped + archive.END_OVERHEAD
    rp = [r for r in rows if r.kind == "runtime-provided"]
    rp_size, rp_zipped = sum(r.size for r in rp), sum(r.zipped for r in rp)
    runtime_info = {
        "packages": [r.name for r in rp],
        "already_left_out": sorted(pruned or []),
        "size": rp_size,
        "zipped": rp_zipped,
        "zip_size_without": zip_size - rp_zipped,
        "unzipped_size_without": unzipped - rp_size,
    }
    return SizeReport(
        function=function, python=python, architecture=architecture, deps_hash=deps_hash or "",
        rows=[*rows, app_row], deps_size=deps_size, deps_zipped=deps_zipped, app_size=app_row.size,
        app_zipped=app_row.zipped, unzipped_size=unzipped, zip_size=zip_size,
        files=sum(r.files for r in rows) + app_row.files, runtime_provided=runtime_info,
        limits=_limits(zip_size, unzipped), recommendation=_recommend(zip_size, unzipped, zip_bucket, rp, runtime_info),
    )
