"""Where an install's packages come from: the indexes of uv's environment (``UV_DEFAULT_INDEX``,
``UV_INDEX_URL``, ``UV_INDEX``, ``UV_EXTRA_INDEX_URL``), then the requirements' own
``--index-url`` / ``--extra-index-url`` / ``--find-links`` / ``--no-index`` lines, else PyPI —
as the order a download searches them, and as the build sandbox's network: the hosts it may
reach (:class:`lambdaship.package.buildbox.Network`) and the index settings it gets, without the
credentials an index URL may carry (the code in the sandbox never sees them).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from lambdaship.package.buildbox import Network

PYPI = "https://pypi.org/simple"
PYPI_HOSTS = (("pypi.org", 443), ("files.pythonhosted.org", 443))
LOOPBACK = ("localhost", "127.0.0.1")
_OPTS = {"-i": "--index-url", "--index-url": "--index-url", "--extra-index-url": "--extra-index-url",
         "-f": "--find-links", "--find-links": "--find-links", "--no-index": "--no-index"}


def bare(url: str) -> str:
    """``url`` without user:password."""
    u = urlsplit(url)
    if "@" not in u.netloc:
        return url
    return urlunsplit((u.scheme, u.netloc.rsplit("@", 1)[1], u.path, u.query, u.fragment))


@dataclass(frozen=True)
class Indexes:
    default: str = PYPI
    extra: tuple[str, ...] = ()
    links: tuple[str, ...] = ()  # --find-links URLs (directories are local inputs)
    no_index: bool = False

    def search_order(self) -> list[str]:
        """uv's order: extra indexes before the default one."""
        return [] if self.no_index else [*self.extra, self.default]

    def network(self) -> Network:
        allow: set[tuple[str, int]] = set(PYPI_HOSTS)
        direct: set[int] = set()
        for url in (*self.extra, self.default, *self.links):
            u = urlsplit(url)
            host = (u.hostname or "").lower()
            if u.scheme == "https" and host:
                allow.add((host, u.port or 443))
            elif u.scheme == "http" and host in LOOPBACK:
                direct.add(u.port or 80)
        env = {"UV_DEFAULT_INDEX": bare(self.default)}
        if self.extra:
            env["UV_INDEX"] = " ".join(bare(u) for u in self.extra)
        return Network(frozenset(allow), frozenset(direct), env)


def _env_urls(value: str) -> list[str]:
    """``UV_INDEX``'s ``[name=]url`` entries (space separated), or a plain URL list."""
    out = []
    for tok in value.split():
        name, sep, url = tok.partition("=")
        out.append(url if sep and "://" in url and "://" not in name else tok)
    return out


def options(text: str) -> list[tuple[str, str]]:
    """(long option, value) of the index lines in requirements text (``-i X``, ``-iX``,
    ``--index-url=X``); ``("--no-index", "")``."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        for i, tok in enumerate(tokens):
            opt, _, value = tok.partition("=") if tok.startswith("--") else (tok[:2], "", tok[2:].lstrip("="))
            if tok in _OPTS:
                opt, value = tok, (tokens[i + 1] if i + 1 < len(tokens) and tok != "--no-index" else "")
            if opt in _OPTS and (value or opt == "--no-index"):
                out.append((_OPTS[opt], value))
    return out


def indexes(req: Path | None) -> Indexes:
    from lambdaship.package.requirements import requirements_text

    default = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or None
    extra = [u for var in ("UV_INDEX", "UV_EXTRA_INDEX_URL") for u in _env_urls(os.environ.get(var, ""))]
    links: list[str] = []
    no_index = False
    for opt, value in options(requirements_text(req)) if req else []:
        if opt == "--index-url":
            default = default or value
        elif opt == "--extra-index-url":
            extra.append(value)
        elif opt == "--find-links" and "://" in value and not value.startswith("file:"):
            links.append(value)
        elif opt == "--no-index":
            no_index = True
    return Indexes(default or PYPI, tuple(dict.fromkeys(extra)), tuple(links), no_index)
