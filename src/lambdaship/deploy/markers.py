"""What lambdaship writes into Lambda descriptions, and how it reads it back.

A published version's description carries the image it runs (``lambdaship image=<repo>@<digest>``)
or, for a zip function, the zip's SHA-256 (``lambdaship zip=sha256:<hex>``); the alias's description
carries the versions it pointed at before (``lambdaship previous=5,4,2``).
"""

from __future__ import annotations

import re

MARKER_RE = re.compile(
    r"lambdaship (?:image=(?:(?P<repo>[a-z0-9][a-z0-9._/-]*)@)?|zip=)(?P<digest>sha256:[0-9a-f]{64})"
)
ZIP_MARKER_RE = re.compile(r"lambdaship zip=(?P<digest>sha256:[0-9a-f]{64})")
HISTORY_RE = re.compile(r"lambdaship previous=(?P<versions>[0-9,]*)")
HISTORY_KEEP = 20


def version_marker(repository: str, digest: str, description: str = "") -> str:
    marker = f"lambdaship image={repository}@{digest}"
    if len(marker) > 256:
        marker = f"lambdaship image={digest}"
    if description:
        marker = f"{marker} {description}"
    return marker[:256]


def zip_marker(sha256_hex: str, description: str = "") -> str:
    return f"lambdaship zip=sha256:{sha256_hex}{' ' + description if description else ''}"[:256]


def parse_marker(description: str | None) -> tuple[str | None, str | None]:
    m = MARKER_RE.search(description or "")
    return (m.group("repo"), m.group("digest")) if m else (None, None)


def zip_digest_of(description: str | None) -> str | None:
    m = ZIP_MARKER_RE.search(description or "")
    return m.group("digest") if m else None


def digest_of_uri(uri: str | None) -> str | None:
    if uri and "@" in uri:
        d = uri.rsplit("@", 1)[1]
        return d if d.startswith("sha256:") else None
    return None


def repository_of_uri(uri: str) -> str:
    path = uri.split("/", 1)[1] if "/" in uri else uri
    return path.split("@", 1)[0].split(":", 1)[0]


def parse_history(description: str | None) -> list[str]:
    m = HISTORY_RE.search(description or "")
    return [v for v in m.group("versions").split(",") if v] if m else []


def history_description(versions: list[str]) -> str:
    seen: list[str] = []
    for v in versions:
        if v and v not in seen:
            seen.append(v)
    return f"lambdaship previous={','.join(seen[:HISTORY_KEEP])}"
