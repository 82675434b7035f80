"""Requirement files are input from the repository: checked before the installer sees them, so
that nothing in them runs code on the build host, reads a host file or downgrades a transport.

The installer only ever installs wheels (``--only-binary :all:``); these checks refuse, with one
line naming the file, the line number and the fix (never the line's content, never another
file's content):

- the requirements file, and every ``-r``/``-c`` file it names (relative to the file naming it),
  must lie inside the project (the config file's directory), be a regular UTF-8 text file of at
  most 1 MiB; a path outside (``/etc/passwd``, ``../../x``, a symlink out) is refused unread;
- ``-e``/``--editable`` and local paths (``./pkg``, ``/abs/dir``, ``name @ file:///…``): building
  them runs their ``setup.py`` here (and writes ``*.egg-info`` into the tree) — refused; a local
  ``.whl`` file inside the project is fine;
- VCS requirements (``git+…``, ``hg+…``, ``svn+…``, ``bzr+…``) and source archives by URL: built
  here — refused; an ``https://…/x.whl`` URL is fine;
- ``--index-url``/``--extra-index-url``/``--find-links`` over plain ``http://`` (except loopback)
  or to a host path (``file:``, a directory outside the project) — refused; ``https://`` indexes
  and ``--find-links <dir inside the project>`` are fine;
- ``--trusted-host`` (turns TLS verification off), ``--no-binary`` (asks for a source build) and
  every other installer option (``--install-option``, ``--global-option``, ``--config-settings``,
  ``--use-pep517``, ``--no-build-isolation``, ``--src`` …) — refused.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import urlsplit

from lambdaship.errors import LambdashipError

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 16
INCLUDE_OPTS = {"-r", "--requirement", "-c", "--constraint"}
INDEX_OPTS = {"-i", "--index-url", "--extra-index-url"}
LINK_OPTS = {"-f", "--find-links"}
FLAG_OPTS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}
VALUE_OPTS = {"--only-binary"}
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
HINT_WHEEL = ("build a wheel of it in CI (uv build / pip wheel), put it in a directory of the project and "
              "add '--find-links <dir>' with the package's name, or publish it to your index")


def check_tree(path: Path, root: Path) -> list[Path]:
    """Check ``path`` and every file it includes; the files, in reading order."""
    seen: list[Path] = []
    _check_file(path, root, seen, depth=0, named_by=None)
    return seen


def check_generated(path: Path, label: str, base: Path, root: Path) -> None:
    """Check a requirements file lambdaship wrote from ``label`` (pyproject.toml, a lock file):
    the same rules per line, paths relative to ``base``; it may include no other file."""
    for lineno, line in _logical_lines(path.read_text(encoding="utf-8")):
        if _check_line(line, f"{label} (pinned line {lineno})", base, root):
            raise LambdashipError(f"{label}: a pinned list may not include other files", "remove the -r/-c entry")


def _show(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _check_file(path: Path, root: Path, seen: list[Path], depth: int, named_by: str | None) -> None:
    real = path.resolve()
    where = f" (named by {named_by})" if named_by else ""
    if not inside(real, root):
        raise LambdashipError(
            f"requirements file {path}{where} is outside the project ({root})",
            "keep requirement files inside the project directory and name them relative to it",
        )
    if real in seen:
        return
    if depth > MAX_DEPTH:
        raise LambdashipError(f"requirements: -r/-c nested more than {MAX_DEPTH} deep at {_show(real, root)}")
    if not real.is_file():
        what = "not a regular file" if real.exists() else "not found"
        raise LambdashipError(f"requirements file {_show(real, root)}{where}: {what}",
                              "fix the path (relative to the file that names it)")
    if real.stat().st_size > MAX_BYTES:
        raise LambdashipError(f"requirements file {_show(real, root)} is over {MAX_BYTES // 1024} KiB",
                              "point 'requirements' at a requirements.txt")
    seen.append(real)
    try:
        text = real.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LambdashipError(f"requirements file {_show(real, root)} is not UTF-8 (byte {exc.start})",
                              "save it as UTF-8") from None
    for lineno, line in _logical_lines(text):
        here = f"{_show(real, root)}:{lineno}"
        for inc in _check_line(line, here, real.parent, root):
            _check_file(real.parent / inc, root, seen, depth + 1, here)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with ``\\`` continuations joined and comments removed."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
        if raw.endswith("\\"):
            buf += raw[:-1] + " "
            continue
        line = buf + raw
        buf = ""
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        for i, ch in enumerate(line):  # '#' after whitespace starts a comment (pip's rule)
            if ch == "#" and (i == 0 or line[i - 1].isspace()):
                line = line[:i]
                break
        if line.strip():
            out.append((start, line.strip()))
    if buf.strip():
        out.append((start, buf.strip()))
    return out


def _split_opt(tokens: list[str], i: int) -> tuple[str, str | None, int]:
    """(option, value, next index) for ``--opt=value``, ``--opt value``, ``-ivalue``."""
    tok = tokens[i]
    if tok.startswith("--") and "=" in tok:
        opt, value = tok.split("=", 1)
        return opt, value, i + 1
    if not tok.startswith("--") and len(tok) > 2:
        return tok[:2], tok[2:].lstrip("="), i + 1
    needs = tok in INCLUDE_OPTS | INDEX_OPTS | LINK_OPTS | VALUE_OPTS | {"-e", "--editable"}
    if needs:
        return tok, tokens[i + 1] if i + 1 < len(tokens) else None, i + 2
    return tok, None, i + 1


def _check_line(line: str, here: str, base: Path, root: Path) -> list[str]:
    """Refuse what the line must not do; the -r/-c files it names."""
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError:
        raise LambdashipError(f"{here}: cannot be parsed (unbalanced quotes)", "fix the line") from None
    if not tokens:
        return []
    if not tokens[0].startswith("-"):
        spec = tokens[0] if len(tokens) == 1 or tokens[1].startswith("-") else line.split(" -", 1)[0]
        _check_spec(spec.strip(), here, base, root)
        for tok in tokens[1:]:
            if tok.startswith("-") and not tok.startswith("--hash"):
                opt = tok.split("=", 1)[0]
                raise LambdashipError(f"{here}: per-requirement option {opt!r} is not allowed",
                                      "remove it (lambdaship installs wheels only; --hash is kept)")
        return []
    includes = []
    i = 0
    while i < len(tokens):
        opt, value, i = _split_opt(tokens, i)
        if opt in ("-e", "--editable"):
            raise LambdashipError(
                f"{here}: editable requirement ('-e') would run its build (setup.py) on this machine",
                HINT_WHEEL,
            )
        if opt in INCLUDE_OPTS:
            if not value:
                raise LambdashipError(f"{here}: {opt} needs a file name", "fix the line")
            includes.append(value)
        elif opt in INDEX_OPTS:
            _check_url(value, opt, here, root, base, allow_path=False)
        elif opt in LINK_OPTS:
            _check_url(value, opt, here, root, base, allow_path=True)
        elif opt == "--trusted-host":
            raise LambdashipError(f"{here}: --trusted-host turns TLS verification off for a host",
                                  "remove it and serve the index over HTTPS with a valid certificate")
        elif opt == "--no-binary":
            raise LambdashipError(f"{here}: --no-binary asks for a build from source on this machine",
                                  "remove it: Lambda packages are installed from wheels only")
        elif opt in FLAG_OPTS or opt in VALUE_OPTS:
            continue
        else:
            raise LambdashipError(f"{here}: option {opt!r} is not allowed in requirements",
                                  "remove it (lambdaship installs wheels for the target; build options do not apply)")
    return includes


def _check_url(value: str | None, opt: str, here: str, root: Path, base: Path, *, allow_path: bool) -> None:
    if not value:
        raise LambdashipError(f"{here}: {opt} needs a value", "fix the line")
    u = urlsplit(value)
    scheme = u.scheme.lower()
    if scheme == "https":
        return
    if scheme == "http":
        if (u.hostname or "") in LOOPBACK:
            return
        raise LambdashipError(f"{here}: {opt} uses plain http to {u.hostname or '?'}",
                              "use https:// (packages and any credentials in the URL travel in clear text)")
    if scheme in ("", "file") and allow_path:
        local = Path(u.path if scheme == "file" else value)
        path = (local if local.is_absolute() else base / local).resolve()
        if inside(path, root):
            return
        raise LambdashipError(f"{here}: {opt} points at a directory outside the project",
                              "keep vendored wheels in a directory inside the project and name it relative to the file")
    raise LambdashipError(f"{here}: {opt} must be an https:// URL", "use an https:// index URL")


def _check_spec(spec: str, here: str, base: Path, root: Path) -> None:
    """A requirement: a name (PEP 508), a wheel URL, or a wheel file inside the project."""
    target = spec
    if "@" in spec and "://" not in spec.split("@", 1)[0]:
        target = spec.split("@", 1)[1].strip()  # name @ url
    if target.lower().startswith(("git+", "hg+", "svn+", "bzr+")):
        raise LambdashipError(f"{here}: a VCS requirement is built from source on this machine", HINT_WHEEL)
    if "://" in target:
        u = urlsplit(target)
        if u.scheme.lower() == "file":
            raise LambdashipError(f"{here}: a file:// requirement installs from this machine's disk", HINT_WHEEL)
        if u.scheme.lower() not in ("https", "http"):
            raise LambdashipError(f"{here}: unsupported URL scheme {u.scheme!r}", "use an https:// URL of a wheel")
        if u.scheme.lower() == "http" and (u.hostname or "") not in LOOPBACK:
            raise LambdashipError(f"{here}: a plain http URL", "use https://")
        if not u.path.endswith(".whl"):
            raise LambdashipError(f"{here}: a source archive by URL is built on this machine",
                                  "use a wheel URL (…/name-version-….whl) or a name from the index")
        return
    looks_local = target.startswith((".", "/", "~")) or "/" in target or "\\" in target
    if looks_local or (target == spec and not target[:1].isalnum()):
        local = (base / Path(target).expanduser()).resolve()
        if target.endswith(".whl") and inside(local, root):
            return
        raise LambdashipError(f"{here}: a local path requirement is built or read from this machine", HINT_WHEEL)
