"""``lambdaship dockerfile``: a Dockerfile + .dockerignore equivalent to ``lambdaship build``."""

from __future__ import annotations

from pathlib import Path

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json
from lambdaship.commands.options import BuildFlags, ProjectFlags, with_options


def register(app: typer.Typer) -> None:
    @app.command("dockerfile")
    @with_options
    def dockerfile(
        where: ProjectFlags = ProjectFlags(),
        out: Path = typer.Option(
            None, "--out", "-o", help="Where to write the Dockerfile (default: <source>/Dockerfile).",
            show_default=False,
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite files that exist with other content."),
        flags: BuildFlags = BuildFlags(),
        json_out: bool = JsonOpt,
    ) -> None:
        """Write a Dockerfile and .dockerignore that build the same image as `lambdaship build`."""
        from lambdaship.scaffold.dockerfile import generate
        from lambdaship.scaffold.files import write_files

        _, fn = where.load(flags)
        files = generate(fn, out)
        written = write_files({files.dockerfile: files.dockerfile_text, files.ignore: files.ignore_text}, force=force)
        if json_out:
            emit_json({
                "function": fn.function_name,
                "files": [w.as_dict() for w in written],
                "context": str(files.context),
                "build_command": files.build_command(),
            })
            return
        for w in written:
            console.print(f"{w.status:<11} {w.path}", markup=False)
        console.print(f"build it:   {files.build_command()}", markup=False)
