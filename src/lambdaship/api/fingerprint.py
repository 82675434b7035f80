"""The app's *shape* fingerprint: what the Chalice app model (:mod:`lambdaship.api.model`) can
depend on, hashed without running anything.

Extracting the model imports the app in the sandbox, which on a fresh runner first needs the base
rootfs and the dependency tree on disk (~15 s for the seed app). Most deploys change only what a
view does, not which routes, authorizers and triggers exist. The fingerprint is equal for two
source trees whose import can only register the same things, so the model of the first is the
model of the second:

* every file of the app (:func:`lambdaship.project.app_files`, what the app layer holds) counts
  by its bytes, except a ``.py`` file that parses: it counts by its syntax tree (``ast.dump``
  without positions, so comments, blank lines and formatting do not count);
* in that tree, the **body** of a function registered on a Chalice object is left out (its
  docstring stays: it is the route's swagger description) when all of these hold, so that the
  body cannot run during the import:

  - every decorator is ``X.<registration>(...)`` or ``X.<registration>`` with a Chalice
    registration method (``route``, ``schedule``, ``on_s3_event``, ...), and ``X`` is assigned
    ``Chalice(...)`` or ``Blueprint(...)`` at the top level of the same module (Chalice stores the
    function; it does not call it while registering);
  - the function's name appears nowhere else in the app's code (no ``Name``, ``Attribute``,
    imported name or identifier-like string of that name in any module), so no import-time code
    can call it;

* plus the dependency set's hash, the base image, the Python version, the Chalice stage's
  configuration, the variables the extraction runs with, the extraction script itself and the
  host Python's ``ast`` format.

Anything this does not prove unchanged is a different fingerprint, and the model is extracted
again.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from lambdaship.config import FunctionConfig

VERSION = 1

REGISTRATIONS = frozenset({
    "authorizer", "lambda_function", "middleware", "on_cw_event", "on_dynamodb_record", "on_kinesis_record",
    "on_s3_event", "on_sns_message", "on_sqs_message", "on_ws_connect", "on_ws_disconnect", "on_ws_message",
    "route", "schedule",
})
_FACTORIES = frozenset({"Chalice", "Blueprint"})


def _factory_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def chalice_objects(tree: ast.Module) -> set[str]:
    """Top-level names bound to ``Chalice(...)`` / ``Blueprint(...)`` in the module."""
    out: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and _factory_name(stmt.value) in _FACTORIES:
            out.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and _factory_name(stmt.value) in _FACTORIES \
                and isinstance(stmt.target, ast.Name):
            out.add(stmt.target.id)
    return out


def _registration(dec: ast.expr, objects: set[str]) -> bool:
    node = dec.func if isinstance(dec, ast.Call) else dec
    return (isinstance(node, ast.Attribute) and node.attr in REGISTRATIONS
            and isinstance(node.value, ast.Name) and node.value.id in objects)


def _registered_defs(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Top-level functions whose every decorator is a registration on this module's Chalice object."""
    objects = chalice_objects(tree)
    if not objects:
        return []
    return [s for s in tree.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef) and s.decorator_list
            and all(_registration(d, objects) for d in s.decorator_list)]


def _references(tree: ast.AST, skip: set[int]) -> set[str]:
    """Every ``Name`` and ``Attribute`` name in ``tree``, except inside the nodes in ``skip``
    (the candidates' own definitions, looked at separately)."""
    names: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if id(node) in skip:
            continue
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            names.add(node.value)  # getattr(module, "view")
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
            names.add(node.name.rsplit(".", 1)[-1])
        stack.extend(ast.iter_child_nodes(node))
    return names


def _docstring(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.stmt]:
    first = fn.body[0] if fn.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return [first]
    return []


class _Module:
    def __init__(self, arc: str, data: bytes) -> None:
        self.arc = arc
        self.data = data
        try:
            self.tree: ast.Module | None = ast.parse(data, filename=arc)
        except (SyntaxError, ValueError):
            self.tree = None
        self.candidates = _registered_defs(self.tree) if self.tree is not None else []


def _idle_views(modules: list[_Module]) -> set[int]:
    """The candidates no code anywhere in the app can call during the import."""
    skip = {id(c) for m in modules for c in m.candidates}
    used: set[str] = set()
    for m in modules:
        if m.tree is not None:
            used |= _references(m.tree, skip)
    for m in modules:  # a candidate's own code may call another candidate: that one is not idle
        for c in m.candidates:
            used |= _references(c, set()) - {c.name}
    names = [c.name for m in modules for c in m.candidates]
    return {id(c) for m in modules for c in m.candidates if c.name not in used and names.count(c.name) == 1}


def _shape(module: _Module, idle: set[int]) -> bytes:
    if module.tree is None:
        return b"bytes:" + hashlib.sha256(module.data).digest()
    for fn in module.candidates:
        if id(fn) in idle:
            fn.body = [*_docstring(fn), ast.Pass()]
    return b"ast:" + hashlib.sha256(ast.dump(module.tree, annotate_fields=True).encode()).digest()


def source_shape(files: Iterable[tuple[str, Path]]) -> str:
    """sha256 over the app's files as above (``files``: ``(arcname, path)``, as ``app_files``)."""
    modules: list[_Module] = []
    others: list[tuple[str, bytes]] = []
    for arc, path in sorted(files):
        if path.is_symlink():
            others.append((arc, b"link:" + os.readlink(path).encode()))
        elif arc.endswith(".py"):
            modules.append(_Module(arc, path.read_bytes()))
        else:
            others.append((arc, b"bytes:" + hashlib.sha256(path.read_bytes()).digest()))
    idle = _idle_views(modules)
    h = hashlib.sha256()
    for arc, part in sorted([*others, *((m.arc, _shape(m, idle)) for m in modules)]):
        h.update(arc.encode() + b"\0" + part + b"\0")
    return h.hexdigest()


def fingerprint(fn: FunctionConfig, *, environment: dict[str, str], chalice_stage: str, extractor: str) -> str:
    """The model's cache key for ``fn`` (see the module docstring)."""
    from lambdaship.package import deps
    from lambdaship.project import app_files

    stage_cfg = fn.source / ".chalice" / "config.json"
    payload = {
        "v": VERSION,
        "ast": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "sources": source_shape(app_files(fn)),
        "deps": deps.plan(fn).hash,
        "base": fn.base_image or "",
        "python": fn.python,
        "architecture": fn.architecture,
        "stage": chalice_stage,
        "stage_config": hashlib.sha256(stage_cfg.read_bytes()).hexdigest() if stage_cfg.is_file() else "",
        "environment": hashlib.sha256(json.dumps(environment, sort_keys=True).encode()).hexdigest(),
        "extractor": hashlib.sha256(extractor.encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
