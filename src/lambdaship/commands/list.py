"""``lambdaship list``: the functions lambdaship manages in this account and region."""

from __future__ import annotations

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_(json_: bool = JsonOpt) -> None:
        """Functions tagged lambdaship:function, each alias with its version and code digest."""
        from lambdaship.deploy.lifecycle import managed_functions, render_list

        functions = managed_functions()
        if json_:
            emit_json({"functions": functions})
            return
        for line in render_list(functions):
            console.print(line, markup=False)
