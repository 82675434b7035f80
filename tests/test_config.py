"""Configuration: file discovery, validation errors that name file/key/problem, precedence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lambdaship.config import load_project
from lambdaship.errors import ConfigError
from tests.conftest import EXAMPLES


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_examples_load():
    fn = load_project(EXAMPLES / "chalice-app").function()
    assert fn.function_name == "chalice-demo"
    assert fn.resolved_handler == "app.app"  # Chalice default
    assert fn.image_base == "public.ecr.aws/lambda/python:3.12"
    assert fn.smoke is not None and fn.smoke.path == "/health"
    h = load_project(EXAMPLES / "handler-app").function()
    assert h.resolved_handler == "handler.handler"
    assert h.smoke is not None and h.smoke.event == {"bytes": 2048}


def test_pyproject_table_and_defaults(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.lambdaship]\nfunction_name = "fn-a"\nhandler = "m.h"\n')
    fn = load_project(tmp_path).function()
    assert (fn.python, fn.architecture, fn.alias, fn.memory, fn.timeout) == (
        "3.12", "x86_64", "live", 512, 30,
    )
    assert fn.repository_name == "fn-a"
    assert fn.source == tmp_path.resolve()


def test_lambdaship_toml_wins_over_pyproject(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.lambdaship]\nfunction_name = "from-pyproject"\n')
    write(tmp_path / "lambdaship.toml", 'function_name = "from-toml"\nhandler = "m.h"\n')
    assert load_project(tmp_path).function().function_name == "from-toml"


def test_flags_override_config(tmp_path):
    write(tmp_path / "lambdaship.toml", 'function_name = "f"\nhandler = "m.h"\nmemory = 256\n')
    fn = load_project(tmp_path, {"memory": 1024, "architecture": "arm64", "timeout": None}).function()
    assert fn.memory == 1024 and fn.architecture == "arm64"
    assert fn.timeout == 30  # None flags do not override


def test_monorepo_functions_share_defaults(tmp_path):
    write(tmp_path / "svc" / "a" / "app.py", "")
    write(tmp_path / "svc" / "b" / "app.py", "")
    write(
        tmp_path / "lambdaship.toml",
        'python = "3.11"\nmemory = 1024\nhandler = "app.handler"\n'
        '[functions.a]\nsource = "svc/a"\n'
        '[functions.b]\nsource = "svc/b"\nfunction_name = "bee"\nmemory = 2048\n',
    )
    proj = load_project(tmp_path)
    assert set(proj.functions) == {"a", "b"}
    a, b = proj.function("a"), proj.function("bee")
    assert (a.function_name, a.python, a.memory) == ("a", "3.11", 1024)
    assert (b.function_name, b.python, b.memory) == ("bee", "3.11", 2048)
    assert b.source == (tmp_path / "svc" / "b").resolve()
    with pytest.raises(ConfigError, match="defines 2 functions"):
        proj.function()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('function_name = "f"\nmemory = 64\n', "lambdaship.toml: "
         r"memory: Input should be greater than or equal to 128"),
        ('function_name = "f"\nmemory = "lots"\n', "lambdaship.toml: "
         r"memory: Input should be a valid integer"),
        ('function_name = "f"\ntimeout = 901\n', "lambdaship.toml: "
         r"timeout: Input should be less than or equal to 900"),
        ('function_name = "f"\nmemroy = 256\n', "lambdaship.toml: "
         r"memroy: unknown key"),
        ('function_name = "bad name!"\n', "lambdaship.toml: "
         r"function_name: 'bad name!' is not a valid Lambda function name"),
        ('function_name = "f"\nrole = "admin"\n', "lambdaship.toml: "
         r"role: 'admin' is not an IAM role ARN"),
        ('function_name = "f"\narchitecture = "sparc"\n', "lambdaship.toml: "
         r"architecture: Input should be 'x86_64' or 'arm64'"),
        ('function_name = "f"\npython = "2.7"\n', "lambdaship.toml: "
         r"python: '2.7' is not a Lambda Python runtime"),
        ('function_name = "f"\nalias = "123"\n', "lambdaship.toml: "
         r"alias: '123' is not a valid alias name"),
        ('function_name = "f"\n[environment]\nAWS_REGION = "x"\n', "lambdaship.toml: "
         r"environment: 'AWS_REGION' is reserved"),
        ('function_name = "f"\n[smoke]\n', "lambdaship.toml: "
         r"smoke: give exactly one of 'event' or 'path'"),
        ('function_name = "f"\n[functions.a]\n', r"function_name: not allowed beside 'functions'"),
        ('[functions.a]\nmemory = 1\n', "lambdaship.toml: "
         r"functions.a.memory: Input should be greater"),
        ('function_name = "f"\nsource = "nowhere"\n', "lambdaship.toml: "
         r"source: directory .*nowhere does not exist"),
        ("function_name = \n", "lambdaship.toml: "
         r"invalid TOML"),
    ],
)
def test_errors_name_file_key_and_problem(tmp_path, text, expected):
    write(tmp_path / "lambdaship.toml", text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_project(tmp_path)
    assert "\n" not in info.value.one_line()


def test_pyproject_errors_use_full_key_path(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.lambdaship]\nfunction_name = "f"\nmemory = 1\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml: tool.lambdaship.memory: "):
        load_project(tmp_path)


def test_missing_config_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="no lambdaship configuration") as info:
        load_project(tmp_path)
    assert "lambdaship init" in info.value.one_line()


def test_handler_required_for_non_chalice(tmp_path):
    write(tmp_path / "lambdaship.toml", 'function_name = "f"\n')
    fn = load_project(tmp_path).function()
    with pytest.raises(ConfigError, match="no handler configured"):
        _ = fn.resolved_handler


def test_architecture_is_one_value_in_every_spelling(tmp_path):
    text = 'function_name = "f"\nhandler = "a.b"\narchitecture = "arm64"\npython = "3.11"\n'
    fn = load_project(write(tmp_path / "lambdaship.toml", text)).function()
    assert (fn.platform.architecture.oci, fn.platform.architecture.docker_platform, fn.platform.uv_platform) == (
        "arm64", "linux/arm64", "aarch64-manylinux2014")
    assert fn.image_base == "public.ecr.aws/lambda/python:3.11"
    assert fn.architecture == "arm64"  # the config value compares (and serialises) as Lambda's own spelling


@pytest.mark.parametrize("command", ["build", "size", "dockerfile", "deploy", "push", "serve"])
def test_build_flags_are_declared_once_for_every_command(command):
    """These commands take the same project and build-affecting flags (commands/options.py)."""
    from tests.conftest import run_cli

    out = run_cli(command, "--help", env={"COLUMNS": "200", "TERM": "dumb"}).stdout
    for flag in ("--project", "--function", "--base-image", "--python", "--architecture", "--package-type",
                 "--memory", "--timeout"):
        assert flag in out, (command, flag)
    assert "[x86_64|arm64]" in out


@pytest.mark.parametrize("command", ["build", "size", "dockerfile"])
def test_bad_architecture_fails_while_parsing(command, tmp_path):
    """A bad --architecture is refused before any config is read (tmp_path has none): one line, exit 2."""
    from tests.conftest import run_cli

    r = run_cli(command, "-C", str(tmp_path), "--architecture", "sparc")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "error: --architecture 'sparc' is not supported; use one of: x86_64, arm64\n"


def test_the_cli_renders_build_events_the_library_only_emits(capsys):
    """image.build emits BuildEvents; progress=True sends them to the sink the CLI registered, which
    (outside a terminal) prints one line per ended stage and a summary line for "done"; without a
    sink nothing is printed."""
    from lambdaship.image import events

    events.set_default_sink(None)
    events.sink_for(True)(events.BuildEvent("layers", "writing layers"))
    assert capsys.readouterr() == ("", "")
    import lambdaship.cli  # noqa: F401  (registers the renderer)
    from lambdaship.commands import _common

    if events.sink_for(True) is not _common.render_build_event:  # already imported before: register again
        events.set_default_sink(_common.render_build_event)
    sink = events.sink_for(True)
    sink(events.BuildEvent("layers", "writing layers"))
    sink(events.BuildEvent("done", "sha256:" + "0" * 64, 10, 1.0))
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 2, err
    assert re.fullmatch(r"layers +\d+\.\d s  writing layers", lines[0]), lines
    assert re.fullmatch(r"built +1\.0 s  sha256:0{12}…: image 10 B", lines[1]), lines
    assert events.sink_for(False) is not sink and events.sink_for(print) is print


def test_option_groups_expand_into_flags_and_refuse_a_clash():
    import inspect

    from lambdaship.commands.options import BuildFlags, ProjectFlags, with_options

    @with_options
    def cmd(where: ProjectFlags = ProjectFlags(), flags: BuildFlags = BuildFlags(), json_: bool = False):
        return where, flags, json_

    names = list(inspect.signature(cmd).parameters)
    assert names == ["project", "function", "base_image", "python", "architecture", "package_type", "memory",
                     "timeout", "json_"]
    where, flags, json_ = cmd(project=None, function="f", base_image=None, python="3.11", architecture=None,
                              package_type=None, memory=256, timeout=None, json_=True)
    assert where == ProjectFlags(None, "f") and flags.overrides() == {"python": "3.11", "memory": 256} and json_
    with pytest.raises(TypeError, match="clashes"):
        @with_options
        def bad(flags: BuildFlags = BuildFlags(), python: str = ""):
            return None


def test_run_takes_the_runtime_flags():
    from tests.conftest import run_cli

    out = run_cli("run", "--help", env={"COLUMNS": "200", "TERM": "dumb"}).stdout
    assert "--memory" in out and "--timeout" in out and "--project" in out
