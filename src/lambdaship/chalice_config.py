"""Environment variables of a Chalice stage, read from ``.chalice/config.json``.

Chalice's precedence (later wins): top-level ``environment_variables`` < ``stages.<stage>.
environment_variables`` < ``stages.<stage>.lambda_functions.api_handler.environment_variables``.
Imported only for the stage ``migrate --stage`` names (no default). Values written as
``${NAME}`` placeholders (filled in by a wrapper script at deploy time, as the seeds' team did)
are not real values: they are skipped and reported by name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.errors import ConfigError, UsageError

PLACEHOLDER_RE = re.compile(r"^\$\{[^}]+\}$")


@dataclass(frozen=True)
class StageEnv:
    path: Path
    stage: str
    values: dict[str, str]
    placeholders: list[str] = field(default_factory=list)


def config_path(source: Path) -> Path:
    return source / ".chalice" / "config.json"


def _env_table(table: Any, where: str) -> dict[str, str]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: environment_variables must be an object")
    return {str(k): str(v) for k, v in table.items()}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}", "fix the JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a JSON object")
    return data


def stage_names(source: Path) -> list[str]:
    """The stages ``.chalice/config.json`` defines ([] without one)."""
    path = config_path(source)
    if not path.is_file():
        return []
    stages = _read(path).get("stages") or {}
    return sorted(stages) if isinstance(stages, dict) else []


def stage_env(source: Path, stage: str | None, option: str = "--stage") -> StageEnv | None:
    """The variables of the stage named ``stage``; None when no stage is named: a stage's
    variables are imported only on request (a prod function must not silently get dev values).
    ``option`` names where the stage was asked for (``--stage``, ``chalice_stage``) in errors.
    """
    if stage is None:
        return None
    path = config_path(source)
    if not path.is_file():
        raise UsageError(f"{option} {stage}: {path} does not exist", f"{option} only applies to Chalice projects")
    data = _read(path)
    stages = data.get("stages") or {}
    chosen = stage
    if chosen not in stages:
        raise UsageError(
            f"{option} {stage}: no such stage in {path}",
            f"choose one of: {', '.join(sorted(stages)) or '(none defined)'}",
        )
    stage_table: dict[str, Any] = stages[chosen] or {}
    values: dict[str, str] = {}
    values.update(_env_table(data.get("environment_variables"), f"{path}: environment_variables"))
    values.update(_env_table(stage_table.get("environment_variables"), f"{path}: stages.{chosen}"))
    handler = ((stage_table.get("lambda_functions") or {}).get("api_handler") or {})
    values.update(_env_table(handler.get("environment_variables"), f"{path}: stages.{chosen}.lambda_functions"))
    placeholders = sorted(k for k, v in values.items() if PLACEHOLDER_RE.match(v))
    for k in placeholders:
        del values[k]
    return StageEnv(path=path, stage=chosen, values=values, placeholders=placeholders)
