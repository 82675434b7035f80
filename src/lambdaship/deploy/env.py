"""The function's environment: config + .env file + SSM + Secrets Manager, merged.

Precedence (later wins): ``environment`` in the config < the ``.env`` file (``env_file`` or
``--env-file``) < SSM parameters (``secrets = [{ssm_path = ...}]``) < Secrets Manager secrets
(``secrets = [{secretsmanager = ...}]``). Within one kind, sources apply in config order.

Values are never printed: diffs and plans show names, where each value came from, and
``****``. Lambda's 4 KB limit (sum of the UTF-8 lengths of every name and value) is checked
before any API call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdaship.config import RESERVED_ENV, FunctionConfig
from lambdaship.errors import ConfigError, LambdashipError
from lambdaship.patterns import ENV_KEY_RE

MASK = "****"
MAX_ENV_BYTES = 4096



@dataclass(frozen=True)
class Resolved:
    """The merged environment. ``sources`` maps each name to where its value came from."""

    values: dict[str, str]
    sources: dict[str, str]

    @property
    def size(self) -> int:
        return env_size(self.values)


@dataclass(frozen=True)
class Change:
    name: str
    kind: str  # added | changed | removed | unchanged
    source: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "change": self.kind, "source": self.source, "value": MASK}


def parse_env_file(path: Path) -> dict[str, str]:
    """A ``.env`` file read by python-dotenv: ``export``, single/double quotes, inline ``#``
    comments, multi-line quoted values, ``${VAR}`` / ``${VAR:-default}`` expansion (from earlier
    lines, then the environment). Errors name the line, never a value."""
    import io

    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read env file {path}: {exc.strerror}", "check --env-file / env_file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"env file {path} is not UTF-8 (byte {exc.start})", "save it as UTF-8") from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error or (binding.key is not None and binding.value is None):
            raise ConfigError(f"{path}:{binding.original.line}: not a NAME=value line", "fix or remove the line")
    values = dotenv_values(stream=io.StringIO(text), interpolate=True)
    return {k: v for k, v in values.items() if v is not None}


def env_file_path(fn: FunctionConfig, env_file: Path | str | None) -> Path | None:
    """``--env-file`` (relative to the current directory) else ``env_file`` (relative to the source)."""
    if env_file is not None:
        return Path(env_file).resolve()
    if fn.env_file:
        p = Path(fn.env_file)
        return p if p.is_absolute() else (fn.source / p).resolve()
    return None


def _check_names(values: dict[str, str], sources: dict[str, str]) -> None:
    for name in values:
        if not ENV_KEY_RE.match(name):
            raise LambdashipError(
                f"environment variable name {name!r} from {sources[name]} is not valid",
                "names are letters, digits and '_' and start with a letter",
            )
        if name in RESERVED_ENV:
            raise LambdashipError(
                f"environment variable {name!r} from {sources[name]} is reserved by Lambda",
                "remove it from that source",
            )


def resolve(fn: FunctionConfig, env_file: Path | str | None = None) -> Resolved:
    """Read every source (read-only calls) and merge them by precedence."""
    values: dict[str, str] = {}
    sources: dict[str, str] = {}

    def put(data: dict[str, str], source: str) -> None:
        for k, v in data.items():
            values[k] = v
            sources[k] = source

    put(chalice_env(fn), f"chalice:{fn.chalice_stage}")
    put(dict(fn.environment), "config")
    path = env_file_path(fn, env_file)
    if path is not None:
        if not path.is_file():
            what = "is not a regular file" if path.exists() else "does not exist"
            raise ConfigError(f"env file {path} {what}", "create it or fix env_file / --env-file")
        put(parse_env_file(path), f"env_file:{path.name}")
    ssm_sources = [s.ssm_path for s in fn.secrets if s.ssm_path]
    sm_sources = [s.secretsmanager for s in fn.secrets if s.secretsmanager]
    if ssm_sources:
        from lambdaship.aws import ssm

        for p in ssm_sources:
            put(ssm.parameters_by_path(p), f"ssm:{p}")
    if sm_sources:
        from lambdaship.aws import secrets

        for sid in sm_sources:
            put(secrets.get_secret_json(sid), f"secretsmanager:{sid}")
    _check_names(values, sources)
    resolved = Resolved(values=values, sources=sources)
    check_size(resolved.values, fn.function_name)
    return resolved


def chalice_env(fn: FunctionConfig) -> dict[str, str]:
    """The ``chalice_stage``'s variables from ``.chalice/config.json`` ({} without one)."""
    from lambdaship.chalice_config import stage_env

    stage = stage_env(fn.source, fn.chalice_stage, "chalice_stage") if fn.chalice_stage else None
    return stage.values if stage is not None else {}


def env_size(values: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in values.items())


def check_size(values: dict[str, str], function_name: str) -> None:
    size = env_size(values)
    if size > MAX_ENV_BYTES:
        biggest = sorted(values, key=lambda k: len(values[k].encode()), reverse=True)[:3]
        raise LambdashipError(
            f"the environment of {function_name} is {size} bytes, over Lambda's 4 KB limit ({MAX_ENV_BYTES} bytes)",
            f"largest values: {', '.join(biggest)}; move large values to a secret read at runtime",
        )


def diff(current: dict[str, str], desired: Resolved) -> list[Change]:
    names = sorted(set(current) | set(desired.values))
    out = []
    for n in names:
        if n not in current:
            kind = "added"
        elif n not in desired.values:
            kind = "removed"
        elif current[n] != desired.values[n]:
            kind = "changed"
        else:
            kind = "unchanged"
        out.append(Change(n, kind, desired.sources.get(n)))
    return out


def masked(values: dict[str, str]) -> dict[str, str]:
    return dict.fromkeys(values, MASK)


def render_diff(changes: list[Change]) -> list[str]:
    sign = {"added": "+", "removed": "-", "changed": "~", "unchanged": " "}
    lines = []
    for c in changes:
        src = f"  ({c.source})" if c.source else ""
        lines.append(f"  {sign[c.kind]} {c.name}={MASK}{src}" + ("" if c.kind == "unchanged" else f"  [{c.kind}]"))
    return lines
