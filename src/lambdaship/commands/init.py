"""``lambdaship init``: detect the app and write its configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        path: Path = typer.Argument(Path("."), help="The app's directory.", show_default="current directory"),
        force: bool = typer.Option(False, "--force", help="Rewrite an existing configuration."),
        function_name: str = typer.Option(
            None, "--function-name", help="The Lambda function name (default: app name or directory).",
            show_default=False,
        ),
        handler: str = typer.Option(
            None, "--handler", help="The handler as module.function (default: detected).", show_default=False
        ),
        python: str = typer.Option(
            None, "--python", help="The Python runtime, e.g. 3.12 (default: detected).", show_default=False
        ),
        config_file: str = typer.Option(
            None, "--config-file",
            help="Where to write: lambdaship.toml or pyproject.toml (default: pyproject.toml if present).",
            show_default=False,
        ),
        json_out: bool = JsonOpt,
    ) -> None:
        """Detect a Chalice app or handler module and write its lambdaship configuration.

        In a monorepo (uv workspace members, functions/*, services/* ... with handlers): one \\[functions.<key>] each.
        """
        from lambdaship.scaffold.init import next_steps, run_init

        def say(text: str) -> None:
            console.print(text, markup=False)

        result = run_init(
            path, force=force, function_name=function_name, handler=handler, python=python,
            config_file=config_file,
        )
        if json_out:
            emit_json(result.as_dict())
            return
        if not result.changed:
            say(f"{result.config_file}: {result.reason}; nothing changed")
            return
        if result.functions:  # a monorepo: one [functions.<key>] table per function directory
            _say_monorepo(result, say)
            return
        d = result.detected
        assert d is not None
        say(f"wrote {result.config_file}")
        say(f"  function  {d.function_name}")
        say(f"  handler   {d.handler}  ({'Chalice app' if d.kind == 'chalice' else 'handler module'})")
        if d.other_handlers:
            say(f"            other candidates: {', '.join(d.other_handlers)} (choose with --handler)")
        say(f"  python    {d.python}  (from {d.python_from})")
        say(f"  deps      {d.requirements or 'none'}  (from {d.requirements_from})")
        for gen in result.generated:
            say(f"  wrote     {gen} (from {d.requirements_from})")
        if d.environment:
            say(f"  env       {', '.join(sorted(d.environment))} (from .chalice/config.json)")
        if d.skipped_environment:
            console.print(
                f"  secrets   {', '.join(d.skipped_environment)} not copied: placeholders in "
                ".chalice/config.json; add them as [[secrets]] sources"
            )
        if d.smoke_path:
            say(f"  smoke     GET {d.smoke_path} must answer 2xx before the alias moves")
        say("next steps:")
        for step in next_steps():
            say(f"  {step}")


def _say_monorepo(result: Any, say: Callable[[str], None]) -> None:
    from lambdaship.scaffold.init import next_steps

    say(f"wrote {result.config_file} ({len(result.functions)} functions)")
    for key, fd in result.functions.items():
        say(f"  {key:<12} {fd.handler}  python {fd.python}  deps from {fd.requirements_from}")
    say("next steps:")
    for step in next_steps():
        say(f"  {step}")
