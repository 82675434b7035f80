"""``lambdaship size``: where the bytes go, against Lambda's zip and image limits."""

from __future__ import annotations

from pathlib import Path

import typer

from lambdaship.commands._common import FunctionOpt, JsonOpt, ProjectOpt, console, emit_json, project_and_function


def register(app: typer.Typer) -> None:
    @app.command("size")
    def size(
        project: Path | None = ProjectOpt,
        function: str | None = FunctionOpt,
        json_: bool = JsonOpt,
        html: Path | None = typer.Option(
            None, "--html", help="Also write a self-contained HTML report with a chart to this file.",
            show_default=False, dir_okay=False,
        ),
    ) -> None:
        """Installed size per dependency (unzipped and zipped), app code, limits, and zip-or-image advice."""
        from lambdaship import size as sizing
        from lambdaship.errors import LambdashipError

        _, fn = project_and_function(project, function)
        report = sizing.analyze(fn)
        if html is not None:
            try:
                html.parent.mkdir(parents=True, exist_ok=True)
                html.write_text(sizing.render_html(report), encoding="utf-8")
            except OSError as exc:
                raise LambdashipError(f"cannot write {html}: {exc.strerror}", "choose another --html path") from None
        if json_:
            data = report.to_json()
            if html is not None:
                data["html"] = str(html.resolve())
            emit_json(data)
            return
        console.print(sizing.render_table(report))
        if html is not None:
            console.print(f"HTML report: {html}")
