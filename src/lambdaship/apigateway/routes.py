"""Route tables for the local gateway: :class:`Route`, matching a path to a route template,
the routes of an :class:`~lambdaship.api.model.AppModel`, and — for images, whose app is not
imported — the routes read statically (``ast``) from ``@app.route`` decorators."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from lambdaship.apigateway.model import AppModel

_CORS = "<cors>"



@dataclass(frozen=True)
class Route:
    """One route template with the methods it accepts (``ANY`` = all).

    ``cors_headers``: the route's ``CORSConfig.get_access_control_headers()`` (None with
    ``cors`` = Chalice's default config); ``api_key``: methods with ``api_key_required``;
    ``auth``: (method, authorizer name) pairs."""

    path: str
    methods: tuple[str, ...]
    cors: bool = False
    cors_headers: tuple[tuple[str, str], ...] | None = None
    cors_methods: tuple[str, ...] = ()
    api_key: frozenset[str] = frozenset()
    auth: tuple[tuple[str, str], ...] = ()

    def authorizer_for(self, method: str) -> str | None:
        return dict(self.auth).get(method)

    @property
    def regex(self) -> re.Pattern[str]:
        parts = []
        for seg in self.path.strip("/").split("/") if self.path.strip("/") else []:
            m = re.fullmatch(r"\{([^}+]+)(\+?)\}", seg)
            if m and m.group(2):
                parts.append("(.+)")
            elif m:
                parts.append("([^/]+)")
            else:
                parts.append(re.escape(seg))
        return re.compile("^/" + "/".join(parts) + "/?$" if parts else "^/$")

    @property
    def specificity(self) -> tuple[int, int, int]:
        segs = [s for s in self.path.split("/") if s]
        literal = sum(1 for s in segs if not s.startswith("{"))
        greedy = sum(1 for s in segs if s.endswith("+}"))
        return (-greedy, literal, len(segs))


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def _app_names(tree: ast.Module, kinds: tuple[str, ...]) -> set[str]:
    return {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _call_name(node.value.func) in kinds
        for t in node.targets if isinstance(t, ast.Name)
    }


def _decorated_routes(tree: ast.Module, names: set[str]) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for dec in node.decorator_list:
            if not (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "route"
                    and isinstance(dec.func.value, ast.Name) and dec.func.value.id in names):
                continue
            if not dec.args or not isinstance(dec.args[0], ast.Constant) or not isinstance(dec.args[0].value, str):
                continue
            methods: set[str] = {"GET"}
            cors = False
            for kw in dec.keywords:
                if kw.arg == "methods" and isinstance(kw.value, ast.List | ast.Tuple):
                    methods = {e.value.upper() for e in kw.value.elts
                               if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                elif kw.arg == "cors":
                    cors = not (isinstance(kw.value, ast.Constant) and not kw.value.value)
            if cors:
                methods.add(_CORS)
            routes.setdefault(dec.args[0].value, set()).update(methods)
    return routes


def _module_file(app_dir: Path, module: str) -> Path | None:
    base = app_dir.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _blueprint_routes(app_dir: Path, tree: ast.Module) -> dict[str, set[str]]:
    """Routes of blueprints registered with ``app.register_blueprint(bp, url_prefix=...)``."""
    imported: dict[str, tuple[str, str]] = {}  # local name -> (module, name in module)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
    routes: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "register_blueprint" and node.args):
            continue
        prefix = ""
        for kw in node.keywords:
            if kw.arg == "url_prefix" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                prefix = kw.value.value
        if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            prefix = node.args[1].value
        target = node.args[0]
        if isinstance(target, ast.Name) and target.id in imported:
            module, name = imported[target.id]
            path = _module_file(app_dir, module)
            sub = _parse(path) if path else None
            names = {name} & _app_names(sub, ("Blueprint",)) if sub else set()
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in imported:
            module, name = imported[target.value.id]
            path = _module_file(app_dir, f"{module}.{name}")
            sub = _parse(path) if path else None
            names = {target.attr} & _app_names(sub, ("Blueprint",)) if sub else set()
        elif isinstance(target, ast.Name):
            sub, names = tree, {target.id}
        else:
            continue
        if not sub or not names:
            continue
        for route, methods in _decorated_routes(sub, names).items():
            full = (prefix.rstrip("/") + route) if route != "/" or not prefix else prefix
            routes.setdefault(full or "/", set()).update(methods)
    return routes


def chalice_routes(app_dir: Path) -> list[Route] | None:
    """The routes of the Chalice app in ``app_dir`` (None when it is not a Chalice app).

    Read statically from ``@app.route`` decorators in ``app.py`` and from blueprints
    registered there (``app.register_blueprint(bp, url_prefix=...)``, imported from the app's
    own modules); nothing of the app is imported.
    """
    tree = _parse(app_dir / "app.py")
    if tree is None:
        return None
    app_names = _app_names(tree, ("Chalice",))
    if not app_names:
        return None
    routes = _decorated_routes(tree, app_names)
    for path, methods in _blueprint_routes(app_dir, tree).items():
        routes.setdefault(path, set()).update(methods)
    # app.api.cors = True turns CORS on for every route
    global_cors = any(
        isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value is True
        and any(isinstance(t, ast.Attribute) and t.attr == "cors" and isinstance(t.value, ast.Attribute)
                and t.value.attr == "api" for t in node.targets)
        for node in ast.walk(tree)
    )
    out = [Route(p, tuple(sorted(m - {_CORS})), cors=global_cors or _CORS in m) for p, m in routes.items()]
    return sorted(out, key=lambda r: r.specificity, reverse=True)


def routes_from_model(model: AppModel) -> list[Route] | None:
    """The gateway's routes from the app's model (Chalice's own route table); None when the
    app is not a Chalice app."""
    if not model.is_chalice:
        return None
    by_path: dict[str, list[Any]] = {}
    for r in model.routes:
        by_path.setdefault(r.path, []).append(r)
    out = []
    for path, entries in by_path.items():
        cors = next((e.cors for e in entries if e.cors is not None), None)
        out.append(Route(
            path, tuple(e.method for e in entries), cors=cors is not None,
            cors_headers=tuple(cors.items()) if cors is not None else None,
            cors_methods=tuple(e.method for e in entries if e.cors is not None),
            api_key=frozenset(e.method for e in entries if e.api_key_required),
            auth=tuple((e.method, e.authorizer) for e in entries if e.authorizer),
        ))
    return sorted(out, key=lambda r: r.specificity, reverse=True)


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def match_route(routes: list[Route], path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        m = route.regex.match(path)
        if m:
            names = re.findall(r"\{([^}+]+)\+?\}", route.path)
            return route, {n: unquote(v) for n, v in zip(names, m.groups(), strict=True)}
    return None


# ---- events ---------------------------------------------------------------------------------
