"""The size report as a self-contained HTML page (inline CSS, SVG drawn by inline JS; no external resources)."""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict

from lambdaship.package.size import RUNTIME_SOURCE, SizeReport
from lambdaship.package.zipplan import mib

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
