"""The app as files: which of the project's files go into the image, and is the handler there.

Files under the function's ``source`` directory go to ``/var/task`` (``LAMBDA_TASK_ROOT``) with
their relative paths. A file is left out when a default exclude or one of the user's
``exclude`` globs matches it, unless one of the user's ``include`` globs matches it (include
wins). Glob rules (like .gitignore): a pattern without ``/`` matches a file or directory name
at any depth; a pattern with ``/`` matches the path relative to ``source`` (``*`` may cross
``/``); a matched directory drops everything below it. The project's ``.gitignore`` files and its
``.dockerignore`` are honoured as well (``lambdaship.ignorefiles``; ``use_gitignore = false`` /
``use_dockerignore = false`` turn them off), and ``include`` wins over them too.

Default excludes (``DEFAULT_EXCLUDES``): version control, virtual environments, caches and test
directories, and the files a repository commonly holds credentials in (``SECRET_EXCLUDES``):
``.env*``/``*.env``, ``.envrc``, ``.netrc``, ``.pypirc``, ``.npmrc``, ``.git-credentials``,
``.pgpass``, ``.docker/config.json``, ``.kube/``, ``.gnupg/``, ``.ssh/``, ``.aws/``,
``.config/gcloud/``, ``.azure/``, Terraform state and variable files, keys and key stores
(``*.pem``, ``*.key``, ``id_rsa*``…, ``*.p12``, ``*.pfx``, ``*.jks``, ``*.keystore``, ``*.ppk``).
Files that still look like credentials (by name or content) are reported by
``lambdaship.credentials.warn_credentials``, by name only.

The handler (``module.attr``, e.g. ``app.app`` for Chalice) is checked without importing user
code: the module file must be among the app files, and ``ast`` must find the attribute
defined at the module's top level (def, class, assignment or import).
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import functools
import os
import re
import stat
from pathlib import Path

from lambdaship.config import FunctionConfig, is_chalice_app
from lambdaship.credentials import CONTENT_PATTERNS, SCAN_MAX, warn_credentials
from lambdaship.errors import LambdashipError
from lambdaship.ignorefiles import IgnoreRules

SECRET_EXCLUDES: tuple[str, ...] = (
    ".env", ".env.*", ".env*", "*.env", ".envrc", ".netrc", "_netrc", ".pypirc", ".npmrc", ".yarnrc.yml",
    ".git-credentials", ".pgpass", ".boto", ".s3cfg", ".dockercfg", "**/.docker/config.json", ".kube",
    ".gnupg", ".ssh", ".aws", "**/.config/gcloud", ".azure", ".terraform", "terraform.tfstate*", "*.tfstate",
    "*.tfstate.backup", "*.tfvars", "*.pem", "*.key", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk", "*.kdbx",
)
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "*.pyc", "*.pyo",
    "tests", "test", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox",
    ".chalice/deployments", ".lambdaship", ".DS_Store", ".idea", ".vscode", "node_modules",
    *SECRET_EXCLUDES,
    "lambdaship.toml",  # the config holds 'environment' values: they go to Lambda, not the image
)
# An AWS access key ID (long-term AKIA…, temporary ASIA…) in an app file.
ACCESS_KEY_RE = CONTENT_PATTERNS[0][1]
ACCESS_KEY_SCAN_MAX = SCAN_MAX


@functools.lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(name patterns, path patterns) of ``patterns``, each set as one regular expression: a
    project walk asks ~70 patterns (the default excludes) about every path component."""
    names: list[str] = []
    paths: list[str] = []
    for pat in patterns:
        pat = pat.strip().rstrip("/")
        if not pat:
            continue
        if "/" in pat:  # matched against the whole relative path, with or without its "**/" parts
            pat = pat.lstrip("/").removeprefix("./")
            paths += [pat, pat.replace("**/", "")]
        else:  # matched against the last component
            names.append(pat)

    def one(pats: list[str]) -> re.Pattern[str] | None:
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in pats)) if pats else None

    return one(names), one(paths)


def _matches(rel: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether the relative path ``rel`` matches one of ``patterns`` (fnmatch, case-sensitive):
    a pattern with a "/" the whole path, another the last component."""
    by_name, by_path = _compiled(tuple(patterns))
    if by_path is not None and by_path.match(rel):
        return True
    return by_name is not None and by_name.match(rel.rsplit("/", 1)[-1]) is not None


def matches_within(rel: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether ``rel`` or a directory above it matches one of ``patterns``."""
    parts = rel.split("/")
    return any(_matches("/".join(parts[: i + 1]), patterns) for i in range(len(parts)))


def app_files(fn: FunctionConfig, *, extra_excludes: list[Path] | None = None) -> list[tuple[str, Path]]:
    """``(arcname relative to /var/task, path)`` for every file and symlink of the app, sorted.

    The function's ``source`` tree, plus each ``shared`` path (relative to the config file) that
    lies outside it, under the same relative path: ``shared = ["common"]`` → ``/var/task/common``.

    ``extra_excludes``: absolute paths to leave out as well (e.g. a build output directory
    inside the project).
    """
    files = _chalice_vendor(fn, _source_files(fn, extra_excludes))
    root = fn.root or fn.source
    seen = {arc for arc, _ in files}
    for rel in fn.shared:
        rel = rel.strip().strip("/").removeprefix("./")
        path = (root / rel).resolve()
        if not rel or path == fn.source or fn.source in path.parents:
            continue  # already part of the source tree
        if root not in path.parents:
            raise LambdashipError(
                f"shared path {rel!r} of function {fn.key!r} is outside the project ({root})",
                "list only paths inside the directory of the config file",
            )
        if path.is_dir():
            sub = fn.model_copy(update={"source": path, "include": [], "shared": [], "root": path})
            extra = [(f"{rel}/{arc}", p) for arc, p in _source_files(sub, extra_excludes)]
        elif path.is_file():
            extra = [(rel, path)]
        else:
            raise LambdashipError(
                f"shared path {rel!r} of function {fn.key!r} does not exist", "fix or remove it in 'shared'"
            )
        for arc, _ in extra:
            if arc in seen:
                raise LambdashipError(
                    f"{arc} is both in the source of function {fn.key!r} and in its shared path {rel!r}",
                    "rename one of them or narrow 'shared'",
                )
            seen.add(arc)
        files.extend(extra)
    files.sort(key=lambda item: item[0].split("/"))
    return files


def _chalice_vendor(fn: FunctionConfig, files: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """A Chalice app's ``vendor/`` directory goes to the package root, as ``chalice package`` puts it."""
    if not any(rel.startswith("vendor/") for rel, _ in files) or not is_chalice_app(fn.source):
        return files
    own = {rel for rel, _ in files if not rel.startswith("vendor/")}
    out = []
    for rel, path in files:
        if rel.startswith("vendor/"):
            rel = rel.removeprefix("vendor/")
            if rel in own:
                raise LambdashipError(
                    f"vendor/{rel} of Chalice app {fn.key!r} would replace the app's own {rel}",
                    "rename one of them (Chalice puts vendor/ at the package root)",
                )
        out.append((rel, path))
    return out


def _source_files(fn: FunctionConfig, extra_excludes: list[Path] | None) -> list[tuple[str, Path]]:
    root = fn.source
    excludes = (*DEFAULT_EXCLUDES, *fn.exclude)
    includes = tuple(p.strip().lstrip("/").removeprefix("./") for p in fn.include if p.strip())
    skip = {os.path.abspath(p) for p in (extra_excludes or [])}
    if fn.config_file is not None:  # whatever its name (-C prod.toml): it holds the environment values
        skip.add(os.path.abspath(fn.config_file))
    pyproject = root / "pyproject.toml"
    with contextlib.suppress(OSError):  # a pyproject.toml holding the lambdaship config (and its environment)
        if pyproject.is_file() and re.search(rb"^\s*\[\s*tool\.lambdaship\b", pyproject.read_bytes(), re.M):
            skip.add(os.path.abspath(pyproject))
    out: list[tuple[str, Path]] = []

    def included(rel: str) -> bool:
        return matches_within(rel, includes)

    def wanted(rel: str) -> bool:
        return included(rel) or not matches_within(rel, excludes)

    def include_below(rel_dir: str) -> bool:
        # An include path glob such as 'tests/fixtures/*.json' reaches into an excluded dir.
        for pat in includes:
            literal = re.split(r"[*?\[]", pat, maxsplit=1)[0]
            if "/" in pat and (literal.startswith(rel_dir + "/") or (rel_dir + "/").startswith(literal)):
                return True
        return False

    rules = IgnoreRules(root, gitignore=fn.use_gitignore, dockerignore=fn.use_dockerignore, root=fn.root)
    ignored_dirs: set[str] = set()  # walked only because an include glob reaches below them

    def ignored(rel: str, is_dir: bool) -> bool:
        parent = rel.rpartition("/")[0]
        return parent in ignored_dirs or rules.ignored(rel, is_dir)

    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        kept_dirs = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            full = os.path.join(dirpath, d)
            if os.path.abspath(full) in skip:
                continue
            if os.path.islink(full):
                if included(rel) or (wanted(rel) and not ignored(rel, False)):
                    out.append((rel, Path(full)))
            elif included(rel) or (wanted(rel) and rel_dir not in ignored_dirs and not rules.prune_dir(rel)):
                kept_dirs.append(d)
            elif include_below(rel):
                kept_dirs.append(d)
                ignored_dirs.add(rel)
        dirnames[:] = kept_dirs
        for f in sorted(filenames):
            rel = f"{rel_dir}/{f}" if rel_dir else f
            full = os.path.join(dirpath, f)
            if os.path.abspath(full) not in skip and (included(rel) or (wanted(rel) and not ignored(rel, False))):
                out.append((rel, Path(full)))
    out.sort(key=lambda item: item[0].split("/"))
    return out


def _module_candidates(module: str) -> list[str]:
    base = module.replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py"]


def _defined_names(body: list[ast.stmt]) -> tuple[set[str], bool]:
    """Top-level names a module binds, and whether it has ``import *`` or ``__getattr__``."""
    names: set[str] = set()
    dynamic = False

    def targets(node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Tuple | ast.List):
            for elt in node.elts:
                targets(elt)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    def visit(stmts: list[ast.stmt]) -> None:
        nonlocal dynamic
        for node in stmts:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
                if node.name == "__getattr__":
                    dynamic = True
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    targets(t)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                targets(node.target)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    if alias.name == "*":
                        dynamic = True
                    else:
                        names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, []) or [])
                for h in getattr(node, "handlers", []) or []:
                    visit(h.body)
            elif isinstance(node, ast.Expr | ast.NamedExpr):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.NamedExpr):
                        targets(sub.target)

    visit(body)
    return names, dynamic


def check_handler(fn: FunctionConfig, files: list[tuple[str, Path]] | None = None) -> None:
    """Raise LambdashipError unless the handler's module is an app file defining the attribute."""
    handler = fn.resolved_handler
    module, _, attr = handler.rpartition(".")
    files = app_files(fn) if files is None else files
    by_name = dict(files)
    candidates = _module_candidates(module)
    found = next((c for c in candidates if c in by_name), None)
    if found is None:
        on_disk = next((c for c in candidates if (fn.source / c).is_file()), None)
        if on_disk:
            raise LambdashipError(
                f"handler {handler!r}: module file {on_disk} is excluded from the image",
                "remove the exclude pattern that matches it, or add it to 'include'",
            )
        raise LambdashipError(
            f"handler {handler!r}: module file {candidates[0]} not found in {fn.source}",
            "fix 'handler' (module path relative to 'source', e.g. 'app.handler' for app.py)",
        )
    path = by_name[found]
    try:
        regular = stat.S_ISREG(path.stat().st_mode)
    except OSError:
        regular = True  # the read below reports why
    if not regular:  # a FIFO would block the read forever; the image leaves special files out anyway
        raise LambdashipError(
            f"handler {handler!r}: {found} is not a regular file",
            "replace it with the module's source file",
        )
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise LambdashipError(
            f"handler {handler!r}: {found} line {exc.lineno}: syntax error: {exc.msg}", "fix the syntax"
        ) from None
    except OSError as exc:
        raise LambdashipError(f"handler {handler!r}: cannot read {found}: {exc.strerror}") from None
    names, dynamic = _defined_names(tree.body)
    if attr not in names and not dynamic:
        raise LambdashipError(
            f"handler {handler!r}: {found} does not define {attr!r}",
            f"define '{attr}' at the module's top level or fix 'handler'",
        )


def files_with_access_keys(files: list[tuple[str, Path]]) -> list[str]:
    """Arcnames of the regular app files (up to 4 MiB) that contain an AWS access key ID."""
    hits = []
    for rel, path in files:
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode) or st.st_size > ACCESS_KEY_SCAN_MAX:
                continue
            if ACCESS_KEY_RE.search(path.read_bytes()):
                hits.append(rel)
        except OSError:
            continue
    return hits


def warn_access_keys(files: list[tuple[str, Path]]) -> list[str]:
    """One warning line on stderr per app file that looks like a credential (by name or content:
    AWS keys, private keys, tokens), naming the file, never its content. See
    :func:`lambdaship.credentials.warn_credentials`."""
    return warn_credentials(files)
