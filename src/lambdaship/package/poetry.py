"""Poetry's dependency specifications as PEP 508 lines (``^1.2`` → ``>=1.2,<2.0``, ``python``
and ``markers`` as environment markers), for ``[tool.poetry.dependencies]``."""

from __future__ import annotations

import re
from typing import Any


def poetry_lines(name: str, spec: Any) -> list[str]:
    """One Poetry dependency as PEP 508 lines; "!name" for git/path/url ones; none if optional.
    A list of constraints (one per marker) gives one line each."""
    if isinstance(spec, list):
        return [line for s in spec for line in poetry_lines(name, s)]
    if isinstance(spec, str):
        return [f"{name}{poetry_constraint(spec)}"]
    if not isinstance(spec, dict) or spec.get("optional"):
        return []
    if set(spec) & {"git", "path", "url"}:
        return [f"!{name}"]
    extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
    markers = [m for m in (spec.get("markers"),) if m]
    if spec.get("python"):
        markers.append(" and ".join(f"python_version {op} '{v}'" for op, v in _ranges(spec["python"])))
    marker = " and ".join(f"({m})" for m in markers)
    return [f"{name}{extras}{poetry_constraint(spec.get('version', '*'))}" + (f" ; {marker}" if marker else "")]


def _bump(parts: list[int], index: int) -> str:
    head = [*parts[:index], parts[index] + 1]
    return ".".join(map(str, head + [0] * (max(len(parts), 2) - len(head))))


def poetry_constraint(spec: str) -> str:
    """Poetry's ``^``/``~``/``*``/bare versions as PEP 440 specifiers (``^1.2`` → ``>=1.2,<2.0``)."""
    out = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part == "*":
            continue
        m = re.fullmatch(r"([\^~])=?\s*(\d+(?:\.\d+)*)", part)
        if m:
            nums = [int(x) for x in m.group(2).split(".")]
            if m.group(1) == "^":
                first = next((i for i, n in enumerate(nums) if n != 0), len(nums) - 1)
                out.append(f">={m.group(2)},<{_bump(nums, first)}")
            else:
                out.append(f">={m.group(2)},<{_bump(nums, 0 if len(nums) == 1 else 1)}")
        elif re.fullmatch(r"\d+(?:\.\d+)*(?:\.\*)?", part):
            out.append(f"=={part}")
        else:
            out.append(part)
    return ",".join(out)


def _ranges(spec: str) -> list[tuple[str, str]]:
    out = []
    for s in poetry_constraint(spec).split(","):
        m = re.fullmatch(r"(>=|<=|==|!=|>|<|~=)\s*(\S+)", s.strip())
        if m:
            out.append((m.group(1), m.group(2)))
    return out
