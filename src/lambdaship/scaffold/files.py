"""Writing generated files: all-or-nothing, never overwriting different content without --force."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lambdaship.errors import LambdashipError


@dataclass(frozen=True)
class Written:
    path: Path
    status: str  # "created" | "overwritten" | "unchanged"

    def as_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "status": self.status}


def write_files(files: dict[Path, str], *, force: bool = False) -> list[Written]:
    """Write every file, or none: a file that exists with other content is an error unless ``force``.

    Identical content is left alone (byte-identical re-runs, mtime untouched).
    """
    plan: list[Written] = []
    conflicts: list[Path] = []
    for path, text in files.items():
        if path.exists():
            if path.is_dir():
                raise LambdashipError(f"{path} is a directory", "choose another output path with --out")
            if path.read_bytes() == text.encode():
                plan.append(Written(path, "unchanged"))
                continue
            if not force:
                conflicts.append(path)
                continue
            plan.append(Written(path, "overwritten"))
        else:
            plan.append(Written(path, "created"))
    if conflicts:
        names = ", ".join(str(p) for p in conflicts)
        raise LambdashipError(
            f"{names} already exist{'s' if len(conflicts) == 1 else ''} with different content",
            "nothing was written; use --force to overwrite",
        )
    for item in plan:
        if item.status == "unchanged":
            continue
        item.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = item.path.with_name(item.path.name + ".lambdaship-tmp")
        tmp.write_text(files[item.path], encoding="utf-8")
        tmp.replace(item.path)
    return plan


def git_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` holding ``.git``."""
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None
