"""Where the bytes of a Lambda package go, measured against Lambda's limits.

Measurement (see docs/design-zip.md):

- *unzipped*: the sum of the file sizes in the installed dependency tree (the one
  ``lambdaship.deps.install(fn, target="lambda")`` produces, shared with image builds) and of the
  app's files (``lambdaship.project.app_files``).
- *zipped*: each file is really compressed (raw deflate, zlib level 9), exactly as
  :mod:`lambdaship.zippkg` writes the deploy zip; a row's zipped size is the sum of its entries'
  compressed sizes plus their zip headers (local + central), so the rows plus the 22-byte end
  record add up to the size of the zip a deploy uploads, to the byte.
- files are attributed to distributions through each ``*.dist-info/RECORD``; files listed in no
  RECORD (e.g. installer lock files) are shown as "(other files)".
"""

from __future__ import annotations

import csv
import email.parser
import html
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdaship import zippkg

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


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> str | None:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return canonical(m.group(1)) if m else None


mib = zippkg._mib


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

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["units"] = "bytes"
        data["runtime_provided"]["source"] = RUNTIME_SOURCE
        return data


# ---- distribution metadata ---------------------------------------------------------------------
@dataclass
class _Dist:
    name: str
    version: str
    requires: list[str]
    paths: list[str]


def _read_dists(root: Path) -> list[_Dist]:
    out = []
    for info in sorted(root.glob("*.dist-info")):
        if not info.is_dir():
            continue
        name, version, requires = info.name.removesuffix(".dist-info"), "", []
        if "-" in name:
            name, version = name.rsplit("-", 1)
        meta = info / "METADATA"
        if meta.is_file():
            headers = email.parser.HeaderParser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
            name = str(headers.get("Name") or name).strip()
            version = str(headers.get("Version") or version).strip()
            for value in headers.get_all("Requires-Dist") or []:
                if not re.search(r"\bextra\s*==", str(value)) and (r := _req_name(str(value))) is not None:
                    requires.append(r)
        paths: list[str] = []
        record = info / "RECORD"
        if record.is_file():
            with record.open(newline="", encoding="utf-8", errors="replace") as fh:
                for row in csv.reader(fh):
                    if not row or not row[0]:
                        continue
                    rel = os.path.normpath(row[0]).replace(os.sep, "/")
                    if not rel.startswith("../"):
                        paths.append(rel)
        out.append(_Dist(name, version, requires, paths))
    return out


def _required_by(dists: list[_Dist], direct: set[str]) -> dict[str, list[str]]:
    graph = {canonical(d.name): d.requires for d in dists}
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


def _pyc_source(name: str) -> str:
    """``pkg/__pycache__/mod.cpython-312.pyc`` → ``pkg/mod.py`` (bytecode compiled after install)."""
    parts = name.split("/")
    if len(parts) >= 2 and parts[-2] == "__pycache__" and parts[-1].endswith(".pyc"):
        module = parts[-1].split(".", 1)[0]
        return "/".join([*parts[:-2], module + ".py"])
    return ""


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
    from lambdaship import deps, project

    installed = deps.install(fn, target="lambda")
    req = deps.requirements_file(fn)
    direct = sorted(deps.named_requirements(req.read_text(encoding="utf-8"))) if req else []
    report = analyze_tree(
        Path(installed.path),
        project.app_files(fn),
        deps_hash=installed.hash,
        requirements=direct,
        pruned=list(getattr(installed, "pruned", ())),
        function=fn.function_name,
        python=fn.python,
        architecture=fn.architecture,
        zip_bucket=fn.zip_bucket,
    )
    rec = report.recommendation
    if fn.package_type != "auto":
        rec["note"] = f'package_type = "{fn.package_type}" in the config decides the deploy'
    elif fn.base_image and rec["package_type"] == "zip":
        rec["note"] = "package_type auto deploys an image anyway: base_image is set"
    return report


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
    with tempfile.TemporaryDirectory(prefix="lambdaship-size-") as tmp:
        if deps_hash:
            deps_zip = zippkg.deps_zip(deps_dir, deps_hash).path
        else:
            deps_zip = zippkg.write_zip(Path(tmp, "deps.zip"), zippkg.tree_files(deps_dir)).path
        dep_entries = zippkg.read_entries(deps_zip)
        app_entries = zippkg.read_entries(zippkg.write_zip(Path(tmp, "app.zip"), app).path) if app else {}

    direct = {n for r in (requirements or []) if (n := _req_name(r))}
    dists = _read_dists(deps_dir)
    req_by = _required_by(dists, direct)
    runtime = {canonical(n) for n in RUNTIME_PROVIDED}
    owner: dict[str, Row] = {}
    rows: list[Row] = []
    for d in dists:
        cname = canonical(d.name)
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
        row = owner.get(name) or owner.get(_pyc_source(name)) or by_top.get(name.split("/", 1)[0]) or other
        row.files += 1
        row.size += e.size
        row.zipped += e.compressed_size + zippkg.entry_overhead(name)
    for name, e in app_entries.items():
        app_row.files += 1
        app_row.size += e.size
        app_row.zipped += e.compressed_size + zippkg.entry_overhead(name)
    rows = [r for r in rows if r.files] + [r for r in (other,) if r.files]
    rows.sort(key=lambda r: (-r.size, r.name.lower()))
    deps_size = sum(r.size for r in rows)
    deps_zipped = sum(r.zipped for r in rows)
    unzipped = deps_size + app_row.size
    zip_size = deps_zipped + app_row.zipped + zippkg.END_OVERHEAD
    files = sum(r.files for r in rows) + app_row.files

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
    limits = [
        Limit("zip direct upload", zippkg.ZIP_DIRECT_LIMIT, zip_size, zip_size <= zippkg.ZIP_DIRECT_LIMIT, "zipped"),
        Limit("zip unzipped (incl. layers)", zippkg.ZIP_UNZIPPED_LIMIT, unzipped,
              unzipped <= zippkg.ZIP_UNZIPPED_LIMIT, "unzipped"),
        Limit("container image", zippkg.IMAGE_LIMIT, unzipped, unzipped <= zippkg.IMAGE_LIMIT,
              "unzipped, excluding the base image"),
    ]
    decision = zippkg.decide(zip_size, unzipped, zip_bucket, requested="auto")
    rec = {"package_type": decision.package_type, "upload": decision.upload, "reason": decision.reason}
    alternatives = []
    if decision.package_type == "image" and unzipped <= zippkg.ZIP_UNZIPPED_LIMIT and not zip_bucket:
        alternatives.append("a zip uploaded through S3 would fit: set zip_bucket (or deploy with --zip-bucket)")
    if (
        decision.package_type == "image" and rp
        and runtime_info["unzipped_size_without"] <= zippkg.ZIP_UNZIPPED_LIMIT
        and runtime_info["zip_size_without"] <= zippkg.ZIP_DIRECT_LIMIT
    ):
        alternatives.append(
            f"without the runtime-provided packages ({', '.join(r.name for r in rp)}) it would fit a "
            f"direct zip upload ({mib(runtime_info['zip_size_without'])} zipped)"
        )
    if alternatives:
        rec["alternative"] = "; ".join(alternatives)
    return SizeReport(
        function=function, python=python, architecture=architecture, deps_hash=deps_hash or "",
        rows=[*rows, app_row], deps_size=deps_size, deps_zipped=deps_zipped, app_size=app_row.size,
        app_zipped=app_row.zipped, unzipped_size=unzipped, zip_size=zip_size, files=files,
        runtime_provided=runtime_info, limits=limits, recommendation=rec,
    )


# ---- rendering ----------------------------------------------------------------------------------
def render_table(report: SizeReport) -> Any:
    """A rich renderable: the per-distribution table, the limits and the recommendation."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"{report.function} — python{report.python} {report.architecture}", title_justify="left")
    t.add_column("Distribution")
    t.add_column("Version")
    t.add_column("Files", justify="right")
    t.add_column("Unzipped", justify="right")
    t.add_column("Zipped", justify="right")
    t.add_column("%", justify="right")
    t.add_column("Note")
    total = max(report.unzipped_size, 1)
    for r in report.rows:
        note = []
        if r.kind == "runtime-provided":
            note.append("[yellow]in the Lambda runtime[/]")
        if r.direct:
            note.append("direct")
        elif r.required_by:
            note.append("via " + ", ".join(r.required_by))
        style = "bold" if r.kind == "app" else None
        t.add_row(r.name, r.version, str(r.files), mib(r.size), mib(r.zipped), f"{100 * r.size / total:.1f}",
                  "; ".join(note), style=style)
    t.add_section()
    t.add_row("total", "", str(report.files), mib(report.unzipped_size), mib(report.zip_size), "100.0", "",
              style="bold")

    lim = Table(show_header=True, box=None, pad_edge=False)
    lim.add_column("Limit")
    lim.add_column("Measured", justify="right")
    lim.add_column("Of", justify="right")
    lim.add_column("")
    for x in report.limits:
        mark = "[green]fits[/]" if x.fits else "[red]over[/]"
        lim.add_row(x.name, mib(x.value), mib(x.limit), f"{mark} ({x.measures}, {100 * x.value / x.limit:.1f}%)")
    parts: list[Any] = [t, lim]
    rp = report.runtime_provided
    if rp["packages"]:
        parts.append(Text.from_markup(
            f"Already in the Lambda Python runtime: {', '.join(rp['packages'])} — leaving them out saves "
            f"{mib(rp['size'])} unzipped / {mib(rp['zipped'])} zipped (only if the runtime's versions suit your code)."
        ))
    if rp.get("already_left_out"):
        parts.append(Text(
            f"Left out already (the runtime ships them, nothing in the requirements names them): "
            f"{', '.join(rp['already_left_out'])}."
        ))
    rec = report.recommendation
    how = f" ({rec['upload']})" if rec.get("upload") else ""
    parts.append(Text.from_markup(f"[bold]Recommendation: {rec['package_type']}{how}[/] — {rec['reason']}"))
    if rec.get("alternative"):
        parts.append(Text(f"Alternatively: {rec['alternative']}"))
    if rec.get("note"):
        parts.append(Text(f"Note: {rec['note']}"))
    return Group(*parts)


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>lambdaship size — __TITLE__</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;max-width:1100px}
h1{font-size:20px;margin:0 0 4px}.sub{color:#5b6477;margin-bottom:16px}
.rec{padding:10px 14px;border-radius:6px;background:#eef6ee;border:1px solid #b9d8b9;margin:12px 0}
.rec.image{background:#eef2fb;border-color:#b8c6e8}
table{border-collapse:collapse;margin:12px 0;width:100%}th,td{padding:3px 8px;border-bottom:1px solid #e3e6ec}
th{text-align:left;background:#f6f7f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
.over{color:#b3261e;font-weight:600}.fits{color:#1e7b34;font-weight:600}
svg text{font:12px system-ui,sans-serif}.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
</style></head><body>
<h1>Where the bytes go: __TITLE__</h1>
<div class="sub">python__PYTHON__ __ARCH__ · __FILES__ files · __UNZIPPED__ unzipped · __ZIPPED__ zipped
 (deflate level 9, measured per file)</div>
<div class="rec __RECCLASS__"><b>Recommendation: __REC__</b> — __REASON__</div>
<div class="legend"><span><i class="sw" style="background:#4c78a8"></i>dependency</span>
<span><i class="sw" style="background:#f2a541"></i>in the Lambda runtime</span>
<span><i class="sw" style="background:#54a24b"></i>app code</span>
<span><i class="sw" style="background:#9d9da8"></i>other files</span>
<span><i class="sw" style="background:#1d2330;opacity:.35"></i>zipped</span></div>
<svg id="limits" width="1000" height="10" role="img" aria-label="totals against Lambda limits"></svg>
<svg id="chart" width="1000" height="10" role="img" aria-label="bytes per distribution"></svg>
<table><thead><tr><th>Distribution</th><th>Version</th><th>Files</th><th>Unzipped</th><th>Zipped</th><th>Note</th>
</tr></thead><tbody>__ROWS__</tbody></table>
<table><thead><tr><th>Limit</th><th>Measured</th><th>Limit</th><th></th></tr></thead><tbody>__LIMITS__</tbody></table>
<p>__RUNTIME__</p>
<script type="application/json" id="data">__DATA__</script>
<script>
(function(){
var NS="http://www.w3.org/2000/svg";
var data=JSON.parse(document.getElementById("data").textContent);
var colors={"dependency":"#4c78a8","runtime-provided":"#f2a541","app":"#54a24b","other":"#9d9da8"};
function el(tag,attrs,parent){var e=document.createElementNS(NS,tag);
  for(var k in attrs){e.setAttribute(k,attrs[k]);}parent.appendChild(e);return e;}
function mib(n){var u=[["GiB",1073741824],["MiB",1048576],["KiB",1024]];
  for(var i=0;i<u.length;i++){if(n>=u[i][1]){return (n/u[i][1]).toFixed(1)+" "+u[i][0];}}return n+" B";}
var W=1000,LABEL=230,BAR=W-LABEL-180,H=20;
var rows=data.rows.slice().sort(function(a,b){return b.size-a.size;});
var max=Math.max.apply(null,rows.map(function(r){return r.size;}).concat([1]));
var chart=document.getElementById("chart");chart.setAttribute("height",rows.length*H+10);
rows.forEach(function(r,i){
  var y=5+i*H,g=el("g",{"class":"row","data-name":r.name},chart);
  var t=el("text",{x:LABEL-8,y:y+13,"text-anchor":"end"},g);t.textContent=r.name;
  var w=Math.max(1,BAR*r.size/max),wz=Math.max(1,BAR*r.zipped/max);
  var b=el("rect",{"class":"bar",x:LABEL,y:y+2,width:w.toFixed(2),height:H-5,fill:colors[r.kind]||"#888",
    "data-bytes":r.size},g);
  el("title",{},b).textContent=r.name+": "+mib(r.size)+" unzipped, "+mib(r.zipped)+" zipped";
  el("rect",{"class":"bar-zipped",x:LABEL,y:y+H-7,width:wz.toFixed(2),height:3,fill:"#1d2330",opacity:.35},g);
  var v=el("text",{x:LABEL+w+6,y:y+13},g);v.textContent=mib(r.size);
});
var lim=document.getElementById("limits");lim.setAttribute("height",data.limits.length*28+8);
data.limits.forEach(function(l,i){
  var y=4+i*28,g=el("g",{"class":"limit"},lim);
  var t=el("text",{x:LABEL-8,y:y+15,"text-anchor":"end"},g);t.textContent=l.name;
  el("rect",{x:LABEL,y:y+3,width:BAR,height:16,fill:"#f0f1f4",stroke:"#c9ced8"},g);
  var frac=Math.min(1,l.value/l.limit);
  el("rect",{"class":"limit-bar",x:LABEL,y:y+3,width:Math.max(1,BAR*frac).toFixed(2),height:16,
    fill:l.fits?"#54a24b":"#d9534f"},g);
  var v=el("text",{x:LABEL+BAR+6,y:y+15},g);
  v.textContent=(100*l.value/l.limit).toFixed(1)+"% of "+mib(l.limit);
});
document.body.setAttribute("data-rendered",String(rows.length));
})();
</script>
</body></html>
"""


def render_html(report: SizeReport) -> str:
    """A self-contained page (inline CSS, SVG drawn by inline JS; no external resources)."""
    e = html.escape
    rows = []
    for r in report.rows:
        note = "in the Lambda runtime" if r.kind == "runtime-provided" else ""
        if r.direct:
            note = (note + "; " if note else "") + "direct"
        elif r.required_by:
            note = (note + "; " if note else "") + "via " + ", ".join(r.required_by)
        rows.append(
            f"<tr><td>{e(r.name)}</td><td>{e(r.version)}</td><td class=n>{r.files}</td>"
            f"<td class=n>{mib(r.size)}</td><td class=n>{mib(r.zipped)}</td><td>{e(note)}</td></tr>"
        )
    limits = "".join(
        f"<tr><td>{e(x.name)}</td><td class=n>{mib(x.value)}</td><td class=n>{mib(x.limit)}</td>"
        f"<td class={'fits' if x.fits else 'over'}>{'fits' if x.fits else 'over'} ({e(x.measures)})</td></tr>"
        for x in report.limits
    )
    rp = report.runtime_provided
    runtime = (
        f"Already in the Lambda Python runtime: {e(', '.join(rp['packages']))} — leaving them out saves "
        f"{mib(rp['size'])} unzipped / {mib(rp['zipped'])} zipped "
        f"(<a href=\"{RUNTIME_SOURCE}\">runtime-included SDK</a>)."
        if rp["packages"] else "No package that the Lambda runtime already ships."
    )
    rec = report.recommendation
    data = json.dumps(
        {"rows": [asdict(r) for r in report.rows], "limits": [asdict(x) for x in report.limits]},
        sort_keys=True,
    ).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    subs = {
        "__TITLE__": e(report.function or "package"),
        "__PYTHON__": e(report.python), "__ARCH__": e(report.architecture),
        "__FILES__": str(report.files), "__UNZIPPED__": mib(report.unzipped_size), "__ZIPPED__": mib(report.zip_size),
        "__RECCLASS__": e(rec["package_type"]),
        "__REC__": e(rec["package_type"] + (f" ({rec['upload']})" if rec.get("upload") else "")),
        "__REASON__": e(rec["reason"]), "__ROWS__": "".join(rows), "__LIMITS__": limits, "__RUNTIME__": runtime,
        "__DATA__": data,
    }
    return re.sub("|".join(map(re.escape, subs)), lambda m: subs[m.group(0)], _HTML)
