"""What a command's start loads: not typer's rich help module (rich markdown) until a help
screen is formatted, not httpx's own command line, not trio through httpcore, not boto3 and
s3transfer (the AWS clients are botocore's). Each was 15-50 ms of every fresh runner's start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

UNUSED = ("typer.rich_utils", "httpx._main", "trio", "boto3", "s3transfer")

PROBE = f"""
UNUSED = {UNUSED!r}
import json, sys
sys.argv = ["lambdaship"]
import lambdaship.cli  # what the console script imports
import lambdaship.registries, lambdaship.image.build, lambdaship.oci.client  # a push's modules
from lambdaship.aws import session
session.client("ecr")
import httpx
print(json.dumps({{"loaded": [m for m in UNUSED if sys.modules.get(m) is not None],
                  "httpx_main": httpx.main.__module__, "version": lambdaship.__version__}}))
"""


def _env() -> dict[str, str]:
    """As in CI: stdout a pipe, no terminal size given (the help is then PIPE_WIDTH wide)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "TERMINAL_WIDTH", "FORCE_COLOR", "PYDANTIC_DISABLE_PLUGINS")}
    env.update(AWS_ACCESS_KEY_ID="AKIAUNITTEST", AWS_SECRET_ACCESS_KEY="unit-test-secret",
               AWS_DEFAULT_REGION="us-east-1")
    return env


def test_a_commands_start_loads_none_of_the_unused_modules() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=_env(), check=True)
    got = json.loads(out.stdout)
    assert got["loaded"] == []
    assert got["httpx_main"] == "httpx"  # httpx's stub, not httpx._main's click app
    assert got["version"][0].isdigit()


def test_help_still_formats_with_the_rich_help_module() -> None:
    out = subprocess.run([sys.executable, "-m", "lambdaship.cli", "push", "--help"], capture_output=True,
                         text=True, env=_env(), check=True)
    assert "Usage: lambdaship push" in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) == 120  # PIPE_WIDTH outside a terminal
