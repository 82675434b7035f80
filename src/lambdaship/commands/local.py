"""``lambdaship local up|env|status|down``: the embedded local stack."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json

StateOpt = typer.Option(
    None, "--state-dir", help="Where the stack keeps its state (default: ~/.cache/lambdaship/local).",
    show_default=False,
)


def _stack():  # imported on use: keeps `lambdaship --help` fast
    from lambdaship.local import stack

    return stack


local = typer.Typer(help="Run moto (AWS), a distribution registry and the data plane (Lambda Invoke, "
                    "API URLs, logs with real code) on 127.0.0.1.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(local, name="local")


@local.command("up")
def up(state_dir: Path | None = StateOpt, json_: bool = JsonOpt) -> None:
    """Start moto server, the registry and the data plane on free ports; wait until they answer.

    The data plane's URL is the stack's AWS endpoint (AWS_ENDPOINT_URL): it runs Lambda
    invocations and the local API URLs with the deployed code and passes everything else
    to moto unchanged.
    """
    state = _stack().up(state_dir)
    if json_:
        emit_json({**state.to_json(), "endpoint": state.endpoint})
        return
    dp_pid = state.dataplane.pid if state.dataplane else "-"
    console.print(f"AWS endpoint  {state.endpoint}  (data plane, pid {dp_pid})")
    console.print(f"moto server   {state.moto.url}  (pid {state.moto.pid})")
    console.print(f"registry      {state.registry.url}  (pid {state.registry.pid})")
    flag = f" --state-dir {shlex.quote(str(state_dir))}" if state_dir is not None else ""
    console.print(f"Use it in this shell with:  eval \"$(lambdaship local env{flag})\"", markup=False)


@local.command("env")
def env(state_dir: Path | None = StateOpt, json_: bool = JsonOpt) -> None:
    """Print `export` lines that point boto3 and lambdaship at the local stack."""
    state = _stack().read_state(state_dir)
    if state is None:
        from lambdaship.errors import LambdashipError

        raise LambdashipError("the local stack is not running", "start it with: lambdaship local up")
    if json_:
        emit_json(state.env())
        return
    for k, v in state.env().items():
        typer.echo(f"export {k}={shlex.quote(v)}")


@local.command("status")
def status(state_dir: Path | None = StateOpt, json_: bool = JsonOpt) -> None:
    """Show whether the stack's processes are alive and answering."""
    info = _stack().status(state_dir)
    if json_:
        emit_json(info)
    elif not info.get("services"):
        console.print("local stack: not running")
    else:
        for name, svc in info["services"].items():
            state = "up" if svc["answering"] else ("alive, not answering" if svc["alive"] else "down")
            console.print(f"{name:<10} {svc['url']:<28} pid {svc['pid']:<8} {state}")
        console.print(f"AWS endpoint: {info['endpoint']}")
        for e in info.get("endpoints") or []:
            what = {"rest": f"REST API {e['name']} stage {e['stage']}", "http": f"HTTP API {e['name']} stage "
                    f"{e['stage']}", "function-url": f"Function URL ({e.get('auth')})"}[e["kind"]]
            console.print(f"  {what} → {', '.join(e['functions']) or '-'}: {e['url']}", soft_wrap=True)
    if not info["running"]:
        raise typer.Exit(1)


@local.command("base")
def base(
    registry: str | None = typer.Option(
        None, "--registry", help="Registry URL to push to (default: LAMBDASHIP_REGISTRY_URL or the local stack)."
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild the cached base layer."),
    json_: bool = JsonOpt,
) -> None:
    """Build (once, cached) and push an offline Lambda-like base image; print its reference.

    Debian bookworm (debootstrap minbase) + Python 3.11 + pip + awslambdaric +
    /lambda-entrypoint.sh. Needs root and debootstrap for the first build (~1 min).
    """
    from lambdaship.local import base as base_mod

    ref = base_mod.ensure_base(registry, rebuild=rebuild)
    if json_:
        emit_json({"ref": ref, "python": base_mod.PYTHON, "suite": base_mod.SUITE,
                   "awslambdaric": base_mod.AWSLAMBDARIC, "cache": str(base_mod.base_cache_dir()),
                   "recipe": base_mod.recipe_hash()})
    else:
        typer.echo(ref)


@local.command("down")
def down(state_dir: Path | None = StateOpt, json_: bool = JsonOpt) -> None:
    """Stop exactly the processes `local up` started (the data plane stops its function workers)."""
    stopped = _stack().down(state_dir)
    if json_:
        emit_json({"stopped": stopped})
    else:
        console.print(f"stopped {len(stopped)} process(es)" if stopped else "local stack was not running")
