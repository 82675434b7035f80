"""The distributions of an installed tree: metadata, requirements and the files each one installed
(its ``*.dist-info/RECORD``), and which source a compiled ``.pyc`` belongs to."""

from __future__ import annotations

import csv
import email.parser
import os
import re
from dataclasses import dataclass
from pathlib import Path

from lambdaship.package.requirements import requirement_name


@dataclass
class Dist:
    """One installed distribution."""

    name: str
    version: str
    requires: list[str]
    paths: list[str]


def read_dists(root: Path) -> list[Dist]:
    """The distributions installed in ``root`` (its ``*.dist-info`` directories, sorted): name and
    version from METADATA, runtime requirements, the paths its RECORD lists (relative to ``root``)."""
    out = []
    for info in sorted(root.glob("*.dist-info")):
        if not info.is_dir():
            continue
        name, version, requires = info.name.removesuffix(".dist-info"), "", []
        if "-" in name:
            name, version = name.rsplit("-", 1)
        meta = info / "METADATA"
        if meta.is_file():
            headers = email.parser.HeaderParser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
            name = str(headers.get("Name") or name).strip()
            version = str(headers.get("Version") or version).strip()
            for value in headers.get_all("Requires-Dist") or []:
                if not re.search(r"\bextra\s*==", str(value)) and (r := requirement_name(str(value))) is not None:
                    requires.append(r)
        paths: list[str] = []
        record = info / "RECORD"
        if record.is_file():
            with record.open(newline="", encoding="utf-8", errors="replace") as fh:
                for row in csv.reader(fh):
                    if not row or not row[0]:
                        continue
                    rel = os.path.normpath(row[0]).replace(os.sep, "/")
                    if not rel.startswith("../"):
                        paths.append(rel)
        out.append(Dist(name, version, requires, paths))
    return out


def pyc_source(name: str) -> str:
    """``pkg/__pycache__/mod.cpython-312.pyc`` → ``pkg/mod.py`` (bytecode compiled after install)."""
    parts = name.split("/")
    if len(parts) >= 2 and parts[-2] == "__pycache__" and parts[-1].endswith(".pyc"):
        module = parts[-1].split(".", 1)[0]
        return "/".join([*parts[:-2], module + ".py"])
    return ""
