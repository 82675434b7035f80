"""``lambdaship size``: where the bytes go, against Lambda's zip and image limits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from lambdaship.commands._common import JsonOpt, console, emit_json
from lambdaship.commands.options import BuildFlags, ProjectFlags, with_options

if TYPE_CHECKING:
    from lambdaship.package.size import SizeReport


def register(app: typer.Typer) -> None:
    @app.command("size")
    @with_options
    def size(
        where: ProjectFlags = ProjectFlags(),
        flags: BuildFlags = BuildFlags(),
        json_: bool = JsonOpt,
        html: Path | None = typer.Option(
            None, "--html", help="Also write a self-contained HTML report with a chart to this file.",
            show_default=False, dir_okay=False,
        ),
    ) -> None:
        """Installed size per dependency (unzipped and zipped), app code, limits, and zip-or-image advice."""
        from lambdaship.errors import LambdashipError
        from lambdaship.package import report as html_report
        from lambdaship.package import size as sizing
        from lambdaship.project import check_handler

        _, fn = where.load(flags)
        check_handler(fn)  # as build does: a handler that is not there is an error, before any install
        report = sizing.analyze(fn)
        if html is not None:
            try:
                html.parent.mkdir(parents=True, exist_ok=True)
                html.write_text(html_report.render_html(report), encoding="utf-8")
            except OSError as exc:
                raise LambdashipError(f"cannot write {html}: {exc.strerror}", "choose another --html path") from None
        if json_:
            data = report.to_json()
            if html is not None:
                data["html"] = str(html.resolve())
            emit_json(data)
            return
        console.print(render_table(report))
        if html is not None:
            console.print(f"HTML report: {html}")


# ---- rendering ----------------------------------------------------------------------------------
def render_table(report: SizeReport) -> Group:
    """A rich renderable: the per-distribution table, the limits and the recommendation."""
    from lambdaship.package.zipplan import mib

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
    if report.layers:
        parts.append(_layers_table(report))
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


def _layers_table(report: SizeReport) -> Table:
    """The layers an image build adds to the base (large dependencies apart: layer_split_mb)."""
    from lambdaship.package.zipplan import mib

    t = Table(title="Image layers above the base (unpacked)", title_justify="left", box=None, pad_edge=False)
    t.add_column("Layer")
    t.add_column("Unpacked", justify="right")
    t.add_column("Packages")
    for layer in report.layers:
        pkgs = layer["packages"]
        shown = ", ".join(pkgs[:6]) + (f", … ({len(pkgs)} in all)" if len(pkgs) > 6 else "")
        t.add_row(layer["name"], mib(layer["size"]), shown)
    return t
