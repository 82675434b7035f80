"""``lambdaship build``: a reproducible Lambda image, without a Docker daemon."""

from __future__ import annotations

from pathlib import Path

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json
from lambdaship.commands.options import BuildFlags, ProjectFlags, with_options


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def register(app: typer.Typer) -> None:
    @app.command("build")
    @with_options
    def build(
        where: ProjectFlags = ProjectFlags(),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="Write the image as an OCI image layout directory (base layers included).",
            show_default=False, file_okay=False,
        ),
        tar: Path | None = typer.Option(
            None, "--tar", help="Also write a tar that 'docker load' (and skopeo docker-archive:) accepts.",
            show_default=False, dir_okay=False,
        ),
        flags: BuildFlags = BuildFlags(),
        tag: str = typer.Option("latest", "--tag", help="Name of the image inside the layout / tar."),
        image_format: str = typer.Option(
            "base", "--format", help="Manifest format: base (same as the base image), docker or oci."
        ),
        reuse_deps_from: str | None = typer.Option(
            None, "--reuse-deps-from",
            help="A previously pushed image of this function: reuse its dependency layer when the dependency "
            "hash matches (nothing installed or compressed).", show_default=False,
        ),
        json_: bool = JsonOpt,
    ) -> None:
        """Build the function's image: base image + dependency layer + app layer (same inputs, same digest)."""
        from lambdaship.errors import UsageError
        from lambdaship.image.build import build_image

        _, fn = where.load(flags)
        if image_format not in ("base", "docker", "oci"):
            raise UsageError(f"--format {image_format!r} is not supported", "use base, docker or oci")
        result = build_image(fn, out=out, tar=tar, tag=tag, image_format=image_format, reuse_deps_from=reuse_deps_from,
                             progress=not json_)  # rich rows on a terminal, one line per stage in CI
        if json_:
            emit_json(result.to_json())
            return
        data = result.to_json()
        console.print(f"built {fn.function_name}: [bold]{data['manifest_digest']}[/bold]")
        for layer in data["layers"]:
            console.print(
                f"  {layer['role']:<5} {layer['digest'][:19]}  {_human(layer['size']):>9}"
                + (f"  ({_human(layer['uncompressed_size'])} unpacked)" if layer["uncompressed_size"] else "")
            )
        notes = []
        if result.deps_reused:
            notes.append(f"dependency layer reused from {reuse_deps_from}")
        elif result.deps_cached:
            notes.append("dependencies from cache")
        if result.deps_layer_cached and not result.deps_reused:
            notes.append("dependency layer from cache")
        if result.bytecode:
            notes.append(f"bytecode for Python {fn.python}")
        console.print(f"  {data['timings'].get('total', 0):.2f} s" + (f"; {', '.join(notes)}" if notes else ""))
        if result.layout:
            console.print(f"OCI layout: {result.layout} (manifest {result.layout_digest})")
        if result.tar:
            console.print(f"docker-load tar: {result.tar}")
