"""The project's own ignore files: ``.gitignore`` (git's rules) and ``.dockerignore`` (Docker's).

- ``.gitignore``: every ``.gitignore`` from the repository root (the nearest ancestor holding
  ``.git``; without one, the config file's directory) down to each directory of the source tree
  applies to its own directory and below, the deeper file winning, as git reads them. An ignored
  directory is left out whole (git cannot re-include a file below an ignored directory either).
  The machine's global excludes file is not read: the same checkout must give the same image on
  every machine.
- ``.dockerignore``: only the one at the root of ``source`` (Docker reads only the context
  root's). Patterns are anchored at that root (``*.pyc`` matches ``./x.pyc`` only; ``**/*.pyc``
  any depth), the last matching pattern wins, ``!pattern`` re-includes, also below an excluded
  directory.

Patterns are matched by ``pathspec`` (git's wildmatch). The config's ``include`` globs win over
both; ``use_gitignore = false`` / ``use_dockerignore = false`` turn them off.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

MAX_IGNORE_BYTES = 1024 * 1024  # larger "ignore files" are not ignore files


def _lines(path: Path) -> list[str] | None:
    with contextlib.suppress(OSError):
        if path.is_file() and path.stat().st_size <= MAX_IGNORE_BYTES:
            return path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return None


def _repo_chain(source: Path, root: Path | None) -> list[Path]:
    """Directories above ``source`` whose .gitignore applies to it, outermost first."""
    chain = []
    for d in source.parents:
        chain.append(d)
        if (d / ".git").exists():
            return list(reversed(chain))
    if root is not None and root != source and root in source.parents:
        return list(reversed([d for d in source.parents if d == root or root in d.parents]))
    return []


@dataclass
class IgnoreRules:
    """The ignore files that apply to one source tree; ask with paths relative to it."""

    source: Path
    gitignore: bool = True
    dockerignore: bool = True
    root: Path | None = None
    _git: dict[str, pathspec.GitIgnoreSpec | None] = field(default_factory=dict)  # rel dir -> spec
    _above: list[tuple[str, pathspec.GitIgnoreSpec]] = field(default_factory=list)
    _docker: pathspec.GitIgnoreSpec | None = None
    docker_negates: bool = False

    def __post_init__(self) -> None:
        if self.gitignore:
            for d in _repo_chain(self.source, self.root):
                lines = _lines(d / ".gitignore")
                if lines:
                    prefix = self.source.relative_to(d).as_posix()
                    self._above.append((prefix, pathspec.GitIgnoreSpec.from_lines(lines)))
        if self.dockerignore:
            lines = _lines(self.source / ".dockerignore")
            if lines:
                anchored = []
                for line in lines:
                    s = line.strip()
                    if not s or s.startswith("#"):
                        continue
                    neg = s.startswith("!")
                    s = s.lstrip("!").strip().lstrip("/").removeprefix("./")
                    if s:
                        anchored.append(("!" if neg else "") + "/" + s)
                        self.docker_negates |= neg
                self._docker = pathspec.GitIgnoreSpec.from_lines(anchored)

    def _git_spec(self, rel_dir: str) -> pathspec.GitIgnoreSpec | None:
        if rel_dir not in self._git:
            lines = _lines(self.source / rel_dir / ".gitignore") if self.gitignore else None
            self._git[rel_dir] = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        return self._git[rel_dir]

    def git_ignored(self, rel: str, is_dir: bool) -> bool:
        """Does a .gitignore leave out ``rel`` itself (its parents are checked while walking)?"""
        if not self.gitignore:
            return False
        probe = rel + "/" if is_dir else rel
        result: bool | None = None
        for prefix, spec in self._above:
            r = spec.check_file(f"{prefix}/{probe}").include
            result = r if r is not None else result
        parts = rel.split("/")
        for i in range(len(parts)):
            spec = self._git_spec("/".join(parts[:i]))
            if spec is not None:
                r = spec.check_file("/".join(parts[i:]) + ("/" if is_dir else "")).include
                result = r if r is not None else result
        return bool(result)

    def docker_ignored(self, rel: str, is_dir: bool) -> bool:
        """Does the .dockerignore leave out ``rel`` (the last matching pattern wins)?"""
        if self._docker is None:
            return False
        return bool(self._docker.check_file(rel + "/" if is_dir else rel).include)

    def prune_dir(self, rel: str) -> bool:
        """Leave out the whole directory ``rel``?"""
        if self.git_ignored(rel, True):
            return True
        return self.docker_ignored(rel, True) and not self.docker_negates

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        return self.git_ignored(rel, is_dir) or self.docker_ignored(rel, is_dir)
